package store

import (
	"sync"
	"testing"
	"time"
)

// commits records what the store tells its Metrics.
type commits struct {
	mu   sync.Mutex
	seen []time.Duration
}

func (c *commits) Committed(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = append(c.seen, d)
}

// Each write the leader commits is timed once, and the Raft state read for
// metrics follows the writes.
func TestStatsFollowWrites(t *testing.T) {
	m := &commits{}
	cfg := testConfig(t, t.TempDir())
	cfg.Metrics = m
	s := openStore(t, cfg)
	before := s.Stats()
	for i := range 3 {
		update(t, s, func(tx Tx) error { return tx.CreateService(newService("web" + string(rune('a'+i)))) })
	}
	after := s.Stats()
	if !after.Leader || after.AppliedIndex < before.AppliedIndex+3 || after.LastIndex < after.AppliedIndex ||
		after.CommitIndex < after.AppliedIndex || after.LogEntries == 0 || after.LogEntries > after.LastIndex || after.DBBytes <= 0 {
		t.Fatalf("stats before %+v after three writes %+v", before, after)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.seen) != 3 {
		t.Fatalf("%d commits timed, want 3", len(m.seen))
	}
	for _, d := range m.seen {
		if d <= 0 || d > 30*time.Second {
			t.Fatalf("a commit timed at %s", d)
		}
	}
}
