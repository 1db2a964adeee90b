package e2e

import (
	"encoding/base64"
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

	// docker login asks the daemon, which asks the registry.
	if out, err := n.Docker("login", "-u", user, "-p", "wrong", registry); err == nil || !strings.Contains(out, "401 Unauthorized") {
		t.Fatalf("docker login with a wrong password: %v %q", err, out)
	}
	if out := n.MustDocker("login", "-u", user, "-p", password, registry); !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("docker login: %q", out)
	}
	creds := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))

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
