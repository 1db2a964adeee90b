package dispatcher

import (
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/session"
)

// heartbeats counts what the dispatcher tells its Metrics, by node.
type heartbeats struct {
	mu     sync.Mutex
	byNode map[string]int
}

func (h *heartbeats) Heartbeat(node string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.byNode[node]++
}

// Only heartbeats of a live session count: one with a stale session is refused
// and not counted.
func TestHeartbeatsCounted(t *testing.T) {
	m := &heartbeats{byNode: map[string]int{}}
	_, d, ctx := servingWith(t, 5*time.Second, m)
	sid, msgs, err := d.Open(ctx, "n2", session.Hello{Addr: "10.0.0.3", ControlAddr: "10.0.0.3:2377", Description: swarm.NodeDescription{Hostname: "w2"}})
	if err != nil {
		t.Fatal(err)
	}
	next(t, msgs)
	for range 2 {
		if err := d.Heartbeat(ctx, "n2", sid); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Heartbeat(ctx, "n2", "stale"); err == nil {
		t.Fatal("a heartbeat of another session was accepted")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byNode["n2"] != 2 || len(m.byNode) != 1 {
		t.Fatalf("heartbeats counted %v, want n2: 2", m.byNode)
	}
}
