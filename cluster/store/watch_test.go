package store

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

func TestWatchDeliversChangesInOrder(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	all := s.Watch(ctx)
	services := s.Watch(ctx, KindService)

	svc := newService("web")
	tk := newTask(svc.ID, "n1")
	update(t, s, func(tx Tx) error {
		if err := tx.CreateService(svc); err != nil {
			return err
		}
		return tx.CreateTask(tk)
	})
	svc.Spec.Labels["v"] = "2"
	update(t, s, func(tx Tx) error { return tx.UpdateService(svc) })
	update(t, s, func(tx Tx) error { return tx.DeleteTask(tk.ID) })

	evs := receive(t, all, 4)
	want := []struct {
		kind   Kind
		action Action
		id     string
	}{
		{KindService, ActionCreate, svc.ID},
		{KindTask, ActionCreate, tk.ID},
		{KindService, ActionUpdate, svc.ID},
		{KindTask, ActionRemove, tk.ID},
	}
	for i, w := range want {
		ev := evs[i]
		if ev.Kind != w.kind || ev.Action != w.action || ev.ID != w.id {
			t.Errorf("event %d = %s %s %s, want %s %s %s", i, ev.Kind, ev.Action, ev.ID, w.kind, w.action, w.id)
		}
		if i > 0 && ev.Index < evs[i-1].Index {
			t.Errorf("event %d index %d after %d", i, ev.Index, evs[i-1].Index)
		}
	}
	if evs[0].Index != evs[1].Index {
		t.Errorf("one batch, two indexes: %d and %d", evs[0].Index, evs[1].Index)
	}
	upd, ok := evs[2].Object.(*swarm.Service)
	old, okOld := evs[2].Old.(*swarm.Service)
	if !ok || !okOld || upd.Spec.Labels["v"] != "2" || old.Spec.Labels["v"] != "" || upd.Version.Index != evs[2].Index {
		t.Errorf("update event carries %+v (old %+v)", evs[2].Object, evs[2].Old)
	}
	if removed, ok := evs[3].Object.(*swarm.Task); !ok || removed.ID != tk.ID || evs[3].Old != nil {
		t.Errorf("remove event carries %+v, old %+v", evs[3].Object, evs[3].Old)
	}

	svcEvs := receive(t, services, 2)
	if svcEvs[0].Action != ActionCreate || svcEvs[1].Action != ActionUpdate {
		t.Errorf("service-only watch got %s, %s", svcEvs[0].Action, svcEvs[1].Action)
	}
	// Each subscriber gets its own copy.
	svcEvs[1].Object.(*swarm.Service).Spec.Labels["v"] = "mutated"
	if upd.Spec.Labels["v"] != "2" {
		t.Error("subscribers share event objects")
	}

	cancel()
	deadline := time.After(10 * time.Second)
	for ch := range map[<-chan Event]bool{all: true, services: true} {
		select {
		case _, open := <-ch:
			for open {
				_, open = <-ch
			}
		case <-deadline:
			t.Fatal("watch channel not closed after its context ended")
		}
	}
}

func TestWatchIsClosedByClose(t *testing.T) {
	s := newStore(t)
	ch := s.Watch(testContext(t))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, open := <-ch:
		if open {
			t.Error("event after Close")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch channel not closed by Close")
	}
}

