package imagetest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// RegistryBinary is the registry server Registry starts (Debian package
// docker-registry).
const RegistryBinary = "docker-registry"

// RegistryOption changes the registry Registry starts.
type RegistryOption func(*registrySpec)

type registrySpec struct {
	user, password string
}

// WithBasicAuth makes the registry require user and password (htpasswd).
func WithBasicAuth(user, password string) RegistryOption {
	return func(r *registrySpec) { r.user, r.password = user, password }
}

// Registry starts a private registry (distribution) on 127.0.0.1 at a free port,
// storing into a temporary directory, and returns its "127.0.0.1:<port>" address
// once it answers. It speaks plain HTTP and is stopped when the test ends.
func Registry(t testing.TB, opts ...RegistryOption) string {
	t.Helper()
	var spec registrySpec
	for _, opt := range opts {
		opt(&spec)
	}
	bin, err := exec.LookPath(RegistryBinary)
	if err != nil {
		t.Fatalf("imagetest: %s not found (apt-get install docker-registry): %v", RegistryBinary, err)
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	cfgPath := writeRegistryConfig(t, dir, addr, spec)
	logFile, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("imagetest: start registry: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		logFile.Close()
	})

	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || (spec.user != "" && resp.StatusCode == http.StatusUnauthorized) {
				return addr
			}
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("imagetest: registry exited: %v\n%s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("imagetest: registry at %s did not answer: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// RegistryConfig writes a config.yml (and htpasswd) for a registry listening on
// addr and storing under dir, and returns its path: for starting Debian's
// docker-registry elsewhere, such as inside a test node's network namespace.
func RegistryConfig(t testing.TB, dir, addr string, opts ...RegistryOption) string {
	t.Helper()
	var spec registrySpec
	for _, opt := range opts {
		opt(&spec)
	}
	return writeRegistryConfig(t, dir, addr, spec)
}

// writeRegistryConfig writes the registry's config.yml (and htpasswd) into dir.
func writeRegistryConfig(t testing.TB, dir, addr string, spec registrySpec) string {
	t.Helper()
	config := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "data"), addr)
	if spec.user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(spec.password), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("imagetest: %v", err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(spec.user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatalf("imagetest: %v", err)
		}
		config += fmt.Sprintf("auth:\n  htpasswd:\n    realm: imagetest\n    path: %s\n", htpasswd)
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	return cfgPath
}

// freeAddr returns a 127.0.0.1 address with a port nobody listens on right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("imagetest: find free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Push uploads img to ref ("127.0.0.1:5000/library/busybox:latest") over plain
// HTTP and returns the manifest digest the registry now serves for it.
func Push(t testing.TB, img v1.Image, ref string) v1.Hash {
	t.Helper()
	return push(t, img, ref, authn.Anonymous)
}

// PushAs is Push to a registry started WithBasicAuth.
func PushAs(t testing.TB, img v1.Image, ref, user, password string) v1.Hash {
	t.Helper()
	return push(t, img, ref, &authn.Basic{Username: user, Password: password})
}

func push(t testing.TB, img v1.Image, ref string, auth authn.Authenticator) v1.Hash {
	t.Helper()
	tag, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatalf("imagetest: parse %q: %v", ref, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := remote.Write(tag, img, remote.WithContext(ctx), remote.WithAuth(auth)); err != nil {
		t.Fatalf("imagetest: push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("imagetest: digest of %s: %v", ref, err)
	}
	return d
}
