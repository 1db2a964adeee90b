package scheduler

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/store/storetest"
)

// placements records what the loop tells its Metrics.
type placements struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (p *placements) Placed(wait time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.waits = append(p.waits, wait)
}

func (p *placements) seen() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Duration(nil), p.waits...)
}

// Each task the loop assigns is reported once, with how long it waited since
// it was created; a task no node can take is not.
func TestLoopReportsPlacements(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := storetest.Leader(t, "n1")
	err := st.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateNode(node("n1")); err != nil {
			return err
		}
		for _, tk := range []*swarm.Task{task("t1", "s1"), task("t2", "s1"), task("t3", "s1", constrained("node.labels.zone==nowhere"))} {
			if err := tx.CreateTask(tk); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m := &placements{}
	loopCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = NewLoop(st, slog.New(slog.DiscardHandler), m).Run(loopCtx) }()
	defer func() { stop(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for len(m.seen()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("placements reported: %v, want 2", m.seen())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, w := range m.seen() {
		if w < 0 || w > 30*time.Second {
			t.Fatalf("a task waited %s", w)
		}
	}
	// The unplaceable task is written (its reason) but never reported placed.
	deadline = time.Now().Add(10 * time.Second)
	for {
		var reason string
		_ = st.View(func(tx store.ReadTx) error {
			tk, err := tx.Task("t3")
			if err == nil {
				reason = tk.Status.Err
			}
			return err
		})
		if reason != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the unplaceable task was given no reason")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(m.seen()); n != 2 {
		t.Fatalf("%d placements reported, want 2", n)
	}
}
