package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
)

// fsm is the Raft state machine: the object database, the index of the last
// applied entry, and the change feed. mu orders commits against the
// snapshots readers take, so a snapshot and its Index always agree and
// ViewAndWatch can subscribe exactly at a snapshot.
type fsm struct {
	log  *slog.Logger
	feed *feed

	mu      sync.RWMutex
	db      *memdb.MemDB
	index   uint64
	waiters []indexWaiter // woken once index reaches theirs
}

// indexWaiter is someone waiting for the state to reach an index.
type indexWaiter struct {
	index uint64
	ch    chan struct{}
}

// notify returns a channel closed once the state has applied index.
func (f *fsm) notify(index uint64) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan struct{})
	if f.index >= index {
		close(ch)
		return ch
	}
	f.waiters = append(f.waiters, indexWaiter{index: index, ch: ch})
	return ch
}

// advance sets the applied index and wakes who waited for it. Callers hold mu.
func (f *fsm) advance(index uint64) {
	f.index = index
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.index <= index {
			close(w.ch)
			continue
		}
		kept = append(kept, w)
	}
	clear(f.waiters[len(kept):])
	f.waiters = kept
}

func newFSM(log *slog.Logger, f *feed) (*fsm, error) {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, fmt.Errorf("create object database: %w", err)
	}
	return &fsm{log: log, feed: f, db: db}, nil
}

// read returns a read transaction and the index it reflects.
func (f *fsm) read() (*memdb.Txn, uint64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.db.Txn(false), f.index
}

// readAnd returns a read transaction and its index, and runs fn before any
// later entry is applied: a subscription made in fn starts exactly there.
func (f *fsm) readAnd(fn func()) (*memdb.Txn, uint64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn()
	return f.db.Txn(false), f.index
}

// fork returns a private writable copy of the current state.
func (f *fsm) fork() (*memdb.MemDB, uint64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.db.Snapshot(), f.index
}

// Apply applies one committed batch. The result is nil or the error that
// refused the whole batch; it is the same on every member.
func (f *fsm) Apply(l *raft.Log) any {
	b, err := decodeBatch(l.Data)
	if err != nil {
		f.log.Error("store: skipping undecodable log entry", "index", l.Index, "err", err)
		f.setIndex(l.Index)
		return err
	}
	txn := f.db.Txn(true)
	a := applier{txn: txn, stamp: true, index: l.Index, now: b.Time, touched: make(map[string]bool)}
	changes := make([]change, 0, len(b.Ops))
	for _, o := range b.Ops {
		c, err := a.apply(o)
		if err != nil {
			txn.Abort()
			f.setIndex(l.Index)
			return err
		}
		changes = append(changes, c)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	txn.Commit()
	f.advance(l.Index)
	f.feed.publish(changes)
	return nil
}

func (f *fsm) setIndex(index uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance(index)
}

// snapshotFile is the plaintext form of a snapshot.
type snapshotFile struct {
	Index   uint64
	Records []*record
}

// Snapshot captures the current state; Persist encodes it later.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	txn, index := f.read()
	return &fsmSnapshot{txn: txn, index: index}, nil
}

type fsmSnapshot struct {
	txn   *memdb.Txn
	index uint64
}

// Persist writes every object to sink; the snapshot store encrypts it.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	file := snapshotFile{Index: s.index}
	for _, k := range kinds() {
		it, err := s.txn.Get(string(k), "id_prefix", "")
		if err != nil {
			sink.Cancel()
			return fmt.Errorf("snapshot %s: %w", k, err)
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			file.Records = append(file.Records, raw.(*record))
		}
	}
	plain, err := json.Marshal(file)
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("encode snapshot: %w", err)
	}
	if _, err := sink.Write(plain); err != nil {
		sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

// Release has nothing to free: the snapshot is an immutable memdb view.
func (s *fsmSnapshot) Release() {}

// Restore replaces the state with a snapshot. Subscribers receive the
// difference between the old and the new state as changes, so they stay
// consistent without a resync.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var file snapshotFile
	if err := json.NewDecoder(rc).Decode(&file); err != nil {
		return fmt.Errorf("decode snapshot: %w", err)
	}
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return fmt.Errorf("create object database: %w", err)
	}
	txn := db.Txn(true)
	for _, rec := range file.Records {
		if err := txn.Insert(string(rec.Kind), rec); err != nil {
			txn.Abort()
			return fmt.Errorf("restore %s %s: %w", rec.Kind, rec.ID, err)
		}
	}
	txn.Commit()

	f.mu.Lock()
	defer f.mu.Unlock()
	changes, err := diff(f.db.Txn(false), db.Txn(false), file.Index)
	if err != nil {
		return err
	}
	f.db = db
	f.advance(file.Index)
	f.feed.publish(changes)
	return nil
}

// diff returns the changes that turn the state in from into the one in to.
func diff(from, to *memdb.Txn, index uint64) ([]change, error) {
	var changes []change
	for _, k := range kinds() {
		old, err := byID(from, k)
		if err != nil {
			return nil, err
		}
		cur, err := byID(to, k)
		if err != nil {
			return nil, err
		}
		for id, rec := range cur {
			prev, ok := old[id]
			switch {
			case !ok:
				changes = append(changes, change{kind: k, action: ActionCreate, id: id, index: index, data: rec.Data, node: rec.NodeID})
			case prev.Index != rec.Index || !bytes.Equal(prev.Data, rec.Data):
				changes = append(changes, change{kind: k, action: ActionUpdate, id: id, index: index, data: rec.Data, old: prev.Data, node: rec.NodeID, oldNode: prev.NodeID})
			}
		}
		for id, prev := range old {
			if _, ok := cur[id]; !ok {
				changes = append(changes, change{kind: k, action: ActionRemove, id: id, index: index, data: prev.Data, node: prev.NodeID, oldNode: prev.NodeID})
			}
		}
	}
	return changes, nil
}

func byID(txn *memdb.Txn, k Kind) (map[string]*record, error) {
	it, err := txn.Get(string(k), "id_prefix", "")
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", k, err)
	}
	out := make(map[string]*record)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		rec := raw.(*record)
		out[rec.ID] = rec
	}
	return out, nil
}
