package store

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// testLogWriter sends slog output to the test log.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testConfig(t testing.TB, dir string) Config {
	t.Helper()
	return Config{
		Dir:    dir,
		NodeID: "node-" + t.Name(),
		Logger: slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// openStore opens the store in cfg.Dir, bootstraps it if it is new, and
// waits until it leads.
func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	ctx := testContext(t)
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if !s.HasState() {
		if err := s.Bootstrap(ctx); err != nil {
			t.Fatalf("Bootstrap: %v", err)
		}
	}
	if err := s.WaitLeader(ctx); err != nil {
		t.Fatalf("WaitLeader: %v", err)
	}
	return s
}

func newStore(t testing.TB) *Store {
	t.Helper()
	return openStore(t, testConfig(t, t.TempDir()))
}

func update(t testing.TB, s *Store, fn func(tx Tx) error) {
	t.Helper()
	if err := s.Update(testContext(t), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func newService(name string) *swarm.Service {
	s := &swarm.Service{ID: NewID()}
	s.Spec.Name = name
	s.Spec.Labels = map[string]string{"app": name}
	return s
}

func newTask(serviceID, nodeID string) *swarm.Task {
	return &swarm.Task{ID: NewID(), ServiceID: serviceID, NodeID: nodeID, DesiredState: swarm.TaskStateRunning,
		Status: swarm.TaskStatus{State: swarm.TaskStateNew}}
}

func getService(t testing.TB, s *Store, id string) *swarm.Service {
	t.Helper()
	var svc *swarm.Service
	err := s.View(func(tx ReadTx) error {
		var err error
		svc, err = tx.Service(id)
		return err
	})
	if err != nil {
		t.Fatalf("read service %s: %v", id, err)
	}
	return svc
}

func isConflict(err error) bool {
	var e interface{ Conflict() bool }
	return errors.As(err, &e) && e.Conflict()
}

func isUnavailable(err error) bool {
	var e interface{ Unavailable() bool }
	return errors.As(err, &e) && e.Unavailable()
}

// receive reads n events from ch, failing after a deadline.
func receive(t testing.TB, ch <-chan Event, n int) []Event {
	t.Helper()
	var out []Event
	timeout := time.After(20 * time.Second)
	for len(out) < n {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("watch closed after %d of %d events", len(out), n)
			}
			out = append(out, ev)
		case <-timeout:
			t.Fatalf("received %d of %d events before the deadline", len(out), n)
		}
	}
	return out
}
