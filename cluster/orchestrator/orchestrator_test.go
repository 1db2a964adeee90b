package orchestrator

import (
	"context"
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/store/storetest"
)

// lab is a one-member store with a ready node and a running orchestrator.
type lab struct {
	t     *testing.T
	store *store.Store
	ctx   context.Context
}

func newLab(t *testing.T) *lab {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st := storetest.Leader(t, "n1")
	err := st.Update(ctx, func(tx store.Tx) error {
		n := &swarm.Node{ID: "n1"}
		n.Spec.Role, n.Spec.Availability = swarm.NodeRoleManager, swarm.NodeAvailabilityActive
		n.Status.State = swarm.NodeStateReady
		return tx.CreateNode(n)
	})
	if err != nil {
		t.Fatal(err)
	}
	o := New(st, slog.New(slog.DiscardHandler))
	done := make(chan struct{})
	go func() { defer close(done); _ = o.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &lab{t: t, store: st, ctx: ctx}
}

func (l *lab) createService(spec swarm.ServiceSpec) string {
	l.t.Helper()
	svc := &swarm.Service{ID: store.NewID(), Spec: spec}
	if err := l.store.Update(l.ctx, func(tx store.Tx) error { return tx.CreateService(svc) }); err != nil {
		l.t.Fatal(err)
	}
	return svc.ID
}

func (l *lab) tasks(serviceID string) []*swarm.Task {
	var out []*swarm.Task
	_ = l.store.View(func(tx store.ReadTx) error {
		var err error
		out, err = tx.TasksByService(serviceID)
		return err
	})
	sort.Slice(out, func(i, j int) bool {
		return out[i].Slot < out[j].Slot || (out[i].Slot == out[j].Slot && out[i].CreatedAt.Before(out[j].CreatedAt))
	})
	return out
}

// report plays the worker: sets a task's observed state.
func (l *lab) report(id string, state swarm.TaskState) {
	l.t.Helper()
	err := l.store.Update(l.ctx, func(tx store.Tx) error {
		t, err := tx.Task(id)
		if err != nil {
			return err
		}
		t.NodeID = "n1"
		t.Status = swarm.TaskStatus{Timestamp: time.Now(), State: state}
		return tx.UpdateTask(t)
	})
	if err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) waitTasks(serviceID, what string, cond func([]*swarm.Task) bool) []*swarm.Task {
	l.t.Helper()
	return l.waitTasksFor(serviceID, 10*time.Second, what, cond)
}

func (l *lab) waitTasksFor(serviceID string, timeout time.Duration, what string, cond func([]*swarm.Task) bool) []*swarm.Task {
	l.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ts := l.tasks(serviceID)
		if cond(ts) {
			return ts
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("timed out waiting for %s; tasks: %s", what, describe(ts))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func describe(ts []*swarm.Task) string {
	s := ""
	for _, t := range ts {
		s += "\n  slot " + string(rune('0'+t.Slot)) + " " + string(t.DesiredState) + "/" + string(t.Status.State)
	}
	return s
}

func countActive(ts []*swarm.Task) int {
	n := 0
	for _, t := range ts {
		if active(t) {
			n++
		}
	}
	return n
}

func replicated(n uint64) swarm.ServiceSpec {
	spec := swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "web"}}
	spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &n}
	spec.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Image: "busybox"}
	return spec
}

