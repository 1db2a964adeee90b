package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/shoal-project/shoal/testenv"
)

// A daemon killed with SIGKILL and started again re-adopts its running task
// containers (same container, same PID), keeps every service, shows the output
// written while it was down, and goes on scaling and removing as before.
func TestRuntimeLiveRestore(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "restore")
	n.MustDocker("service", "create", "-d", "--name", "ticker", "--stop-grace-period", "1s",
		"busybox", "sh", "-c", `i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.2; done`)
	n.MustDocker("service", "create", "-d", "--name", "idle", "--replicas", "2", "--stop-grace-period", "1s",
		"--label", "keep=me", "busybox", "sleep", "300")
	c := taskContainer(t, n, "ticker")
	waitRunning(t, n, "idle", 2)
	before := map[string]container.InspectResponse{}
	for _, name := range lines(n.MustDocker("ps", "--format", "{{.Names}}")) {
		var ctr container.InspectResponse
		inspect(t, n, "container", name, &ctr)
		before[name] = ctr
	}
	if len(before) != 3 {
		t.Fatalf("containers before the crash: %v", before)
	}
	servicesBefore := n.MustDocker("service", "ls", "--format", "{{.ID}} {{.Name}} {{.Replicas}}")

	seen := lines(n.MustDocker("logs", c))
	lastTick := len(seen) - 1

	n.Kill()
	killedAt := time.Now()
	// While the daemon is down the task keeps printing; let it, by the clock
	// (there is no API to ask), for several ticks.
	const downtime = 1500 * time.Millisecond
	for time.Since(killedAt) < downtime {
		time.Sleep(50 * time.Millisecond)
	}
	n.Start()

	for name, b := range before {
		var a container.InspectResponse
		inspect(t, n, "container", name, &a)
		if a.ID != b.ID || a.State == nil || !a.State.Running || a.State.Pid != b.State.Pid || a.State.StartedAt != b.State.StartedAt {
			t.Errorf("container %s after the restart: %+v, before: %+v", name, a.State, b.State)
		}
	}
	if after := n.MustDocker("service", "ls", "--format", "{{.ID}} {{.Name}} {{.Replicas}}"); after != servicesBefore {
		t.Errorf("service ls after the restart:\n%s\nbefore:\n%s", after, servicesBefore)
	}
	var svc struct {
		Spec struct{ Labels map[string]string }
	}
	inspect(t, n, "service", "idle", &svc)
	if svc.Spec.Labels["keep"] != "me" {
		t.Errorf("service labels after the restart = %v", svc.Spec.Labels)
	}
	if ps := n.MustDocker("ps", "-q"); len(lines(ps)) != 3 {
		t.Errorf("docker ps after the restart = %q", ps)
	}

	// Lines written while the daemon was down are in the logs: the ticks go on
	// without a gap from the last one seen before the crash. (Like dockerd with
	// live-restore, those lines carry the time the restarted daemon read them.)
	testenv.WaitFor(t, 20*time.Second, "ticks from the downtime in the logs", func() (bool, string) {
		out, err := n.Docker("logs", c)
		if err != nil {
			return false, out
		}
		got := lines(out)
		for i, l := range got {
			if l != "tick "+strconv.Itoa(i) {
				return false, "line " + strconv.Itoa(i) + " is " + l + "\n" + out
			}
		}
		return len(got) > lastTick+int(downtime/(200*time.Millisecond))+2, out
	})

	// The swarm goes on as before.
	n.MustDocker("service", "scale", "idle=3")
	waitRunning(t, n, "idle", 3)
	n.MustDocker("service", "rm", "ticker", "idle")
	testenv.WaitFor(t, 60*time.Second, "task containers removed", func() (bool, string) {
		out, err := n.Docker("ps", "-aq")
		return err == nil && strings.TrimSpace(out) == "", out
	})
}