// TestViewAndWatchLosesNothing rebuilds the task versions from a snapshot
// plus the change feed while writers run, and checks the result equals the
// final state: nothing lost, nothing applied twice.
func TestViewAndWatchLosesNothing(t *testing.T) {
	s := newStore(t)
	const writers, rounds = 4, 25
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tk := newTask(fmt.Sprint("svc", w), "n1")
			if err := s.Update(context.Background(), func(tx Tx) error { return tx.CreateTask(tk) }); err != nil {
				t.Errorf("writer %d create: %v", w, err)
				return
			}
			for i := range rounds {
				tk.Status.Message = fmt.Sprint(i)
				if err := s.Update(context.Background(), func(tx Tx) error { return tx.UpdateTask(tk) }); err != nil {
					t.Errorf("writer %d update %d: %v", w, i, err)
					return
				}
			}
			if w%2 == 1 {
				return
			}
			if err := s.Update(context.Background(), func(tx Tx) error { return tx.DeleteTask(tk.ID) }); err != nil {
				t.Errorf("writer %d delete: %v", w, err)
			}
		}()
	}
	close(start)

	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	// Let the writers get going, so the snapshot lands mid-stream.
	waitFor(t, func() bool { return s.raft.AppliedIndex() > 20 })
	view := make(map[string]uint64)
	var snapIndex uint64
	ch, err := s.ViewAndWatch(ctx, func(tx ReadTx) error {
		snapIndex = tx.Index()
		tasks, err := tx.Tasks()
		for _, tk := range tasks {
			view[tk.ID] = tk.Version.Index
		}
		return err
	}, KindTask)
	if err != nil {
		t.Fatal(err)
	}
	final0 := maps.Clone(view)
	wg.Wait()
	// Changes arrive in order: once the marker's creation arrives, every
	// earlier change has too.
	marker := newTask("marker", "n1")
	update(t, s, func(tx Tx) error { return tx.CreateTask(marker) })

	last, events := snapIndex, 0
	for done := false; !done; {
		select {
		case ev := <-ch:
			if ev.Index < last || ev.Index <= snapIndex {
				t.Fatalf("event at index %d after %d (snapshot %d): duplicate or out of order", ev.Index, last, snapIndex)
			}
			last, events = ev.Index, events+1
			switch ev.Action {
			case ActionCreate:
				if _, dup := view[ev.ID]; dup {
					t.Fatalf("create of %s seen twice", ev.ID)
				}
				view[ev.ID] = ev.Index
			case ActionUpdate:
				if from := ev.Old.(*swarm.Task).Version.Index; view[ev.ID] != from {
					t.Fatalf("update of %s from version %d, view has %d: a change was lost", ev.ID, from, view[ev.ID])
				}
				view[ev.ID] = ev.Index
			case ActionRemove:
				delete(view, ev.ID)
			}
			done = ev.ID == marker.ID
		case <-time.After(20 * time.Second):
			t.Fatalf("feed stalled at index %d", last)
		}
	}

	t.Logf("snapshot at index %d held %d tasks; %d events followed", snapIndex, len(final0), events)
	final := make(map[string]uint64)
	s.View(func(tx ReadTx) error {
		tasks, err := tx.Tasks()
		for _, tk := range tasks {
			final[tk.ID] = tk.Version.Index
		}
		return err
	})
	if len(final) != writers/2+1 {
		t.Errorf("store has %d tasks, want %d", len(final), writers/2+1)
	}
	if fmt.Sprint(view) != fmt.Sprint(final) {
		t.Errorf("rebuilt state %v, store %v", view, final)
	}
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met before the deadline")
		}
		time.Sleep(time.Millisecond)
	}
}

// A subscriber that falls more than maxQueue changes behind gets one resync
// event in their place, then the changes that follow.
func TestFeedOverflowResyncs(t *testing.T) {
	f := newFeed()
	defer f.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, _ := f.subscribe(ctx, "", nil)
	svc, _ := json.Marshal(newService("web"))
	for i := 0; i <= 2*maxQueue; i++ { // the sender may have taken some before it blocks
		f.publish([]change{{kind: KindService, action: ActionUpdate, id: "s", index: uint64(i + 1), data: svc}})
	}
	after := uint64(3 * maxQueue)
	deadline := time.After(10 * time.Second)
	sawResync := false
	for {
		select {
		case ev := <-ch:
			switch {
			case ev.Action == ActionResync:
				sawResync = true
				f.publish([]change{{kind: KindService, action: ActionUpdate, id: "s", index: after, data: svc}})
			case ev.Index == after:
				if !sawResync {
					t.Fatal("the change after the overflow came before any resync")
				}
				return
			}
		case <-deadline:
			t.Fatalf("no resync and following change (resync seen: %v)", sawResync)
		}
	}
}
