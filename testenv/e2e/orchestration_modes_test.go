package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/testenv"
)

// waitServiceLs waits until `docker service ls` shows want in the replicas column.
func waitServiceLs(t *testing.T, n *testenv.Node, name, want string) {
	t.Helper()
	testenv.WaitFor(t, 60*time.Second, name+" replicas "+want, func() (bool, string) {
		out, err := n.Docker("service", "ls", "--filter", "name="+name, "--format", "{{.Name}} {{.Mode}} {{.Replicas}}")
		return err == nil && strings.TrimSpace(out) == name+" "+want, out
	})
}

// A global service runs one task on the (only) node.
func TestGlobalService(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "global")
	out := n.MustDocker("service", "create", "--name", "g", "--mode", "global", "--stop-grace-period", "1s",
		"--update-monitor", "1s", "busybox", "sleep", "300")
	if !strings.Contains(out, "overall progress: 1 out of 1 tasks") || !strings.Contains(out, "converged") {
		t.Fatalf("service create output:\n%s", out)
	}
	waitServiceLs(t, n, "g", "global 1/1")
	rows := serviceTasks(t, n, "g")
	if len(rows) != 1 || rows[0].Node != "global" || !strings.HasPrefix(rows[0].CurrentState, "Running") {
		t.Fatalf("global tasks = %+v", rows)
	}
}

// A replicated job runs its completions at most --max-concurrent at a time, shows
// Docker's job progress in service ls, and --force runs it again.
func TestReplicatedJob(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "rjob")
	w := watchTasks(t, n, "job")
	out := n.MustDocker("service", "create", "--name", "job", "--mode", "replicated-job", "--replicas", "3",
		"--max-concurrent", "1", "busybox", "sh", "-c", "sleep 1")
	_, maxRunning, samples := w.result()
	if maxRunning > 1 {
		t.Fatalf("%d job tasks ran at once with --max-concurrent 1 (%d samples)", maxRunning, samples)
	}
	if !strings.Contains(out, "job complete") {
		t.Fatalf("service create of a job did not report completion:\n%s", out)
	}
	waitServiceLs(t, n, "job", "replicated job 0/1 (3/3 completed)")
	rows := serviceTasks(t, n, "job")
	if len(rows) != 3 {
		t.Fatalf("job tasks = %+v", rows)
	}
	for _, r := range rows {
		// A job's tasks are desired Complete from the start, as Docker shows them.
		if !strings.HasPrefix(r.CurrentState, "Complete") || r.DesiredState != "Complete" || r.Error != "" {
			t.Fatalf("job task = %+v", r)
		}
	}
	before := serviceInspect(t, n, "job")

	n.MustDocker("service", "update", "--force", "job")
	after := serviceInspect(t, n, "job")
	if after.JobStatus == nil || before.JobStatus == nil || after.JobStatus.JobIteration.Index <= before.JobStatus.JobIteration.Index {
		t.Fatalf("job iteration before %+v after %+v", before.JobStatus, after.JobStatus)
	}
	waitServiceLs(t, n, "job", "replicated job 0/1 (3/3 completed)")
	var thisRun int
	for _, task := range apiTasks(t, n, "job") {
		if task.JobIteration != nil && task.JobIteration.Index == after.JobStatus.JobIteration.Index && task.Status.State == swarm.TaskStateComplete {
			thisRun++
		}
	}
	if thisRun != 3 {
		t.Fatalf("%d tasks completed in the forced run, want 3", thisRun)
	}
}

// A global job runs once to completion on the node.
func TestGlobalJob(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "gjob")
	out := n.MustDocker("service", "create", "--name", "gj", "--mode", "global-job", "busybox", "true")
	if !strings.Contains(out, "job complete") {
		t.Fatalf("service create of a global job:\n%s", out)
	}
	waitServiceLs(t, n, "gj", "global job 0/0 (1/1 completed)")
	rows := serviceTasks(t, n, "gj")
	if len(rows) != 1 || !strings.HasPrefix(rows[0].CurrentState, "Complete") || rows[0].DesiredState != "Complete" || rows[0].Node != "gjob" {
		t.Fatalf("global job tasks = %+v", rows)
	}
}