func TestReplicatedFillsSlotsAndScalesDown(t *testing.T) {
	l := newLab(t)
	id := l.createService(replicated(3))
	ts := l.waitTasks(id, "3 tasks", func(ts []*swarm.Task) bool { return len(ts) == 3 })
	for i, task := range ts {
		if task.Slot != i+1 || task.DesiredState != swarm.TaskStateRunning || task.Status.State != swarm.TaskStatePending {
			t.Fatalf("task %d: slot %d %s/%s", i, task.Slot, task.DesiredState, task.Status.State)
		}
	}
	err := l.store.Update(l.ctx, func(tx store.Tx) error {
		svc, err := tx.Service(id)
		if err != nil {
			return err
		}
		one := uint64(1)
		svc.Spec.Mode.Replicated.Replicas = &one
		return tx.UpdateService(svc)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Slots 2 and 3 go; unplaced tasks are done at once and pruned.
	l.waitTasks(id, "one task left", func(ts []*swarm.Task) bool { return len(ts) == 1 && ts[0].Slot == 1 })
}

func TestRestartPolicy(t *testing.T) {
	l := newLab(t)
	spec := replicated(1)
	zero, one := time.Duration(0), uint64(1)
	spec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionOnFailure, Delay: &zero, MaxAttempts: &one}
	id := l.createService(spec)
	first := l.waitTasks(id, "first task", func(ts []*swarm.Task) bool { return len(ts) == 1 })[0]
	l.report(first.ID, swarm.TaskStateFailed)
	ts := l.waitTasks(id, "a restart", func(ts []*swarm.Task) bool { return len(ts) == 2 && countActive(ts) == 1 })
	if ts[0].DesiredState != swarm.TaskStateShutdown {
		t.Fatalf("failed task desired state %s, want shutdown", ts[0].DesiredState)
	}
	// The second failure is past MaxAttempts: no third task.
	l.report(ts[1].ID, swarm.TaskStateFailed)
	time.Sleep(300 * time.Millisecond) // give a wrong restart the chance to appear
	if ts := l.tasks(id); len(ts) != 2 {
		t.Fatalf("restarted past max attempts: %s", describe(ts))
	}
}

func TestCompletedTaskNotRestartedOnFailurePolicy(t *testing.T) {
	l := newLab(t)
	spec := replicated(1)
	zero := time.Duration(0)
	spec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionOnFailure, Delay: &zero}
	id := l.createService(spec)
	first := l.waitTasks(id, "first task", func(ts []*swarm.Task) bool { return len(ts) == 1 })[0]
	l.report(first.ID, swarm.TaskStateComplete)
	time.Sleep(300 * time.Millisecond)
	if ts := l.tasks(id); len(ts) != 1 || ts[0].DesiredState != swarm.TaskStateRunning {
		t.Fatalf("a completed task was replaced under on-failure: %s", describe(ts))
	}
}

func TestRemovedServiceRetiresTasks(t *testing.T) {
	l := newLab(t)
	id := l.createService(replicated(2))
	ts := l.waitTasks(id, "2 tasks", func(ts []*swarm.Task) bool { return len(ts) == 2 })
	l.report(ts[0].ID, swarm.TaskStateRunning)
	if err := l.store.Update(l.ctx, func(tx store.Tx) error { return tx.DeleteService(id) }); err != nil {
		t.Fatal(err)
	}
	ts = l.waitTasks(id, "running task told to go", func(ts []*swarm.Task) bool {
		return len(ts) == 1 && ts[0].DesiredState == swarm.TaskStateRemove
	})
	l.report(ts[0].ID, swarm.TaskStateShutdown)
	l.waitTasks(id, "tasks deleted", func(ts []*swarm.Task) bool { return len(ts) == 0 })
}

// A job's tasks are desired Complete, as swarmkit makes them; a completed one
// stays so and is not replaced.
func TestJobTasksAreDesiredComplete(t *testing.T) {
	l := newLab(t)
	two := uint64(2)
	spec := swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "job"}}
	spec.Mode.ReplicatedJob = &swarm.ReplicatedJob{MaxConcurrent: &two, TotalCompletions: &two}
	spec.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Image: "busybox"}
	svc := &swarm.Service{ID: store.NewID(), Spec: spec, JobStatus: &swarm.JobStatus{}}
	if err := l.store.Update(l.ctx, func(tx store.Tx) error { return tx.CreateService(svc) }); err != nil {
		t.Fatal(err)
	}
	ts := l.waitTasks(svc.ID, "2 job tasks", func(ts []*swarm.Task) bool { return len(ts) == 2 })
	for _, task := range ts {
		if task.DesiredState != swarm.TaskStateComplete {
			t.Fatalf("job task desired %s, want complete", task.DesiredState)
		}
	}
	l.report(ts[0].ID, swarm.TaskStateComplete)
	l.report(ts[1].ID, swarm.TaskStateComplete)
	time.Sleep(300 * time.Millisecond) // give a wrong replacement the chance to appear
	ts = l.tasks(svc.ID)
	if len(ts) != 2 || ts[0].DesiredState != swarm.TaskStateComplete || ts[1].DesiredState != swarm.TaskStateComplete {
		t.Fatalf("completed job tasks changed: %s", describe(ts))
	}
}

