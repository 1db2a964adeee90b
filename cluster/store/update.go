package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// View runs fn against a consistent read snapshot of the store.
func (s *Store) View(fn func(tx ReadTx) error) error {
	txn, index := s.fsm.read()
	return fn(&readTx{txn: txn, index: index})
}

// Update runs fn against the current state; the writes fn makes are
// proposed as one batch through Raft and applied atomically. Reads inside fn
// see fn's own writes. Update returns fn's error; or ErrOutOfSequence, or an
// error with Conflict() or NotFound(), when the batch is refused on apply; or
// ErrNoLeader when no leader is elected within a few seconds. If fn writes
// nothing, nothing is proposed. On success, the Meta of every object passed to
// a Create or Update method is set to what the store recorded.
//
// On a follower, fn runs on state brought up to date with the leader's first
// (Sync), and the batch is forwarded to the leader; Update returns once the
// follower has applied it too, so a read after it sees the write.
//
// ctx bounds how long Raft may take to accept the proposal; once accepted,
// Update waits for it to commit or for leadership to be lost. As with any
// Raft proposal, an ErrNotLeader after the proposal was accepted leaves the
// outcome unknown: the entry may still commit under the next leader.
func (s *Store) Update(ctx context.Context, fn func(tx Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	leader, err := s.syncLeader(ctx)
	if err != nil {
		return err
	}
	db, index := s.fsm.fork()
	txn := db.Txn(true)
	defer txn.Abort()
	tx := &writeTx{readTx: readTx{txn: txn, index: index}, local: applier{txn: txn}}
	if err := fn(tx); err != nil {
		return err
	}
	if len(tx.ops) == 0 {
		return nil
	}
	b := batch{Time: time.Now().UTC().Round(0), Ops: tx.ops}
	data, err := encodeBatch(b)
	if err != nil {
		return err
	}
	if err := checkEntrySize(data); err != nil {
		return err
	}
	var applied uint64
	if leader == "" {
		applied, err = s.apply(ctx, data)
	} else {
		applied, err = s.forward(ctx, leader, data)
	}
	if err != nil {
		return err
	}
	s.stamp(tx, b.Time, applied)
	return nil
}

// apply proposes an encoded batch on the leader and returns the index it was
// applied at, or the error that refused it.
func (s *Store) apply(ctx context.Context, data []byte) (uint64, error) {
	if !s.IsLeader() {
		return 0, ErrNotLeader
	}
	start := time.Now()
	f := s.raft.Apply(data, proposeTimeout(ctx))
	if err := f.Error(); err != nil {
		if isLeadershipError(err) {
			return 0, fmt.Errorf("%w: %w", ErrNotLeader, err)
		}
		if errors.Is(err, raft.ErrEnqueueTimeout) {
			return 0, unavailableError{msg: "propose update: raft is too busy to accept it"}
		}
		return 0, fmt.Errorf("propose update: %w", err)
	}
	s.observeCommit(start)
	s.nudgeFollowers()
	if err, ok := f.Response().(error); ok && err != nil {
		return 0, err
	}
	return f.Index(), nil
}

// stamp sets the Meta of the caller's objects as the FSM set it.
func (s *Store) stamp(tx *writeTx, now time.Time, index uint64) {
	for i, obj := range tx.written {
		if obj == nil {
			continue
		}
		_, meta, err := describe(obj)
		if err != nil {
			continue
		}
		if tx.ops[i].Action == ActionCreate {
			meta.CreatedAt = now
		}
		meta.UpdatedAt = now
		meta.Version.Index = index
	}
}

// Watch streams every change applied after the call, in order, until ctx is
// done or the store closes; then the channel is closed. With kinds, only
// changes of those kinds are sent. A slow reader never slows the store: its
// changes queue up in memory, up to a bound past which they are dropped and
// one event of action ActionResync tells the reader to read the state afresh.
func (s *Store) Watch(ctx context.Context, kinds ...Kind) <-chan Event {
	ch, _ := s.feed.subscribe(ctx, "", kinds)
	return ch
}

// ViewAndWatch runs fn on a snapshot and subscribes to every change applied
// after that snapshot, atomically: no change is lost or seen twice between
// them. Reconcile loops use it. If fn fails, the subscription is cancelled
// and fn's error returned.
func (s *Store) ViewAndWatch(ctx context.Context, fn func(tx ReadTx) error, kinds ...Kind) (<-chan Event, error) {
	var ch <-chan Event
	var stop func()
	txn, index := s.fsm.readAnd(func() { ch, stop = s.feed.subscribe(ctx, "", kinds) })
	if err := fn(&readTx{txn: txn, index: index}); err != nil {
		stop()
		return nil, err
	}
	return ch, nil
}

// ViewAndWatchNode is ViewAndWatch limited to what concerns one node: the tasks
// assigned to it (before or after a change) and its own node and peer objects;
// changes of other kinds asked for come in full. Changes of other nodes are
// skipped before they are decoded, so a node's session costs nothing for the
// rest of the cluster's churn.
func (s *Store) ViewAndWatchNode(ctx context.Context, nodeID string, fn func(tx ReadTx) error, kinds ...Kind) (<-chan Event, error) {
	var ch <-chan Event
	var stop func()
	txn, index := s.fsm.readAnd(func() { ch, stop = s.feed.subscribe(ctx, nodeID, kinds) })
	if err := fn(&readTx{txn: txn, index: index}); err != nil {
		stop()
		return nil, err
	}
	return ch, nil
}

// Snapshot asks Raft to take a snapshot now and compact the log.
func (s *Store) Snapshot(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}
