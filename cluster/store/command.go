package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// commandBatch tags a Raft log entry holding a JSON-encoded batch. The tag
// leaves room for other command types without guessing from the payload.
const commandBatch byte = 1

// batch is the one command the FSM applies: operations applied in order,
// all or nothing, stamped with the proposer's clock.
type batch struct {
	Time time.Time
	Ops  []op
}

// op is one create, update or remove of one object.
type op struct {
	Kind   Kind
	Action Action
	ID     string
	// Version is the Version.Index the writer read (update, remove).
	Version uint64 `json:",omitempty"`
	// Object is the new value (create, update).
	Object json.RawMessage `json:",omitempty"`
}

func encodeBatch(b batch) ([]byte, error) {
	data, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	return append([]byte{commandBatch}, data...), nil
}

func decodeBatch(data []byte) (batch, error) {
	var b batch
	if len(data) == 0 || data[0] != commandBatch {
		return b, errors.New("decode command: unknown command type")
	}
	if err := json.Unmarshal(data[1:], &b); err != nil {
		return b, fmt.Errorf("decode batch: %w", err)
	}
	return b, nil
}

// change is one applied op, as the change feed reports it.
type change struct {
	kind   Kind
	action Action
	id     string
	index  uint64
	data   json.RawMessage // new value; the old one for remove
	old    json.RawMessage // previous value for update
	// node and oldNode are the task's node after and before the change, so
	// that a watch of one node's tasks skips others' without decoding them.
	node, oldNode string
}

// applier applies ops to a memdb write transaction. The FSM uses it with
// stamp set: records get the entry's index and timestamps. Update uses it
// without stamp on a private copy of the state, so that fn reads its own
// writes and fails early on errors the FSM would report.
type applier struct {
	txn   *memdb.Txn
	stamp bool
	index uint64
	now   time.Time
	// touched holds the objects already written by this batch; their
	// version was checked by their first op.
	touched map[string]bool
}

func (a *applier) apply(o op) (change, error) {
	c := change{kind: o.Kind, action: o.Action, id: o.ID, index: a.index}
	if o.ID == "" {
		return c, invalidError{msg: fmt.Sprintf("%s: missing ID", o.Kind)}
	}
	cur, err := a.lookup(o.Kind, o.ID)
	if err != nil {
		return c, err
	}
	key := string(o.Kind) + "/" + o.ID
	switch o.Action {
	case ActionCreate:
		if cur != nil {
			return c, errIDConflict(o.Kind, o.ID)
		}
		if o.Kind == KindCluster {
			if err := a.checkNoCluster(); err != nil {
				return c, err
			}
		}
	case ActionUpdate, ActionRemove:
		if cur == nil {
			return c, notFoundError{kind: o.Kind, id: o.ID}
		}
		if !a.touched[key] && cur.Index != o.Version {
			return c, ErrOutOfSequence
		}
	default:
		return c, invalidError{msg: fmt.Sprintf("unknown action %q", o.Action)}
	}
	if a.touched != nil {
		a.touched[key] = true
	}
	if cur != nil {
		c.oldNode = cur.NodeID
	}
	if o.Action == ActionRemove {
		c.data = cur.Data
		c.node = cur.NodeID
		if err := a.txn.Delete(string(o.Kind), cur); err != nil {
			return c, fmt.Errorf("remove %s %s: %w", o.Kind, o.ID, err)
		}
		return c, nil
	}
	rec, err := a.record(o, cur)
	if err != nil {
		return c, err
	}
	if err := a.txn.Insert(string(o.Kind), rec); err != nil {
		return c, fmt.Errorf("write %s %s: %w", o.Kind, o.ID, err)
	}
	c.data = rec.Data
	c.node = rec.NodeID
	if cur != nil {
		c.old = cur.Data
	}
	return c, nil
}

// record builds the record a create or update op stores, checking that
// the object matches the op and that its name is free.
func (a *applier) record(o op, cur *record) (*record, error) {
	obj, err := decodeObject(o.Kind, o.Object)
	if err != nil {
		return nil, err
	}
	rec, meta, err := describe(obj)
	if err != nil {
		return nil, err
	}
	if rec.Kind != o.Kind || rec.ID != o.ID {
		return nil, invalidError{msg: fmt.Sprintf("%s %s: object does not match the operation", o.Kind, o.ID)}
	}
	if o.Kind.named() && rec.Name != "" {
		if err := a.checkName(o.Kind, o.ID, rec.Name); err != nil {
			return nil, err
		}
	}
	rec.Data = o.Object
	if cur != nil {
		rec.Index = cur.Index
	}
	if !a.stamp {
		return &rec, nil
	}
	rec.CreatedAt = a.now
	if cur != nil {
		rec.CreatedAt = cur.CreatedAt
	}
	meta.Version.Index = a.index
	meta.CreatedAt = rec.CreatedAt
	meta.UpdatedAt = a.now
	if rec.Data, err = json.Marshal(obj); err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", o.Kind, o.ID, err)
	}
	rec.Index = a.index
	return &rec, nil
}

func (a *applier) lookup(k Kind, id string) (*record, error) {
	raw, err := a.txn.First(string(k), "id", id)
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", k, id, err)
	}
	if raw == nil {
		return nil, nil
	}
	return raw.(*record), nil
}

func (a *applier) checkName(k Kind, id, name string) error {
	raw, err := a.txn.First(string(k), "name", name)
	if err != nil {
		return fmt.Errorf("read %s %s: %w", k, name, err)
	}
	if raw != nil && raw.(*record).ID != id {
		return errNameConflict(k, name)
	}
	return nil
}

func (a *applier) checkNoCluster() error {
	raw, err := a.txn.First(string(KindCluster), "id_prefix", "")
	if err != nil {
		return fmt.Errorf("read cluster: %w", err)
	}
	if raw != nil {
		return conflictError{msg: "a cluster object already exists"}
	}
	return nil
}
