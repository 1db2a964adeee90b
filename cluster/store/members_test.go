package store

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"
)

// TestFollowerCatchesUpFromSnapshot joins a second manager to a cluster
// whose log was compacted: it must install the leader's snapshot, tell its
// watchers about every object it got that way, then follow the log.
func TestFollowerCatchesUpFromSnapshot(t *testing.T) {
	addrA, transA := raft.NewInmemTransport("")
	addrB, transB := raft.NewInmemTransport("")
	transA.Connect(addrB, transB)
	transB.Connect(addrA, transA)

	cfgA := testConfig(t, t.TempDir())
	cfgA.NodeID, cfgA.Transport, cfgA.TrailingLogs = "manager-a", transA, 1
	a := openStore(t, cfgA)
	populate(t, a, "web")
	if err := a.Snapshot(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if first, _ := a.logs.FirstIndex(); first <= 1 {
		t.Fatalf("log not compacted by the snapshot: first index %d", first)
	}

	cfgB := testConfig(t, t.TempDir())
	cfgB.NodeID, cfgB.Transport = "manager-b", transB
	b, err := Open(testContext(t), cfgB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	events := b.Watch(testContext(t))
	if err := a.AddVoter(testContext(t), cfgB.NodeID, addrB); err != nil {
		t.Fatalf("AddVoter: %v", err)
	}
	restored := receive(t, events, len(kinds())) // one object of each kind
	seen := make(map[Kind]bool)
	for _, ev := range restored {
		if ev.Action != ActionCreate {
			t.Errorf("restore reported %s %s %s, want create", ev.Kind, ev.Action, ev.ID)
		}
		seen[ev.Kind] = true
	}
	if len(seen) != len(kinds()) {
		t.Errorf("restore reported kinds %v, want all %d", seen, len(kinds()))
	}

	// Writes after the join reach the follower through the log.
	svc := newService("api")
	update(t, a, func(tx Tx) error { return tx.CreateService(svc) })
	if ev := receive(t, events, 1)[0]; ev.ID != svc.ID || ev.Action != ActionCreate {
		t.Errorf("follower event %s %s %s, want create of service %s", ev.Kind, ev.Action, ev.ID, svc.ID)
	}
	if got, want := fingerprint(t, b), fingerprint(t, a); got != want {
		t.Errorf("follower state:\n%s\nleader state:\n%s", got, want)
	}
	if id, _ := b.Leader(); id != cfgA.NodeID {
		t.Errorf("follower sees leader %q, want %q", id, cfgA.NodeID)
	}
	err = b.Update(testContext(t), func(tx Tx) error { return tx.CreateService(newService("x")) })
	if !errors.Is(err, ErrNotLeader) {
		t.Errorf("Update on a follower without a forwarder: err = %v, want ErrNotLeader", err)
	}
}
