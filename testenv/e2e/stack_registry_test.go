package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
	"github.com/shoal-project/shoal/testenv"
)

// `shoal stack deploy` pins images to their registry digest as the docker
// CLI's --resolve-image says, and --with-registry-auth sends the
// credentials `docker login` kept, with which the nodes pull from a
// registry that wants them; the docker CLI's stack deploy pins the same
// way through the daemon.
func TestShoalStackRegistry(t *testing.T) {
	t.Parallel()
	const registry, user, password = "127.0.0.1:5000", "fleet", "s3cret-pass"
	n := testenv.StartNode(t, "stackreg", testenv.Options{Args: []string{"--insecure-registry", registry}})
	n.MustDocker("swarm", "init", "--advertise-addr", "127.0.0.1")
	nodeRegistry(t, n, registry, imagetest.WithBasicAuth(user, password))
	creds := &authn.Basic{Username: user, Password: password}
	first := imagetest.BusyboxImage(t, imagetest.WithLabels(map[string]string{"build": "1"}))
	pushToNodeAs(t, n, first, registry+"/app:1", creds)
	n.MustDocker("login", "-u", user, "-p", password, registry)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"compose.yaml": `services:
  app:
    image: ` + registry + `/app:1
    command: ["sleep", "100000"]
    stop_grace_period: 1s
`})
	pinned := func(t *testing.T, want string) {
		t.Helper()
		if got := storedService(t, n, "reg_app").Spec.TaskTemplate.ContainerSpec.Image; got != registry+"/app:1@"+want {
			t.Errorf("reg_app's image %s, want it pinned to %s", got, want)
		}
	}
	d1, err := first.Digest()
	if err != nil {
		t.Fatal(err)
	}

	// Without credentials the registry refuses the lookup: a warning, and
	// the image stays as the file names it.
	out, errOut, err := shoalStack(t, n, dir, nil, "deploy", "--dry-run", "reg")
	if err != nil || !strings.Contains(errOut, "warning: image "+registry+"/app:1 could not be accessed on a registry") {
		t.Errorf("dry run without credentials: %v, warned %q", err, errOut)
	}

	out, errOut, err = shoalStack(t, n, dir, nil, "deploy", "--with-registry-auth", "reg")
	if err != nil || errOut != "" {
		t.Fatalf("deploy: %v\n%s%s", err, out, errOut)
	}
	pinned(t, d1.String())
	waitRunning(t, n, "reg_app", 1)
	if inspect := n.MustDocker("service", "inspect", "reg_app"); strings.Contains(inspect, password) {
		t.Errorf("service inspect shows the password:\n%s", inspect)
	}

	// A new image under the same tag: changed and never keep the pinned
	// digest (the file did not change), always pins the new one.
	second := imagetest.BusyboxImage(t, imagetest.WithLabels(map[string]string{"build": "2"}))
	pushToNodeAs(t, n, second, registry+"/app:1", creds)
	d2, err := second.Digest()
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"changed", "never"} {
		out = mustShoalStack(t, n, dir, nil, "deploy", "--dry-run", "--resolve-image", mode, "reg")
		if !strings.Contains(out, "service reg_app: unchanged\n") {
			t.Errorf("dry run with --resolve-image %s:\n%s", mode, out)
		}
	}
	mustShoalStack(t, n, dir, nil, "deploy", "--resolve-image", "changed", "--with-registry-auth", "reg")
	pinned(t, d1.String())
	out = mustShoalStack(t, n, dir, nil, "deploy", "--with-registry-auth", "reg")
	if !strings.Contains(out, "Updating service reg_app") {
		t.Errorf("deploy with the new image: %q", out)
	}
	pinned(t, d2.String())
	testenv.WaitFor(t, 60*time.Second, "reg_app's task running the new image", func() (bool, string) {
		out, err := n.Docker("service", "ps", "--no-trunc", "--filter", "desired-state=running", "--format", "{{.Image}} {{.CurrentState}}", "reg_app")
		return err == nil && strings.Contains(out, d2.String()) && strings.Contains(out, "Running"), out
	})

	mustShoalStack(t, n, dir, nil, "rm", "reg")
	assertNoStack(t, n, "reg")

	// The docker CLI's stack deploy asks the daemon the same: pinned to the
	// new digest, pulled with the credentials.
	writeFiles(t, dir, map[string]string{"cli.yaml": "version: \"3.8\"\n" + composeOf(t, dir)})
	n.MustDocker("stack", "deploy", "--with-registry-auth", "-c", filepath.Join(dir, "cli.yaml"), "dreg")
	if got := storedService(t, n, "dreg_app").Spec.TaskTemplate.ContainerSpec.Image; got != registry+"/app:1@"+d2.String() {
		t.Errorf("docker stack deploy: dreg_app's image %s, want it pinned to %s", got, d2)
	}
	waitRunning(t, n, "dreg_app", 1)
	n.MustDocker("stack", "rm", "dreg")
	assertNoStack(t, n, "dreg")
}

// composeOf is dir's compose.yaml.
func composeOf(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
