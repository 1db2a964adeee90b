package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

// TestLab is a Lab as one test holds it: its nodes are bound to the test, and
// failures fail the test.
type TestLab struct {
	// Lab is the lab itself, for what TestLab does not wrap.
	Lab *Lab
	// Nodes are the lab's nodes, node1 first.
	Nodes []*Node

	t testing.TB
}

// NewLab starts a lab for the test (Binary(tb) unless opts.Binary is set) and
// removes it when the test ends.
func NewLab(tb testing.TB, opts LabOptions) *TestLab {
	tb.Helper()
	if opts.Binary == "" && len(opts.Command) == 0 {
		opts.Binary = Binary(tb)
	}
	lab, err := StartLab(context.Background(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := lab.Close(); err != nil {
			tb.Errorf("close lab: %v", err)
		}
	})
	return lab.Use(tb)
}

// Use gives the lab to the test until it ends, as new: a lab that another test
// had is healed and every node reset (killed, wiped, started fresh on the same
// address). Tests that Use one lab take turns, so a test must not Use a lab it
// already holds. When the test fails, its part of each node's log is reported.
func (l *Lab) Use(tb testing.TB) *TestLab {
	tb.Helper()
	l.lease.Lock()
	offsets := map[string]int64{}
	for _, m := range l.machines {
		if fi, err := os.Stat(m.logPath()); err == nil {
			offsets[m.Name] = fi.Size()
		}
	}
	tb.Cleanup(func() {
		defer l.lease.Unlock()
		if tb.Failed() {
			for _, m := range l.machines {
				log := m.Log()
				ours := log[min(int(offsets[m.Name]), len(log)):]
				tb.Logf("node %s daemon log:\n%s", m.Name, tail(ours, 100))
			}
		}
	})
	tl := &TestLab{Lab: l, t: tb}
	for _, m := range l.machines {
		tl.Nodes = append(tl.Nodes, &Node{Machine: m, t: tb})
	}
	if l.used {
		if err := l.reset(context.Background()); err != nil {
			tb.Fatalf("reset lab %s: %v", l.Name, err)
		}
	}
	l.used = true
	return tl
}

// reset heals the lab and resets every node, in parallel.
func (l *Lab) reset(ctx context.Context) error {
	if err := l.Heal(ctx); err != nil {
		return err
	}
	errs := make([]error, len(l.machines))
	var wg sync.WaitGroup
	for i, m := range l.machines {
		wg.Go(func() { errs[i] = m.Reset(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Node is the lab's node of that name ("node2").
func (tl *TestLab) Node(name string) *Node {
	tl.t.Helper()
	for _, n := range tl.Nodes {
		if n.Name == name {
			return n
		}
	}
	tl.t.Fatalf("lab %s has no node %q", tl.Lab.Name, name)
	return nil
}

// Partition cuts the lab into groups that exchange no packet (see Lab.Partition).
func (tl *TestLab) Partition(groups ...[]*Node) {
	tl.t.Helper()
	machines := make([][]*Machine, len(groups))
	for i, g := range groups {
		for _, n := range g {
			machines[i] = append(machines[i], n.Machine)
		}
	}
	if err := tl.Lab.Partition(context.Background(), machines...); err != nil {
		tl.t.Fatalf("lab %s: %v", tl.Lab.Name, err)
	}
}

// Heal ends the partition.
func (tl *TestLab) Heal() {
	tl.t.Helper()
	if err := tl.Lab.Heal(context.Background()); err != nil {
		tl.t.Fatalf("lab %s: %v", tl.Lab.Name, err)
	}
}

// Reset heals the lab and resets every node (see Node.Reset), in parallel.
func (tl *TestLab) Reset() {
	tl.t.Helper()
	if err := tl.Lab.reset(context.Background()); err != nil {
		tl.t.Fatalf("reset lab %s: %v", tl.Lab.Name, err)
	}
}

// SharedLab is one lab for the tests of a package: started by the first test that
// Uses it, handed to each test in turn, as new (see Lab.Use), and closed by
// TestMain after the tests:
//
//	var lab = testenv.NewSharedLab(testenv.LabOptions{Nodes: 5})
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		if err := lab.Close(); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			code = 1
//		}
//		os.Exit(code)
//	}
//
//	func TestFailover(t *testing.T) {
//		l := lab.Use(t)
//		l.Nodes[0].MustDocker("swarm", "init", "--advertise-addr", l.Nodes[0].Addr())
//		...
//	}
//
// A run that selects none of the tests that use it starts no lab.
type SharedLab struct {
	opts LabOptions

	mu  sync.Mutex
	lab *Lab
	err error
}

// NewSharedLab describes the lab; nothing starts before the first Use.
func NewSharedLab(opts LabOptions) *SharedLab {
	return &SharedLab{opts: opts}
}

// Use starts the lab if no test has yet, and gives it to the test (Lab.Use).
func (s *SharedLab) Use(tb testing.TB) *TestLab {
	tb.Helper()
	s.mu.Lock()
	if s.lab == nil && s.err == nil {
		opts := s.opts
		if opts.Binary == "" && len(opts.Command) == 0 {
			opts.Binary, s.err = FindBinary()
		}
		if s.err == nil {
			s.lab, s.err = StartLab(context.Background(), opts)
		}
	}
	lab, err := s.lab, s.err
	s.mu.Unlock()
	if err != nil {
		tb.Fatalf("shared lab: %v", err)
	}
	return lab.Use(tb)
}

// Close removes the lab, if it was started.
func (s *SharedLab) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lab == nil {
		return nil
	}
	err := s.lab.Close()
	s.lab, s.err = nil, fmt.Errorf("shared lab is closed")
	return err
}
