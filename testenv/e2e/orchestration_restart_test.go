package e2e

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/testenv"
)

// Note: `docker service ps` prints a task's error in double quotes.

// waitTaskRows waits until `docker service ps` satisfies cond.
func waitTaskRows(t *testing.T, n *testenv.Node, service, what string, cond func([]taskRow) bool) []taskRow {
	t.Helper()
	var rows []taskRow
	testenv.WaitFor(t, 60*time.Second, what, func() (bool, string) {
		rows = serviceTasks(t, n, service)
		return cond(rows), fmt.Sprintf("%+v", rows)
	})
	return rows
}

// holdTaskRows fails the test if cond stops holding within d: a check that nothing
// more happens (no further restart).
func holdTaskRows(t *testing.T, n *testenv.Node, service, what string, d time.Duration, cond func([]taskRow) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if rows := serviceTasks(t, n, service); !cond(rows) {
			t.Fatalf("%s no longer holds: %+v", what, rows)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func countRows(rows []taskRow, pred func(taskRow) bool) int {
	c := 0
	for _, r := range rows {
		if pred(r) {
			c++
		}
	}
	return c
}

// on-failure with max attempts 2: one task and two restarts, each failed with
// Docker's error, and then no more.
func TestRestartOnFailureMaxAttempts(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "restart-max")
	n.MustDocker("service", "create", "-d", "--name", "crash", "--restart-condition", "on-failure",
		"--restart-max-attempts", "2", "--restart-delay", "1s", "busybox", "sh", "-c", "exit 1")
	failed := func(r taskRow) bool {
		return strings.HasPrefix(r.CurrentState, "Failed") && r.Error == `"task: non-zero exit (1)"`
	}
	rows := waitTaskRows(t, n, "crash", "three failed tasks", func(rows []taskRow) bool {
		return len(rows) == 3 && countRows(rows, failed) == 3
	})
	for _, r := range rows {
		if r.Name != "crash.1" {
			t.Fatalf("task name = %q, want crash.1 for every restart", r.Name)
		}
	}
	// Each restart waited the restart delay after the failure it replaces.
	tasks := apiTasks(t, n, "crash")
	sort.Slice(tasks, func(i, j int) bool { return tasks[i].CreatedAt.Before(tasks[j].CreatedAt) })
	for i := 1; i < len(tasks); i++ {
		if gap := tasks[i].CreatedAt.Sub(tasks[i-1].Status.Timestamp); gap < 900*time.Millisecond {
			t.Fatalf("restart %d came %s after the failure, want the 1s restart delay", i, gap)
		}
	}
	// The last attempt stays as it ended; no fourth task comes after the delay.
	holdTaskRows(t, n, "crash", "three tasks", 3*time.Second, func(rows []taskRow) bool { return len(rows) == 3 })
	if ls := strings.TrimSpace(n.MustDocker("service", "ls", "--format", "{{.Replicas}}")); ls != "0/1" {
		t.Fatalf("service ls replicas = %q", ls)
	}
}

// condition none never restarts a task, whatever its exit.
func TestRestartConditionNone(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "restart-none")
	n.MustDocker("service", "create", "-d", "--name", "once", "--restart-condition", "none",
		"--restart-delay", "100ms", "busybox", "sh", "-c", "exit 1")
	waitTaskRows(t, n, "once", "one failed task", func(rows []taskRow) bool {
		return len(rows) == 1 && strings.HasPrefix(rows[0].CurrentState, "Failed") && rows[0].Error == `"task: non-zero exit (1)"`
	})
	holdTaskRows(t, n, "once", "a single task", 2*time.Second, func(rows []taskRow) bool { return len(rows) == 1 })
}

// condition any restarts a task that exited 0; on-failure does not.
func TestRestartConditionAnyAndOnFailure(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "restart-any")
	n.MustDocker("service", "create", "-d", "--name", "loop", "--restart-condition", "any",
		"--restart-delay", "100ms", "busybox", "sh", "-c", "exit 0")
	n.MustDocker("service", "create", "-d", "--name", "done", "--restart-condition", "on-failure",
		"--restart-delay", "100ms", "busybox", "sh", "-c", "exit 0")
	complete := func(r taskRow) bool { return strings.HasPrefix(r.CurrentState, "Complete") && r.Error == "" }
	waitTaskRows(t, n, "loop", "three completed runs", func(rows []taskRow) bool {
		return countRows(rows, complete) >= 3
	})
	rows := waitTaskRows(t, n, "done", "one completed task", func(rows []taskRow) bool {
		return len(rows) == 1 && complete(rows[0])
	})
	if rows[0].DesiredState != "Complete" && rows[0].DesiredState != "Running" {
		t.Fatalf("desired state of a finished on-failure task = %q", rows[0].DesiredState)
	}
	holdTaskRows(t, n, "done", "a single task", 2*time.Second, func(rows []taskRow) bool { return len(rows) == 1 })
}

// --restart-window counts attempts only within the window: a task that fails less
// often than that keeps being restarted past --restart-max-attempts.
func TestRestartWindow(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "restart-window")
	n.MustDocker("service", "create", "-d", "--name", "slow", "--restart-condition", "on-failure",
		"--restart-max-attempts", "1", "--restart-window", "500ms", "--restart-delay", "100ms",
		"busybox", "sh", "-c", "sleep 1; exit 3")
	// History keeps MaxAttempts+1 tasks per slot (as swarmkit does), so count
	// the failed tasks seen over time.
	failed := map[string]bool{}
	testenv.WaitFor(t, 60*time.Second, "four failed runs", func() (bool, string) {
		for _, task := range apiTasks(t, n, "slow") {
			if task.Status.State == swarm.TaskStateFailed && task.Status.Err == "task: non-zero exit (3)" {
				failed[task.ID] = true
			}
		}
		return len(failed) >= 4, fmt.Sprintf("%d failed", len(failed))
	})
}
