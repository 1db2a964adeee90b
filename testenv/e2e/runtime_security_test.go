package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

// Task containers run under Docker's default seccomp profile, which docker info
// names; a service's privileges (seccomp mode, no-new-privileges) reach its tasks.
func TestRuntimeSeccomp(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "seccomp")
	if got := strings.TrimSpace(n.MustDocker("info", "--format", "{{json .SecurityOptions}}")); got != `["name=seccomp,profile=builtin"]` {
		t.Errorf("docker info security options = %s", got)
	}
	n.MustDocker("service", "create", "-d", "--name", "filtered", "--stop-grace-period", "1s", "busybox", "sleep", "300")
	c := taskContainer(t, n, "filtered")
	if got := mustExec(t, n, c, "grep -E '^(Seccomp|NoNewPrivs):' /proc/1/status | tr -d '\\t'"); got != "NoNewPrivs:0\nSeccomp:2" {
		t.Errorf("default task's /proc/1/status = %q", got)
	}
	// The default profile denies what an unprivileged container must not do,
	// even where the kernel alone would allow it (a new user namespace).
	if out, err := execOut(n, c, "unshare -U true"); err == nil {
		t.Errorf("unshare -U under the default profile succeeded: %q", out)
	}

	spec := swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "unconfined"}}
	spec.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{
		Image: "busybox", Args: []string{"sleep", "300"},
		Privileges: &swarm.Privileges{Seccomp: &swarm.SeccompOpts{Mode: swarm.SeccompModeUnconfined}, NoNewPrivileges: true},
	}
	if code, msg := apiCall(t, n, "POST", "/services/create", jsonBody(t, spec)); code != http.StatusCreated {
		t.Fatalf("create a service with privileges: %d %s", code, msg)
	}
	c = taskContainer(t, n, "unconfined")
	if got := mustExec(t, n, c, "grep -E '^(Seccomp|NoNewPrivs):' /proc/1/status | tr -d '\\t'"); got != "NoNewPrivs:1\nSeccomp:0" {
		t.Errorf("unconfined, no-new-privileges task's /proc/1/status = %q", got)
	}
}
