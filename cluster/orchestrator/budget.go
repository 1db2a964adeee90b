package orchestrator

import (
	"encoding/json"
	"errors"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/store"
)

// What one store transaction of the orchestrator may write: each transaction is one
// Raft entry, and a service of thousands of tasks must not make one entry of
// thousands of tasks (nor the memory spike of encoding it). A pass that reaches the
// bound commits what it did and the service is reconciled again at once.
const (
	maxWritesPerEntry = 256
	maxBytesPerEntry  = 1 << 20
)

// errEntryFull stops a pass whose entry has reached its bound.
var errEntryFull = errors.New("orchestrator: store entry full")

// entryBudget counts what a transaction has written. The first write always fits,
// however large, so that every single task can be written.
type entryBudget struct {
	writes, bytes int
}

// charge reserves room for writing objs (nil for a removal) as one step: all of
// them, or errEntryFull and nothing.
func (b *entryBudget) charge(objs ...any) error {
	n := 0
	for _, o := range objs {
		n += encodedSize(o)
	}
	if b.writes > 0 && (b.writes+len(objs) > maxWritesPerEntry || b.bytes+n > maxBytesPerEntry) {
		return errEntryFull
	}
	b.writes += len(objs)
	b.bytes += n
	return nil
}

// encodedSize approximates the bytes o adds to a store entry: its JSON and the
// operation's envelope.
func encodedSize(o any) int {
	const envelope = 96
	if o == nil {
		return envelope
	}
	data, err := json.Marshal(o)
	if err != nil {
		return envelope
	}
	return envelope + len(data)
}

// budgetTx is a store transaction whose task writes are charged to a budget.
type budgetTx struct {
	store.Tx
	budget entryBudget
}

func (t *budgetTx) CreateTask(task *swarm.Task) error {
	if err := t.budget.charge(task); err != nil {
		return err
	}
	return t.Tx.CreateTask(task)
}

func (t *budgetTx) UpdateTask(task *swarm.Task) error {
	if err := t.budget.charge(task); err != nil {
		return err
	}
	return t.Tx.UpdateTask(task)
}

func (t *budgetTx) DeleteTask(id string) error {
	if err := t.budget.charge(nil); err != nil {
		return err
	}
	return t.Tx.DeleteTask(id)
}