// A stop-first update creates the replacement desired ready while the old task
// stops (so the worker can pull its image meanwhile), and starts it once the old
// one has stopped.
func TestStopFirstUpdateReadiesTheReplacement(t *testing.T) {
	l := newLab(t)
	id := l.createService(replicated(1))
	first := l.waitTasks(id, "first task", func(ts []*swarm.Task) bool { return len(ts) == 1 })[0]
	l.report(first.ID, swarm.TaskStateRunning)
	err := l.store.Update(l.ctx, func(tx store.Tx) error {
		svc, err := tx.Service(id)
		if err != nil {
			return err
		}
		svc.Spec.TaskTemplate.ContainerSpec.Env = []string{"V=2"}
		return tx.UpdateService(svc)
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := l.waitTasks(id, "the replacement desired ready", func(ts []*swarm.Task) bool {
		return len(ts) == 2 && ts[0].DesiredState == swarm.TaskStateShutdown && ts[1].DesiredState == swarm.TaskStateReady
	})
	l.report(ts[1].ID, swarm.TaskStateReady)
	// Still ready while the old task has not stopped.
	time.Sleep(200 * time.Millisecond) // give a wrong promotion the chance to happen
	if got := l.tasks(id); got[1].DesiredState != swarm.TaskStateReady {
		t.Fatalf("replacement promoted before the old task stopped: %s", describe(got))
	}
	l.report(ts[0].ID, swarm.TaskStateShutdown)
	l.waitTasks(id, "the replacement desired running", func(ts []*swarm.Task) bool {
		return len(ts) == 2 && ts[1].DesiredState == swarm.TaskStateRunning
	})
}

// setNodeState plays the dispatcher: marks node n1 ready or down.
func (l *lab) setNodeState(state swarm.NodeState) {
	l.t.Helper()
	err := l.store.Update(l.ctx, func(tx store.Tx) error {
		n, err := tx.Node("n1")
		if err != nil {
			return err
		}
		n.Status.State = state
		return tx.UpdateNode(n)
	})
	if err != nil {
		l.t.Fatal(err)
	}
}

// A running task whose node goes down is replaced at once (no restart delay:
// it did not fail), unless its restart policy never replaces tasks.
func TestTaskOnDownNodeIsReplaced(t *testing.T) {
	l := newLab(t)
	id := l.createService(replicated(1))
	ts := l.waitTasks(id, "one task", func(ts []*swarm.Task) bool { return len(ts) == 1 })
	l.report(ts[0].ID, swarm.TaskStateRunning)
	never := replicated(1)
	never.Annotations.Name = "never"
	never.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone}
	nid := l.createService(never)
	nts := l.waitTasks(nid, "one task", func(ts []*swarm.Task) bool { return len(ts) == 1 })
	l.report(nts[0].ID, swarm.TaskStateRunning)

	start := time.Now()
	l.setNodeState(swarm.NodeStateDown)
	ts = l.waitTasks(id, "a replacement", func(ts []*swarm.Task) bool {
		return len(ts) == 2 && ts[0].DesiredState == swarm.TaskStateShutdown && active(ts[1])
	})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("replacement made after %s: the restart delay (5 s) must not apply", took)
	}
	if ts[1].Slot != ts[0].Slot {
		t.Errorf("replacement in slot %d, want the lost task's slot %d", ts[1].Slot, ts[0].Slot)
	}
	if got := l.tasks(nid); len(got) != 1 || !active(got[0]) {
		t.Errorf("a task with restart condition none was touched: %s", describe(got))
	}
}

