package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/testenv"
)

// apiTasks lists a service's tasks through GET /tasks, as the CLI sees them.
func apiTasks(t *testing.T, n *testenv.Node, service string) []swarm.Task {
	t.Helper()
	tasks, err := listTasks(context.Background(), n, service)
	if err != nil {
		t.Fatal(err)
	}
	return tasks
}

func listTasks(ctx context.Context, n *testenv.Node, service string) ([]swarm.Task, error) {
	filters := url.QueryEscape(fmt.Sprintf(`{"service":{%q:true}}`, service))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://shoal/v1.45/tasks?filters="+filters, nil)
	if err != nil {
		return nil, err
	}
	resp, err := n.HTTPClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("list tasks of %s: %w", service, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("list tasks of %s: status %d", service, resp.StatusCode)
	}
	var tasks []swarm.Task
	if err := json.NewDecoder(resp.Body).Decode(&tasks); err != nil {
		return nil, fmt.Errorf("list tasks of %s: %w", service, err)
	}
	return tasks, nil
}

// taskWatch polls a service's tasks in the background and remembers the fewest and
// the most slots that had a running task at any one time.
type taskWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	minRunning int
	maxRunning int
	samples    int
	images     map[string]bool
}

func watchTasks(t *testing.T, n *testenv.Node, service string) *taskWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &taskWatch{cancel: cancel, done: make(chan struct{}), minRunning: 1 << 30, images: map[string]bool{}}
	t.Cleanup(w.stop)
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			tasks, err := listTasks(ctx, n, service)
			if err == nil {
				w.record(tasks)
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *taskWatch) record(tasks []swarm.Task) {
	slots := map[int]bool{}
	for _, task := range tasks {
		if task.Status.State == swarm.TaskStateRunning {
			slots[task.Slot] = true
			if task.Spec.ContainerSpec != nil {
				w.mu.Lock()
				w.images[task.Spec.ContainerSpec.Image] = true
				w.mu.Unlock()
			}
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples++
	w.minRunning = min(w.minRunning, len(slots))
	w.maxRunning = max(w.maxRunning, len(slots))
}

// stop ends the watch and returns the fewest and most running slots it saw.
func (w *taskWatch) stop() {
	w.cancel()
	<-w.done
}

func (w *taskWatch) result() (minRunning, maxRunning, samples int) {
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.minRunning, w.maxRunning, w.samples
}

// serviceSpec reads a service through `docker service inspect`.
func serviceInspect(t *testing.T, n *testenv.Node, name string) swarm.Service {
	t.Helper()
	var svc swarm.Service
	inspect(t, n, "service", name, &svc)
	return svc
}

// waitUpdateState waits until the service's UpdateStatus has the state want.
func waitUpdateState(t *testing.T, n *testenv.Node, name string, want swarm.UpdateState) swarm.Service {
	t.Helper()
	var svc swarm.Service
	testenv.WaitFor(t, 90*time.Second, name+" update state "+string(want), func() (bool, string) {
		out, err := n.Docker("service", "inspect", name)
		if err != nil {
			return false, out
		}
		var list []swarm.Service
		if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 {
			return false, out
		}
		svc = list[0]
		if svc.UpdateStatus == nil {
			return false, "no UpdateStatus"
		}
		return svc.UpdateStatus.State == want, fmt.Sprintf("%+v", *svc.UpdateStatus)
	})
	return svc
}

// runningImages is the images of the service's tasks that are desired and
// observed running, sorted.
func runningImages(t *testing.T, n *testenv.Node, service string) []string {
	t.Helper()
	var out []string
	for _, task := range apiTasks(t, n, service) {
		if task.DesiredState == swarm.TaskStateRunning && task.Status.State == swarm.TaskStateRunning {
			out = append(out, task.Spec.ContainerSpec.Image)
		}
	}
	sort.Strings(out)
	return out
}

// A stop-first rolling update never has more than --update-parallelism tasks out of
// service, reports Docker's progress, and ends "completed".
func TestRollingUpdateStopFirst(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "upd-stop")
	n.MustDocker("tag", "busybox:latest", "busybox:other")
	n.MustDocker("service", "create", "-d", "--name", "web", "--replicas", "4",
		"--stop-grace-period", "1s", "--update-parallelism", "2", "--update-delay", "1s",
		"--update-monitor", "1s", "busybox:latest", "sleep", "300")
	waitRunning(t, n, "web", 4)

	w := watchTasks(t, n, "web")
	out := n.MustDocker("service", "update", "--image", "busybox:other", "web")
	minRunning, _, samples := w.result()
	if minRunning < 2 {
		t.Fatalf("a stop-first update with parallelism 2 left only %d of 4 tasks running (%d samples)", minRunning, samples)
	}
	for _, want := range []string{"overall progress: 4 out of 4 tasks", "verify: Service web converged"} {
		if !strings.Contains(out, want) {
			t.Fatalf("service update output lacks %q:\n%s", want, out)
		}
	}
	// The CLI stops watching once the tasks were stable for the monitor period; the
	// updater marks the update completed after the same period, as swarmkit does.
	svc := waitUpdateState(t, n, "web", swarm.UpdateStateCompleted)
	if us := svc.UpdateStatus; us.Message != "update completed" || us.CompletedAt == nil {
		t.Fatalf("UpdateStatus = %+v", us)
	}
	if got := runningImages(t, n, "web"); strings.Join(got, ",") != strings.Repeat("busybox:other,", 3)+"busybox:other" {
		t.Fatalf("running images after update = %v", got)
	}
	if svc.PreviousSpec == nil || svc.PreviousSpec.TaskTemplate.ContainerSpec.Image != "busybox:latest" {
		t.Fatalf("PreviousSpec = %+v", svc.PreviousSpec)
	}
}

// As swarmkit's, the updater moves on once a batch runs and watches the replaced
// tasks for the monitor period meanwhile: three batches are replaced well within
// one monitor period, and the update completes only after it.
func TestRollingUpdateMonitorsWhileItGoesOn(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "upd-monitor")
	n.MustDocker("service", "create", "-d", "--name", "web", "--replicas", "3",
		"--stop-grace-period", "1s", "--update-monitor", "20s", "busybox:latest", "sleep", "300")
	waitRunning(t, n, "web", 3)
	n.MustDocker("service", "update", "-d", "--env-add", "V=2", "web")
	updated := func() int {
		c := 0
		for _, task := range apiTasks(t, n, "web") {
			if task.Status.State == swarm.TaskStateRunning && slices.Contains(task.Spec.ContainerSpec.Env, "V=2") {
				c++
			}
		}
		return c
	}
	// With a 20 s monitor, waiting it out per batch would take a minute.
	testenv.WaitFor(t, 15*time.Second, "all three replicas updated within one monitor period", func() (bool, string) {
		c := updated()
		return c == 3, fmt.Sprint(c, " updated")
	})
	var svc swarm.Service
	inspect(t, n, "service", "web", &svc)
	if svc.UpdateStatus == nil || svc.UpdateStatus.State != swarm.UpdateStateUpdating {
		t.Fatalf("UpdateStatus while the last batch is monitored = %+v", svc.UpdateStatus)
	}
	waitUpdateState(t, n, "web", swarm.UpdateStateCompleted)
}

