package dispatcher

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/agent"
	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/store/storetest"
)

func openStore(t *testing.T) (*store.Store, context.Context) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return storetest.Leader(t, "n1"), ctx
}

func next(t *testing.T, ch <-chan agent.AssignmentSet) agent.AssignmentSet {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no assignment change")
	}
	return agent.AssignmentSet{}
}

func TestAssignmentsAndStatus(t *testing.T) {
	st, ctx := openStore(t)
	svc := &swarm.Service{ID: "s1", Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "web"}}}
	task := &swarm.Task{ID: "t1", ServiceID: "s1", DesiredState: swarm.TaskStateRunning}
	task.Status.State = swarm.TaskStatePending
	err := st.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateService(svc); err != nil {
			return err
		}
		return tx.CreateTask(task)
	})
	if err != nil {
		t.Fatal(err)
	}
	d := New(st, slog.New(slog.DiscardHandler))
	sets, err := d.Assignments(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if first := next(t, sets); !first.Full || len(first.Tasks) != 0 {
		t.Fatalf("first set %+v, want a full empty set", first)
	}
	// The scheduler places the task on n1: the worker hears of it, with the service name.
	err = st.Update(ctx, func(tx store.Tx) error {
		t, err := tx.Task("t1")
		if err != nil {
			return err
		}
		t.NodeID, t.Status.State = "n1", swarm.TaskStateAssigned
		return tx.UpdateTask(t)
	})
	if err != nil {
		t.Fatal(err)
	}
	set := next(t, sets)
	if len(set.Tasks) != 1 || set.Tasks[0].Task.ID != "t1" || set.Tasks[0].ServiceName != "web" {
		t.Fatalf("assignment %+v", set)
	}

	report := func(state swarm.TaskState) {
		t.Helper()
		err := d.UpdateTaskStatus(ctx, "n1", []agent.StatusUpdate{{TaskID: "t1", Status: swarm.TaskStatus{State: state}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	report(swarm.TaskStateRunning)
	report(swarm.TaskStateStarting) // late, out of order: ignored
	if err := d.UpdateTaskStatus(ctx, "n2", []agent.StatusUpdate{{TaskID: "t1", Status: swarm.TaskStatus{State: swarm.TaskStateFailed}}}); err != nil {
		t.Fatal(err)
	}
	var got swarm.TaskState
	_ = st.View(func(tx store.ReadTx) error {
		tk, err := tx.Task("t1")
		got = tk.Status.State
		return err
	})
	if got != swarm.TaskStateRunning {
		t.Fatalf("task state %s, want running (backwards and foreign reports ignored)", got)
	}

	// The worker's own reports are not echoed back as assignments; a desired state
	// change is, and a deletion arrives as a removal.
	err = st.Update(ctx, func(tx store.Tx) error {
		tk, err := tx.Task("t1")
		if err != nil {
			return err
		}
		tk.DesiredState = swarm.TaskStateShutdown
		return tx.UpdateTask(tk)
	})
	if err != nil {
		t.Fatal(err)
	}
	if set := next(t, sets); len(set.Tasks) != 1 || set.Tasks[0].Task.DesiredState != swarm.TaskStateShutdown {
		t.Fatalf("desired state change %+v", set)
	}
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.DeleteTask("t1") }); err != nil {
		t.Fatal(err)
	}
	if set := next(t, sets); len(set.Removed) != 1 || set.Removed[0] != "t1" {
		t.Fatalf("removal %+v", set)
	}
}