// A task of an update that the orchestrator itself stops (here: scaled away)
// did not fail: the update completes rather than pause.
func TestUpdateTaskScaledAwayIsNoFailure(t *testing.T) {
	l := newLab(t)
	spec := replicated(1)
	monitor := 300 * time.Millisecond
	spec.UpdateConfig = &swarm.UpdateConfig{Parallelism: 1, Monitor: monitor, FailureAction: swarm.UpdateFailureActionPause}
	id := l.createService(spec)
	first := l.waitTasks(id, "first task", func(ts []*swarm.Task) bool { return len(ts) == 1 })[0]
	l.report(first.ID, swarm.TaskStateRunning)
	change := func(fn func(*swarm.Service)) {
		t.Helper()
		err := l.store.Update(l.ctx, func(tx store.Tx) error {
			svc, err := tx.Service(id)
			if err != nil {
				return err
			}
			fn(svc)
			return tx.UpdateService(svc)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	change(func(svc *swarm.Service) { svc.Spec.TaskTemplate.ContainerSpec.Env = []string{"V=2"} })
	ts := l.waitTasks(id, "the replacement desired ready", func(ts []*swarm.Task) bool {
		return len(ts) == 2 && ts[1].DesiredState == swarm.TaskStateReady
	})
	l.report(ts[0].ID, swarm.TaskStateShutdown)
	l.waitTasks(id, "the replacement desired running", func(ts []*swarm.Task) bool {
		return len(ts) == 2 && ts[1].DesiredState == swarm.TaskStateRunning
	})
	l.report(ts[1].ID, swarm.TaskStateRunning)
	zero := uint64(0)
	change(func(svc *swarm.Service) { svc.Spec.Mode.Replicated.Replicas = &zero })
	replacement := ts[1].ID
	l.waitTasks(id, "the replacement scaled away", func(ts []*swarm.Task) bool {
		for _, t := range ts {
			if t.ID == replacement {
				return !active(t)
			}
		}
		return false
	})
	l.report(replacement, swarm.TaskStateShutdown)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var us *swarm.UpdateStatus
		_ = l.store.View(func(tx store.ReadTx) error {
			svc, err := tx.Service(id)
			if err == nil {
				us = svc.UpdateStatus
			}
			return err
		})
		if us != nil && us.State == swarm.UpdateStateCompleted {
			return
		}
		if us != nil && us.State == swarm.UpdateStatePaused || time.Now().After(deadline) {
			t.Fatalf("update status %+v, want completed", us)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A batch whose replacements a concurrent write refused (out of sequence) is
// not waited for: the updater goes back to read the service again. It once
// waited for replacements that were never made, and the update stayed "in
// progress" for good.
func TestUpdateBatchRefusedIsReadAgain(t *testing.T) {
	l := newLab(t)
	id := l.createService(replicated(1))
	l.waitTasks(id, "a task", func(ts []*swarm.Task) bool { return countActive(ts) == 1 })
	var svc *swarm.Service
	if err := l.store.View(func(tx store.ReadTx) error {
		var err error
		svc, err = tx.Service(id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	u := &updater{o: New(l.store, slog.New(slog.DiscardHandler)), serviceID: id, failed: map[string]bool{}}
	u.start = func(context.Context, *swarm.Service, []slotKey, swarm.UpdateOrder) (int, error) {
		return 0, store.ErrOutOfSequence
	}
	ctx, cancel := context.WithTimeout(l.ctx, 5*time.Second)
	defer cancel()
	failed, err := u.replace(ctx, make(chan store.Event), svc, []slotKey{{service: id, slot: 1}}, UpdateDefaults(nil))
	if err != nil || failed != "" {
		t.Fatalf("replace after a refused batch: failed %q, err %v; want it back at once to read again", failed, err)
	}
	if len(u.monitored) != 0 {
		t.Errorf("a batch never started is monitored: %+v", u.monitored)
	}
}
