package e2e

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/shoal-project/shoal/testenv"
)

// Task containers are ordinary containers to docker ps, inspect and exec; stopping
// one by hand makes the orchestrator replace its task.
func TestRuntimeTaskContainers(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "ctrs")
	n.MustDocker("service", "create", "-d", "--name", "box", "--stop-grace-period", "1s",
		"--restart-delay", "100ms", "busybox", "sleep", "300")
	n.MustDocker("service", "create", "-d", "--name", "other", "--stop-grace-period", "1s", "busybox", "sleep", "300")
	c := taskContainer(t, n, "box")
	taskContainer(t, n, "other")

	ps := n.MustDocker("ps", "--filter", "label=com.docker.swarm.service.name=box", "--format", "{{.Names}} {{.Image}} {{.Command}} {{.Status}}")
	if f := strings.Fields(ps); len(f) < 5 || f[0] != c || f[1] != "busybox:latest" || f[2] != `"sleep` || f[3] != `300"` || f[4] != "Up" {
		t.Errorf("docker ps row = %q", ps)
	}
	if all := lines(n.MustDocker("ps", "--format", "{{.Names}}")); len(all) != 2 {
		t.Errorf("docker ps = %q", all)
	}

	var list []container.InspectResponse // plain `docker inspect` finds containers too
	if err := jsonUnmarshal(n.MustDocker("inspect", c), &list); err != nil || len(list) != 1 {
		t.Fatalf("docker inspect %s: %v %+v", c, err, list)
	}
	ctr := list[0]
	if ctr.Name != "/"+c || ctr.State == nil || !ctr.State.Running || ctr.State.Pid == 0 || ctr.Config.Image != "busybox:latest" {
		t.Fatalf("docker inspect = name %q state %+v", ctr.Name, ctr.State)
	}
	if got := strings.TrimSpace(n.MustDocker("inspect", "--format", "{{.State.Status}} {{index .Config.Labels \"com.docker.swarm.service.name\"}}", c)); got != "running box" {
		t.Errorf("inspect --format = %q", got)
	}

	// exec: exit codes, stdin, environment.
	out, err := n.Docker("exec", c, "sh", "-c", "echo failing; exit 3")
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 || strings.TrimSpace(out) != "failing" {
		t.Errorf("exec exit 3: err %v output %q", err, out)
	}
	out, err = n.Docker("exec", c, "no-such-binary")
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 127 || !strings.Contains(out, "no-such-binary") {
		t.Errorf("exec of a missing binary: err %v output %q", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := dockerCmd(ctx, n, "exec", "-i", c, "sh", "-c", "tr a-z A-Z; echo done")
	cmd.Stdin = strings.NewReader("hello from stdin\n")
	got, err := cmd.CombinedOutput()
	if err != nil || string(got) != "HELLO FROM STDIN\ndone\n" {
		t.Errorf("exec -i: err %v output %q", err, got)
	}
	// exec -it, from a terminal of 40x132 (script(1) gives the CLI one): a shell
	// on the container's own terminal, of the client's size, its exit code passed on.
	cmd = exec.CommandContext(ctx, "script", "-qec", "stty rows 40 cols 132 && docker exec -it "+c+" sh", "/dev/null")
	cmd.Env = dockerCmd(ctx, n).Env
	cmd.Stdin = strings.NewReader("tty; stty size\nexit 4\n")
	got, err = cmd.CombinedOutput()
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 4 ||
		!strings.Contains(string(got), "/dev/pts/0\r\n40 132\r\n") {
		t.Errorf("exec -it: err %v output %q", err, got)
	}
	if got := mustExec(t, n, c, "echo $HOSTNAME; id -u"); got != ctr.Config.Hostname+"\n0" {
		t.Errorf("exec environment = %q", got)
	}
	if out, err := n.Docker("exec", "nope", "true"); err == nil || !strings.Contains(out, "No such container: nope") {
		t.Errorf("exec in a missing container: err %v output %q", err, out)
	}

	// docker stop of a task container: the orchestrator starts a new task.
	n.MustDocker("stop", c)
	testenv.WaitFor(t, 60*time.Second, "a replacement task", func() (bool, string) {
		out, err := n.Docker("ps", "--filter", "label=com.docker.swarm.service.name=box", "--format", "{{.Names}}")
		names := strings.Fields(out)
		return err == nil && len(names) == 1 && names[0] != c, out
	})
	rows := serviceTasks(t, n, "box")
	if len(rows) != 2 || rows[0].DesiredState != "Running" || !strings.HasPrefix(rows[0].CurrentState, "Running") ||
		rows[1].Name != "box.1" || rows[1].DesiredState != "Shutdown" || !strings.HasPrefix(rows[1].CurrentState, "Failed") ||
		rows[1].Error != `"task: non-zero exit (137)"` {
		t.Errorf("service ps after docker stop = %+v", rows)
	}
	if st := strings.TrimSpace(n.MustDocker("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", c)); st != "exited 137" {
		t.Errorf("stopped container state = %q", st)
	}
	if !strings.Contains(n.MustDocker("ps", "-a", "--format", "{{.Names}} {{.Status}}"), c+" Exited (137)") {
		t.Errorf("docker ps -a does not show the stopped container as Exited (137)")
	}
}
