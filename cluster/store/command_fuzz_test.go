package store

import (
	"log/slog"
	"testing"

	"github.com/hashicorp/raft"
)

// FuzzApplyCommand feeds arbitrary Raft entries to the state machine, twice
// (the second applies onto what the first made): an entry it cannot decode or
// apply is refused as a whole, never a panic, which would take the node down
// at every replay of its log.
func FuzzApplyCommand(f *testing.F) {
	for _, seed := range []string{
		`{"Time":"2026-01-01T00:00:00Z","Ops":[{"Kind":"service","Action":"create","ID":"s1","Object":{"ID":"s1","Spec":{"Name":"web"}}}]}`,
		`{"Ops":[{"Kind":"task","Action":"create","ID":"t1","Object":{"ID":"t1","ServiceID":"s1","Slot":1,"NodeID":"n1"}}]}`,
		`{"Ops":[{"Kind":"task","Action":"update","ID":"t1","Version":3,"Object":{"ID":"t1","Slot":1}}]}`,
		`{"Ops":[{"Kind":"node","Action":"remove","ID":"n1"}]}`,
		`{"Ops":[{"Kind":"nope","Action":"create","Object":null}]}`,
		`{"Ops":[{"Kind":"service","Action":"create","ID":"","Object":"not an object"}]}`, `{`, ``,
	} {
		f.Add(append([]byte{commandBatch}, seed...))
	}
	f.Add([]byte{7, '{', '}'})
	f.Fuzz(func(t *testing.T, entry []byte) {
		m, err := newFSM(slog.New(slog.DiscardHandler), newFeed())
		if err != nil {
			t.Fatal(err)
		}
		m.Apply(&raft.Log{Index: 1, Data: entry})
		m.Apply(&raft.Log{Index: 2, Data: entry})
		if _, index := m.read(); index != 2 {
			t.Fatalf("after two entries the state is at index %d", index)
		}
	})
}
