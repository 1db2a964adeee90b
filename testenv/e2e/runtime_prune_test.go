package e2e

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
	"github.com/shoal-project/shoal/testenv"
)

// freezerFile is the file that freezes the cgroup of the process pid and says
// whether it is frozen: freezer.state (cgroup v1) or cgroup.freeze (v2).
func freezerFile(t *testing.T, pid string) string {
	t.Helper()
	f, err := os.Open("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatalf("cgroups of pid %s: %v", pid, err)
	}
	defer f.Close()
	v2 := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		switch {
		case len(parts) != 3:
		case parts[1] == "freezer":
			return filepath.Join("/sys/fs/cgroup/freezer", parts[2], "freezer.state")
		case parts[0] == "0" && parts[1] == "":
			v2 = filepath.Join("/sys/fs/cgroup", parts[2], "cgroup.freeze")
		}
	}
	if v2 == "" {
		t.Fatalf("pid %s has no freezer cgroup", pid)
	}
	return v2 // unified hierarchy only
}

// freezerState is what the freezer file says: "FROZEN" or "THAWED".
func freezerState(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	switch s := strings.TrimSpace(string(b)); s {
	case "1":
		return "FROZEN"
	case "0":
		return "THAWED"
	default:
		return s
	}
}

// docker pause freezes a task container: ps and inspect say so, exec is
// refused, unpause thaws it, and a paused container can still be stopped.
func TestRuntimePrunePause(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "pause")
	n.MustDocker("service", "create", "-d", "--name", "frozen", "--stop-grace-period", "1s",
		"--restart-condition", "none", "busybox", "sleep", "300")
	c := taskContainer(t, n, "frozen")
	id := strings.TrimSpace(n.MustDocker("inspect", "-f", "{{.Id}}", c))
	freezer := freezerFile(t, strings.TrimSpace(n.MustDocker("inspect", "-f", "{{.State.Pid}}", c)))
	// A frozen container ignores even SIGKILL (cgroup v1): thaw it whatever
	// happens, so that the node's cleanup can stop it.
	t.Cleanup(func() {
		thawed := "THAWED"
		if filepath.Base(freezer) == "cgroup.freeze" {
			thawed = "0"
		}
		_ = os.WriteFile(freezer, []byte(thawed), 0o644)
	})
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)

	if out := n.MustDocker("pause", c); strings.TrimSpace(out) != c {
		t.Fatalf("docker pause printed %q", out)
	}
	if got := freezerState(t, freezer); got != "FROZEN" {
		t.Fatalf("freezer state of the paused container = %q", got)
	}
	status := strings.TrimSpace(n.MustDocker("ps", "--filter", "name="+c, "--format", "{{.State}}|{{.Status}}"))
	if !strings.HasPrefix(status, "paused|Up ") || !strings.HasSuffix(status, " (Paused)") {
		t.Errorf("docker ps of a paused container = %q, want paused|Up … (Paused)", status)
	}
	if got := strings.TrimSpace(n.MustDocker("inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.State.Paused}}", c)); got != "paused true true" {
		// engineapi refuses exec by State.Paused; without it the exec below would wait for a thaw.
		t.Fatalf("inspect State of a paused container = %q, want \"paused true true\"", got)
	}
	// Bounded: an exec let into a frozen container would wait until it thaws.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := n.DockerContext(ctx, "exec", c, "true"); err == nil || !strings.Contains(out, "is paused, unpause the container before exec") {
		t.Errorf("exec in a paused container: %v %q", err, out)
	}
	if out, err := n.Docker("pause", c); err == nil || !strings.Contains(out, "Container "+id+" is already paused") {
		t.Errorf("pause twice: %v %q", err, out)
	}

	if out := n.MustDocker("unpause", c); strings.TrimSpace(out) != c {
		t.Fatalf("docker unpause printed %q", out)
	}
	if got := freezerState(t, freezer); got != "THAWED" {
		t.Fatalf("freezer state after unpause = %q", got)
	}
	if got := strings.TrimSpace(n.MustDocker("ps", "--filter", "name="+c, "--format", "{{.State}}")); got != "running" {
		t.Errorf("docker ps after unpause = %q", got)
	}
	if got := mustExec(t, n, c, "echo thawed"); got != "thawed" {
		t.Errorf("exec after unpause = %q", got)
	}
	if out, err := n.Docker("unpause", c); err == nil || !strings.Contains(out, "Container "+id+" is not paused") {
		t.Errorf("unpause a running container: %v %q", err, out)
	}

	// Stopping a paused container works, within its grace period.
	n.MustDocker("pause", c)
	start := time.Now()
	n.MustDocker("stop", c)
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("docker stop of a paused container took %v", took)
	}
	if got := strings.TrimSpace(n.MustDocker("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", c)); got != "exited false" {
		t.Errorf("after stop: %q, want \"exited false\"", got)
	}
	if out, err := n.Docker("pause", c); err == nil || !strings.Contains(out, "Container "+id+" is not running") {
		t.Errorf("pause an exited container: %v %q", err, out)
	}

	until := strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)
	evs := n.MustDocker("events", "--since", since, "--until", until, "--filter", "container="+id,
		"--filter", "event=pause", "--filter", "event=unpause", "--format", "{{.Action}}")
	if got := strings.Fields(evs); strings.Join(got, " ") != "pause unpause pause" {
		t.Errorf("pause events = %q, want pause unpause pause", got)
	}
}

