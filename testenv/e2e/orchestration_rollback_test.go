package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// `docker service rollback` puts the previous spec back and reruns its tasks.
func TestServiceRollback(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "rollback")
	n.MustDocker("tag", "busybox:latest", "busybox:other")
	n.MustDocker("service", "create", "-d", "--name", "web", "--replicas", "2",
		"--stop-grace-period", "1s", "--update-monitor", "1s", "--rollback-monitor", "1s",
		"busybox:latest", "sleep", "300")
	waitRunning(t, n, "web", 2)
	n.MustDocker("service", "update", "-d", "--image", "busybox:other", "web")
	waitUpdateState(t, n, "web", swarm.UpdateStateCompleted)
	// The stored specs: inspect fills the spec's defaults but not the previous
	// spec's, as dockerd's does.
	updated := storedService(t, n, "web")
	if updated.PreviousSpec == nil {
		t.Fatal("no PreviousSpec after an update")
	}

	out := n.MustDocker("service", "rollback", "web")
	for _, want := range []string{"rollback: manually requested rollback", "overall progress: rolling back update: 2 out of 2 tasks", "verify: Service web converged"} {
		if !strings.Contains(out, want) {
			t.Fatalf("service rollback output lacks %q:\n%s", want, out)
		}
	}
	svc := waitUpdateState(t, n, "web", swarm.UpdateStateRollbackCompleted)
	if svc.UpdateStatus.Message != "rollback completed" {
		t.Fatalf("UpdateStatus = %+v", *svc.UpdateStatus)
	}
	if stored := storedService(t, n, "web"); !jsonEqual(t, stored.Spec, *updated.PreviousSpec) {
		t.Fatalf("spec after rollback differs from the previous spec:\n%s\nwant\n%s", mustJSON(t, stored.Spec), mustJSON(t, *updated.PreviousSpec))
	}
	if svc.PreviousSpec == nil || svc.PreviousSpec.TaskTemplate.ContainerSpec.Image != "busybox:other" {
		t.Fatalf("PreviousSpec after rollback = %+v", svc.PreviousSpec)
	}
	waitRunning(t, n, "web", 2)
	if got := runningImages(t, n, "web"); strings.Join(got, ",") != "busybox:latest,busybox:latest" {
		t.Fatalf("running images after rollback = %v", got)
	}
}

// An update whose new tasks fail rolls back by itself with
// --update-failure-action rollback.
func TestServiceUpdateFailureRollsBack(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "autorollback")
	n.MustDocker("service", "create", "-d", "--name", "web", "--replicas", "2",
		"--stop-grace-period", "1s", "--update-monitor", "2s", "--rollback-monitor", "1s",
		"--update-failure-action", "rollback", "busybox:latest", "sleep", "300")
	waitRunning(t, n, "web", 2)

	out := n.MustDocker("service", "update", "--image", "busybox:nope", "web")
	for _, want := range []string{"rollback: update rolled back due to failure or early termination of task", "verify: Service web converged"} {
		if !strings.Contains(out, want) {
			t.Fatalf("service update output lacks %q:\n%s", want, out)
		}
	}
	svc := waitUpdateState(t, n, "web", swarm.UpdateStateRollbackCompleted)
	if img := svc.Spec.TaskTemplate.ContainerSpec.Image; img != "busybox:latest" {
		t.Fatalf("image after automatic rollback = %q", img)
	}
	waitRunning(t, n, "web", 2)
	if got := runningImages(t, n, "web"); strings.Join(got, ",") != "busybox:latest,busybox:latest" {
		t.Fatalf("running images after rollback = %v", got)
	}
	// The failed task of the bad image stays in the history with its error.
	var failed bool
	for _, r := range serviceTasks(t, n, "web") {
		if r.Image == "busybox:nope" && r.Error != "" {
			failed = true
		}
	}
	if !failed {
		t.Fatalf("no failed busybox:nope task in service ps:\n%s", n.MustDocker("service", "ps", "--no-trunc", "web"))
	}
}

// With the default failure action the update pauses, and a non-detached update
// says so and fails.
func TestServiceUpdateFailurePauses(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "pause")
	n.MustDocker("service", "create", "-d", "--name", "web", "--replicas", "2",
		"--stop-grace-period", "1s", "--update-monitor", "2s", "busybox:latest", "sleep", "300")
	waitRunning(t, n, "web", 2)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := n.DockerContext(ctx, "service", "update", "--image", "busybox:nope", "web")
	if err == nil {
		t.Fatalf("service update to a missing image succeeded:\n%s", out)
	}
	if !strings.Contains(out, "service update paused: update paused due to failure or early termination of task ") {
		t.Fatalf("service update output:\n%s", out)
	}
	svc := waitUpdateState(t, n, "web", swarm.UpdateStatePaused)
	if !strings.HasPrefix(svc.UpdateStatus.Message, "update paused due to failure or early termination of task ") {
		t.Fatalf("UpdateStatus = %+v", *svc.UpdateStatus)
	}
	// Paused means paused: the other replica keeps its old task.
	if got := runningImages(t, n, "web"); strings.Join(got, ",") != "busybox:latest" {
		t.Fatalf("running images of a paused update = %v", got)
	}
	// The pause keeps when the update started: before its first new task.
	for _, task := range apiTasks(t, n, "web") {
		if task.Spec.ContainerSpec.Image == "busybox:nope" && !svc.UpdateStatus.StartedAt.Before(task.CreatedAt) {
			t.Fatalf("UpdateStatus.StartedAt %s is not before the update's task (created %s)", svc.UpdateStatus.StartedAt, task.CreatedAt)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func jsonEqual(t *testing.T, a, b any) bool {
	t.Helper()
	return mustJSON(t, a) == mustJSON(t, b)
}