// While a stop-first update waits for the old task to stop, its replacement is
// already there, desired Ready and prepared, as under Docker.
func TestStopFirstReplacementWaitsReady(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "upd-ready")
	// sleep ignores SIGTERM: the old task takes its whole 5 s grace period to stop.
	n.MustDocker("service", "create", "-d", "--name", "web", "--stop-grace-period", "5s", "busybox:latest", "sleep", "300")
	waitRunning(t, n, "web", 1)
	n.MustDocker("service", "update", "-d", "--env-add", "V=2", "web")
	testenv.WaitFor(t, 30*time.Second, "the replacement desired and prepared Ready next to the stopping task", func() (bool, string) {
		rows := serviceTasks(t, n, "web")
		var ready, stopping bool
		for _, r := range rows {
			ready = ready || (r.DesiredState == "Ready" && strings.HasPrefix(r.CurrentState, "Ready"))
			stopping = stopping || (r.DesiredState == "Shutdown" && strings.HasPrefix(r.CurrentState, "Running"))
		}
		return ready && stopping, fmt.Sprintf("%+v", rows)
	})
	waitUpdateState(t, n, "web", swarm.UpdateStateCompleted)
}

// A start-first rolling update never lets the running count drop below the replica
// count.
func TestRollingUpdateStartFirst(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "upd-start")
	n.MustDocker("tag", "busybox:latest", "busybox:other")
	n.MustDocker("service", "create", "-d", "--name", "web", "--replicas", "4",
		"--stop-grace-period", "1s", "--update-parallelism", "2", "--update-delay", "1s",
		"--update-monitor", "1s", "--update-order", "start-first", "busybox:latest", "sleep", "300")
	waitRunning(t, n, "web", 4)

	w := watchTasks(t, n, "web")
	out := n.MustDocker("service", "update", "--image", "busybox:other", "web")
	minRunning, _, samples := w.result()
	if minRunning < 4 {
		t.Fatalf("a start-first update let the running slots drop to %d of 4 (%d samples)", minRunning, samples)
	}
	if !strings.Contains(out, "verify: Service web converged") {
		t.Fatalf("service update output:\n%s", out)
	}
	waitUpdateState(t, n, "web", swarm.UpdateStateCompleted)
	waitRunning(t, n, "web", 4)
	if got := runningImages(t, n, "web"); strings.Join(got, ",") != strings.Repeat("busybox:other,", 3)+"busybox:other" {
		t.Fatalf("running images after update = %v", got)
	}
}
