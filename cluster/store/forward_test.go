package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/moby/moby/api/types/swarm"
)

// localForwarder reaches other members in this process, as the control port
// reaches them across nodes, passing errors through their codes.
type localForwarder struct {
	mu      sync.Mutex
	members map[raft.ServerAddress]*Store
}

func (f *localForwarder) member(addr raft.ServerAddress) *Store {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.members[addr]
}

func (f *localForwarder) Propose(ctx context.Context, leader raft.ServerAddress, data []byte) (uint64, error) {
	index, err := f.member(leader).Propose(ctx, data)
	if err != nil {
		return 0, ErrorFromCode(ErrorCode(err), err.Error())
	}
	return index, nil
}

func (f *localForwarder) ReadIndex(ctx context.Context, leader raft.ServerAddress) (uint64, error) {
	index, err := f.member(leader).ReadIndex(ctx)
	if err != nil {
		return 0, ErrorFromCode(ErrorCode(err), err.Error())
	}
	return index, nil
}

// threeManagers starts a leader and two followers on an in-memory network.
func threeManagers(t testing.TB) (leader *Store, followers []*Store) {
	t.Helper()
	fwd := &localForwarder{members: map[raft.ServerAddress]*Store{}}
	var addrs []raft.ServerAddress
	var transports []*raft.InmemTransport
	for range 3 {
		addr, tr := raft.NewInmemTransport("")
		addrs, transports = append(addrs, addr), append(transports, tr)
	}
	for i, tr := range transports {
		for j, other := range transports {
			if i != j {
				tr.Connect(addrs[j], other)
			}
		}
	}
	ctx := testContext(t)
	var stores []*Store
	for i, tr := range transports {
		cfg := testConfig(t, t.TempDir())
		cfg.NodeID, cfg.Transport, cfg.Forward = []string{"m0", "m1", "m2"}[i], tr, fwd
		var s *Store
		if i == 0 {
			s = openStore(t, cfg) // bootstraps and leads
		} else {
			var err error
			if s, err = Open(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
		}
		fwd.members[addrs[i]] = s
		stores = append(stores, s)
	}
	for i := 1; i < 3; i++ {
		if err := stores[0].AddVoter(ctx, stores[i].cfg.NodeID, addrs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return stores[0], stores[1:]
}

// TestFollowerForwardsWrites writes through a follower: the write reaches the
// leader, the follower reads it back at once, and the store's refusals come
// back as the errors they are.
func TestFollowerForwardsWrites(t *testing.T) {
	leader, followers := threeManagers(t)
	f := followers[0]
	svc := newService("web")
	update(t, f, func(tx Tx) error { return tx.CreateService(svc) })
	if svc.Version.Index == 0 {
		t.Fatal("a forwarded create left the object's version unset")
	}
	for _, s := range []*Store{f, leader} {
		var got *swarm.Service
		err := s.View(func(tx ReadTx) error {
			var err error
			got, err = tx.Service(svc.ID)
			return err
		})
		if err != nil || got.Version.Index != svc.Version.Index {
			t.Fatalf("read after a forwarded write: %v, %+v (want version %d)", err, got, svc.Version.Index)
		}
	}

	// A name taken is a conflict, as on the leader.
	err := f.Update(testContext(t), func(tx Tx) error { return tx.CreateService(newService("web")) })
	if !isConflict(err) {
		t.Errorf("duplicate name through a follower: err = %v, want a conflict", err)
	}
	// A stale version is out of sequence: the leader changed the service after
	// the follower's caller read it.
	stale := *svc
	stale.Spec.Labels = map[string]string{"v": "2"}
	fresh := *svc
	fresh.Spec.Labels = map[string]string{"v": "1"}
	update(t, leader, func(tx Tx) error { return tx.UpdateService(&fresh) })
	err = followers[1].Update(testContext(t), func(tx Tx) error { return tx.UpdateService(&stale) })
	if !errors.Is(err, ErrOutOfSequence) {
		t.Errorf("stale update through a follower: err = %v, want ErrOutOfSequence", err)
	}
}

// TestSyncSeesAcknowledgedWrites: after Sync a follower has every write the
// leader had acknowledged.
func TestSyncSeesAcknowledgedWrites(t *testing.T) {
	leader, followers := threeManagers(t)
	for i := range 20 {
		svc := newService("svc" + string(rune('a'+i)))
		update(t, leader, func(tx Tx) error { return tx.CreateService(svc) })
		if err := followers[1].Sync(testContext(t)); err != nil {
			t.Fatal(err)
		}
		err := followers[1].View(func(tx ReadTx) error {
			_, err := tx.Service(svc.ID)
			return err
		})
		if err != nil {
			t.Fatalf("after Sync, write %d is missing on the follower: %v", i, err)
		}
	}
}

// After a write commits, the leader appends a barrier so that the followers
// hear of the commit at once rather than after raft's commit timeout; a store
// with no follower appends none.
func TestCommittedWriteNudgesFollowers(t *testing.T) {
	leader, followers := threeManagers(t)
	svc := newService("nudged")
	update(t, followers[0], func(tx Tx) error { return tx.CreateService(svc) })
	index := svc.Version.Index
	deadline := time.Now().Add(10 * time.Second)
	for {
		var l raft.Log
		err := leader.logs.GetLog(index+1, &l)
		if err == nil {
			if l.Type != raft.LogBarrier {
				t.Fatalf("entry after the write is %s, want a barrier", l.Type)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no entry after the write at %d: %v", index, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !leader.hasFollowers() {
		t.Error("a leader of three has no followers")
	}
	if newStore(t).hasFollowers() {
		t.Error("a store of one has followers")
	}
}
