package e2e

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
	"github.com/shoal-project/shoal/testenv"
)

// A service created with --with-registry-auth pulls its image from a registry that
// wants credentials; without them its tasks are rejected; the credentials never
// show in inspect.
func TestServiceRegistryAuth(t *testing.T) {
	t.Parallel()
	const registry, user, password = "127.0.0.1:5000", "fleet", "s3cret-pass"
	n := testenv.StartNode(t, "regauth", testenv.Options{Args: []string{"--insecure-registry", registry}})
	n.MustDocker("swarm", "init", "--advertise-addr", "127.0.0.1")
	nodeRegistry(t, n, registry, imagetest.WithBasicAuth(user, password))
	pushToNodeAs(t, n, imagetest.BusyboxImage(t), registry+"/private:1", &authn.Basic{Username: user, Password: password})

	// The CLI reads the credentials from its config, as after `docker login`.
	cfgDir := filepath.Join(n.Dir, "docker-config")
	if err := os.MkdirAll(cfgDir, 0o700); err != nil {
		t.Fatal(err)
	}
	creds := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"auths":{"`+registry+`":{"auth":"`+creds+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}

	n.MustDocker("service", "create", "-d", "--no-resolve-image", "--name", "anon", "--stop-grace-period", "1s",
		registry+"/private:1", "sleep", "300")
	testenv.WaitFor(t, 60*time.Second, "the anonymous pull refused", func() (bool, string) {
		out, err := n.Docker("service", "ps", "--no-trunc", "--format", "{{.CurrentState}} {{.Error}}", "anon")
		return err == nil && strings.Contains(out, "Rejected") && strings.Contains(out, "No such image: "+registry+"/private:1"), out
	})

	n.MustDocker("service", "create", "-d", "--no-resolve-image", "--with-registry-auth", "--name", "authed", "--stop-grace-period", "1s",
		registry+"/private:1", "sleep", "300")
	waitRunning(t, n, "authed", 1)

	out := n.MustDocker("service", "inspect", "authed")
	if strings.Contains(out, password) || strings.Contains(out, creds) || strings.Contains(strings.ToLower(out), "registry-auth") {
		t.Fatalf("service inspect shows the registry credentials:\n%s", out)
	}
	// The credentials go with the service.
	n.MustDocker("service", "rm", "authed", "anon")
	testenv.WaitFor(t, 30*time.Second, "services removed", func() (bool, string) {
		out, err := n.Docker("service", "ls", "-q")
		return err == nil && strings.TrimSpace(out) == "", out
	})
}
