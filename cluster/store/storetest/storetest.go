// Package storetest gives other packages' tests a real store: a one-member Raft
// cluster in a temporary directory, already leader, closed when the test ends.
package storetest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/shoal-project/shoal/cluster/store"
)

// Leader opens a store in t.TempDir(), bootstraps it as the only member, and
// waits until it leads.
func Leader(t testing.TB, nodeID string) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Dir: t.TempDir(), NodeID: nodeID, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}
