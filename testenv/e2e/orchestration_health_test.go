package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/testenv"
)

// A task whose health check fails is failed and replaced.
func TestHealthCheckFailingReplaced(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "unhealthy")
	n.MustDocker("service", "create", "-d", "--name", "sick", "--health-cmd", "false", "--health-interval", "1s",
		"--health-retries", "1", "--restart-delay", "100ms", "--stop-grace-period", "1s", "busybox", "sleep", "300")
	rows := waitTaskRows(t, n, "sick", "an unhealthy task failed and replaced", func(rows []taskRow) bool {
		return len(rows) >= 2 && countRows(rows, func(r taskRow) bool {
			return strings.HasPrefix(r.CurrentState, "Failed") && strings.Contains(r.Error, "task: non-zero exit (") && strings.Contains(r.Error, "dockerexec: unhealthy container")
		}) >= 1
	})
	for _, r := range rows {
		if strings.HasPrefix(r.CurrentState, "Running") {
			t.Fatalf("a task that never passed its health check shows Running: %+v", rows)
		}
	}
}

// A task with a health check is Starting until the check passes, then Running.
func TestHealthCheckStartingThenRunning(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "healthy")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := map[swarm.TaskState]bool{}
	n.MustDocker("service", "create", "-d", "--name", "slow", "--health-cmd", "test -f /tmp/ready",
		"--health-interval", "500ms", "--health-retries", "10", "--stop-grace-period", "1s",
		"busybox", "sh", "-c", "sleep 2; touch /tmp/ready; exec sleep 300")
	testenv.WaitFor(t, 60*time.Second, "task running", func() (bool, string) {
		tasks, err := listTasks(ctx, n, "slow")
		if err != nil || len(tasks) != 1 {
			return false, "tasks not listed"
		}
		st := tasks[0].Status.State
		seen[st] = true
		if st != swarm.TaskStateRunning {
			return false, string(st)
		}
		// Running only once the check passed.
		id := tasks[0].Status.ContainerStatus.ContainerID
		health := strings.TrimSpace(n.MustDocker("inspect", "--format", "{{.State.Health.Status}}", id))
		if health != "healthy" {
			t.Fatalf("task Running while its container is %q", health)
		}
		return true, ""
	})
	if !seen[swarm.TaskStateStarting] {
		t.Fatalf("task never showed Starting before it was healthy: saw %v", seen)
	}
}

// docker swarm update --task-history-limit bounds the tasks kept per slot.
func TestTaskHistoryLimit(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "history")
	n.MustDocker("swarm", "update", "--task-history-limit", "2")
	var info struct{ Swarm swarm.Info }
	if err := jsonUnmarshal(n.MustDocker("info", "--format", "{{json .}}"), &info); err != nil {
		t.Fatal(err)
	}
	if l := info.Swarm.Cluster.Spec.Orchestration.TaskHistoryRetentionLimit; l == nil || *l != 2 {
		t.Fatalf("task history limit = %v", l)
	}
	n.MustDocker("service", "create", "-d", "--name", "crash", "--restart-delay", "100ms", "busybox", "sh", "-c", "exit 1")
	ids := map[string]bool{}
	testenv.WaitFor(t, 60*time.Second, "six failures", func() (bool, string) {
		tasks := apiTasks(t, n, "crash")
		if len(tasks) > 2 {
			t.Fatalf("%d tasks kept in one slot with a history limit of 2", len(tasks))
		}
		for _, task := range tasks {
			if task.Status.State == swarm.TaskStateFailed {
				ids[task.ID] = true
			}
		}
		return len(ids) >= 6, ""
	})
}

// docker events --filter type=service shows a service's create, update and
// remove, in a window that ends the moment the removal returned: shoal
// publishes a change at once, as dockerd does. (A window that ends at
// `--until 0s` may miss it on both engines: the CLI sends that time in whole
// seconds.)
func TestServiceEvents(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "events")
	since := strings.TrimSpace(n.MustDocker("system", "info", "--format", "{{.SystemTime}}"))
	n.MustDocker("service", "create", "-d", "--name", "ev", "busybox", "sleep", "300")
	n.MustDocker("service", "update", "-d", "--env-add", "A=1", "ev")
	n.MustDocker("service", "rm", "ev")
	until := strings.TrimSpace(n.MustDocker("system", "info", "--format", "{{.SystemTime}}"))
	out := n.MustDocker("events", "--since", since, "--until", until, "--filter", "type=service",
		"--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var actions []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "service ") || !strings.HasSuffix(l, " ev") {
			t.Fatalf("event line %q in:\n%s", l, out)
		}
		actions = append(actions, strings.Fields(l)[1])
	}
	if actions[0] != "create" || actions[len(actions)-1] != "remove" || !contains(actions, "update") {
		t.Fatalf("service events = %v", actions)
	}
}