// container prune removes the exited task containers only; image prune removes
// dangling images, and with -a every image no container uses; system prune
// runs them all.
func TestRuntimePruneContainersAndImages(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "prune")
	n.MustDocker("service", "create", "-d", "--name", "keep", "--stop-grace-period", "1s", "busybox", "sleep", "300")
	keep := taskContainer(t, n, "keep")
	done := exitedTask(t, n, "once")

	out := n.MustDocker("container", "prune", "-f")
	if !strings.HasPrefix(out, "Deleted Containers:\n"+done+"\n\nTotal reclaimed space: ") {
		t.Fatalf("docker container prune printed %q, want %s deleted", out, done)
	}
	if all := n.MustDocker("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"); strings.Contains(all, done) || !strings.Contains(all, keep) {
		t.Fatalf("docker ps -a after prune = %q", all)
	}
	if rows := serviceTasks(t, n, "once"); len(rows) != 1 || !strings.HasPrefix(rows[0].CurrentState, "Complete") {
		t.Errorf("the pruned container's task is gone from service ps: %+v", rows)
	}

	// A dangling image (its tag moved to a newer load) and an unused tagged one.
	dir := t.TempDir()
	load := func(tag string, opts ...imagetest.Option) string {
		t.Helper()
		n.MustDocker("load", "-i", imagetest.BusyboxArchive(t, dir, tag, opts...))
		return strings.TrimSpace(n.MustDocker("image", "inspect", "-f", "{{.Id}}", tag))
	}
	dangling := load("app:1", imagetest.WithCmd("old"), imagetest.WithLayer(imagetest.File("old.txt", strings.Repeat("o", 5000), 0o644)))
	app := load("app:1", imagetest.WithCmd("new"))
	extra := load("extra:1", imagetest.WithCmd("extra"), imagetest.WithLayer(imagetest.File("extra.txt", strings.Repeat("e", 7000), 0o644)))
	if got := strings.TrimSpace(n.MustDocker("images", "--filter", "dangling=true", "-q", "--no-trunc")); got != dangling {
		t.Fatalf("dangling images = %q, want %s", got, dangling)
	}

	out = n.MustDocker("image", "prune", "-f")
	if !strings.HasPrefix(out, "Deleted Images:\ndeleted: "+dangling+"\n\nTotal reclaimed space: ") || strings.HasSuffix(out, " 0B\n") {
		t.Fatalf("docker image prune printed %q, want %s deleted and its layer's bytes", out, dangling)
	}
	out = n.MustDocker("image", "prune", "-af")
	for _, want := range []string{"untagged: app:1\n", "deleted: " + app + "\n", "untagged: extra:1\n", "deleted: " + extra + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker image prune -a printed %q, want %q in it", out, want)
		}
	}
	if strings.Contains(out, "busybox") || strings.HasSuffix(out, " 0B\n") {
		t.Errorf("docker image prune -a printed %q: busybox is in use; extra's layer frees bytes", out)
	}
	if got := strings.TrimSpace(n.MustDocker("images", "--format", "{{.Repository}}:{{.Tag}}")); got != "busybox:latest" {
		t.Errorf("images after prune -a = %q, want busybox:latest (a running task uses it)", got)
	}

	// docker system prune: containers, networks, images and build cache.
	done = exitedTask(t, n, "twice")
	dangling = load("app:2", imagetest.WithCmd("one"))
	load("app:2", imagetest.WithCmd("two"))
	out = n.MustDocker("system", "prune", "-f")
	for _, want := range []string{"Deleted Containers:\n" + done + "\n", "Deleted Images:\ndeleted: " + dangling + "\n", "Total reclaimed space: "} {
		if !strings.Contains(out, want) {
			t.Errorf("docker system prune printed %q, want %q in it", out, want)
		}
	}
}

// exitedTask runs a one-shot service and returns its exited container's full ID.
func exitedTask(t *testing.T, n *testenv.Node, service string) string {
	t.Helper()
	n.MustDocker("service", "create", "-d", "--name", service, "--restart-condition", "none", "busybox", "true")
	var id string
	testenv.WaitFor(t, 60*time.Second, service+" task container exited", func() (bool, string) {
		out, err := n.Docker("ps", "-a", "--no-trunc", "--filter", "label=com.docker.swarm.service.name="+service,
			"--filter", "status=exited", "--format", "{{.ID}}")
		id = strings.TrimSpace(out)
		return err == nil && len(id) == 64, out
	})
	return id
}
