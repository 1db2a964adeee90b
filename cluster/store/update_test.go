package store

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

func TestStaleUpdateIsRefused(t *testing.T) {
	s := newStore(t)
	svc := newService("web")
	update(t, s, func(tx Tx) error { return tx.CreateService(svc) })
	stale := getService(t, s, svc.ID)

	fresh := getService(t, s, svc.ID)
	fresh.Spec.Labels["app"] = "v2"
	update(t, s, func(tx Tx) error { return tx.UpdateService(fresh) })

	stale.Spec.Labels["app"] = "v3"
	err := s.Update(testContext(t), func(tx Tx) error { return tx.UpdateService(stale) })
	if !errors.Is(err, ErrOutOfSequence) || err.Error() != "update out of sequence" {
		t.Fatalf("stale update: err = %v, want ErrOutOfSequence", err)
	}
	if got := getService(t, s, svc.ID); got.Spec.Labels["app"] != "v2" {
		t.Errorf("after refused update label = %q, want v2", got.Spec.Labels["app"])
	}
}

// TestRaceIsRefusedOnApply makes another writer commit between a writer's
// read and its proposal: the FSM, not only the local check, must refuse it.
func TestRaceIsRefusedOnApply(t *testing.T) {
	s := newStore(t)
	svc := newService("web")
	update(t, s, func(tx Tx) error { return tx.CreateService(svc) })

	for _, tc := range []struct {
		name  string
		write func(tx Tx, read *swarm.Service) error
	}{
		{"update", func(tx Tx, read *swarm.Service) error { return tx.UpdateService(read) }},
		{"delete", func(tx Tx, read *swarm.Service) error { return tx.DeleteService(read.ID) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(testContext(t), func(tx Tx) error {
				read, err := tx.Service(svc.ID)
				if err != nil {
					return err
				}
				other := getService(t, s, svc.ID)
				other.Spec.Labels["by"] = "other-" + tc.name
				update(t, s, func(tx Tx) error { return tx.UpdateService(other) })
				return tc.write(tx, read)
			})
			if !errors.Is(err, ErrOutOfSequence) {
				t.Fatalf("racing %s: err = %v, want ErrOutOfSequence", tc.name, err)
			}
			if got := getService(t, s, svc.ID); got.Spec.Labels["by"] != "other-"+tc.name {
				t.Errorf("the first writer's change was lost: labels %v", got.Spec.Labels)
			}
		})
	}
}

func TestNameConflicts(t *testing.T) {
	s := newStore(t)
	web := newService("web")
	net := &swarm.Network{ID: NewID(), Spec: swarm.NetworkSpec{Annotations: swarm.Annotations{Name: "web"}}}
	update(t, s, func(tx Tx) error {
		if err := tx.CreateService(web); err != nil {
			return err
		}
		return tx.CreateNetwork(net) // another kind may share the name
	})
	for _, name := range []string{"web", "WEB"} {
		err := s.Update(testContext(t), func(tx Tx) error { return tx.CreateService(newService(name)) })
		if !isConflict(err) {
			t.Errorf("create service %q: err = %v, want Conflict", name, err)
		}
	}
	err := s.Update(testContext(t), func(tx Tx) error { return tx.CreateService(web) })
	if !isConflict(err) {
		t.Errorf("create existing ID: err = %v, want Conflict", err)
	}

	// Rename onto a taken name.
	db := newService("db")
	update(t, s, func(tx Tx) error { return tx.CreateService(db) })
	renamed := getService(t, s, db.ID)
	renamed.Spec.Name = "web"
	if err := s.Update(testContext(t), func(tx Tx) error { return tx.UpdateService(renamed) }); !isConflict(err) {
		t.Errorf("rename db to web: err = %v, want Conflict", err)
	}

	// Two writers racing for one name: the second is refused on apply.
	err = s.Update(testContext(t), func(tx Tx) error {
		update(t, s, func(tx Tx) error { return tx.CreateService(newService("api")) })
		return tx.CreateService(newService("api"))
	})
	if !isConflict(err) {
		t.Errorf("racing create of api: err = %v, want Conflict", err)
	}
	if err != nil && err.Error() != "name conflicts with an existing object: service api already exists" {
		t.Errorf("conflict message = %q", err.Error())
	}

	for _, tc := range []struct {
		kind  string
		write func(tx Tx) error
	}{
		{"secret", func(tx Tx) error {
			return tx.CreateSecret(&swarm.Secret{ID: NewID(), Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: "pw"}}})
		}},
		{"config", func(tx Tx) error {
			return tx.CreateConfig(&swarm.Config{ID: NewID(), Spec: swarm.ConfigSpec{Annotations: swarm.Annotations{Name: "conf"}}})
		}},
		{"network", func(tx Tx) error {
			return tx.CreateNetwork(&swarm.Network{ID: NewID(), Spec: swarm.NetworkSpec{Annotations: swarm.Annotations{Name: "web"}}})
		}},
	} {
		if tc.kind != "network" {
			update(t, s, tc.write)
		}
		if err := s.Update(testContext(t), tc.write); !isConflict(err) {
			t.Errorf("second %s with the same name: err = %v, want Conflict", tc.kind, err)
		}
	}

	// Nodes are not name-unique.
	update(t, s, func(tx Tx) error {
		for range 2 {
			n := &swarm.Node{ID: NewID(), Description: swarm.NodeDescription{Hostname: "edge"}}
			if err := tx.CreateNode(n); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestBatchIsAllOrNothing(t *testing.T) {
	s := newStore(t)
	target := newService("target")
	update(t, s, func(tx Tx) error { return tx.CreateService(target) })
	a, b := newService("a"), newService("b")

	// Refused on apply: the third op is stale by the time the batch commits.
	err := s.Update(testContext(t), func(tx Tx) error {
		if err := tx.CreateService(a); err != nil {
			return err
		}
		if err := tx.CreateTask(newTask(a.ID, "n1")); err != nil {
			return err
		}
		read, err := tx.Service(target.ID)
		if err != nil {
			return err
		}
		other := getService(t, s, target.ID)
		other.Spec.Labels["x"] = "y"
		update(t, s, func(tx Tx) error { return tx.UpdateService(other) })
		return tx.UpdateService(read)
	})
	if !errors.Is(err, ErrOutOfSequence) {
		t.Fatalf("batch with a stale op: err = %v, want ErrOutOfSequence", err)
	}

	// Refused by fn itself.
	errBoom := errors.New("boom")
	err = s.Update(testContext(t), func(tx Tx) error {
		if err := tx.CreateService(b); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("fn error: err = %v, want it returned", err)
	}

	err = s.View(func(tx ReadTx) error {
		svcs, err := tx.Services()
		if err != nil {
			return err
		}
		tasks, err := tx.Tasks()
		if len(svcs) != 1 || len(tasks) != 0 {
			t.Errorf("after refused batches: %d services, %d tasks; want 1 and 0", len(svcs), len(tasks))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestUpdateReadsItsOwnWrites(t *testing.T) {
	s := newStore(t)
	svc := newService("web")
	update(t, s, func(tx Tx) error {
		if err := tx.CreateService(svc); err != nil {
			return err
		}
		got, err := tx.ServiceByName("web")
		if err != nil {
			return fmt.Errorf("read own create: %w", err)
		}
		got.Spec.Labels["step"] = "2"
		if err := tx.UpdateService(got); err != nil {
			return fmt.Errorf("update own create: %w", err)
		}
		got.Spec.Labels["step"] = "3"
		if err := tx.UpdateService(got); err != nil {
			return fmt.Errorf("update twice: %w", err)
		}
		tk := newTask(svc.ID, "n1")
		if err := tx.CreateTask(tk); err != nil {
			return err
		}
		if tasks, _ := tx.TasksByService(svc.ID); len(tasks) != 1 {
			t.Errorf("TasksByService inside the tx = %d tasks, want 1", len(tasks))
		}
		return tx.DeleteTask(tk.ID)
	})
	if got := getService(t, s, svc.ID); got.Spec.Labels["step"] != "3" {
		t.Errorf("label step = %q, want 3", got.Spec.Labels["step"])
	}
}

func TestVersionIsTheApplyIndex(t *testing.T) {
	s := newStore(t)
	svc := newService("web")
	var last uint64
	for i := range 5 {
		update(t, s, func(tx Tx) error {
			if i == 0 {
				return tx.CreateService(svc)
			}
			svc.Spec.Labels["i"] = fmt.Sprint(i)
			return tx.UpdateService(svc) // svc's Meta was stamped by the last Update
		})
		got := getService(t, s, svc.ID)
		applied := s.raft.LastIndex() // nothing else writes: the last entry is ours
		if got.Version.Index != applied || got.Version.Index <= last {
			t.Fatalf("update %d: version %d, applied index %d, previous %d", i, got.Version.Index, applied, last)
		}
		if svc.Version.Index != got.Version.Index || !svc.UpdatedAt.Equal(got.UpdatedAt) {
			t.Errorf("caller's object meta %+v, stored %+v", svc.Meta, got.Meta)
		}
		var idx uint64
		s.View(func(tx ReadTx) error { idx = tx.Index(); return nil })
		if idx != applied {
			t.Errorf("ReadTx.Index() = %d, want %d", idx, applied)
		}
		last = got.Version.Index
	}
}

func TestNoWritesProposesNothing(t *testing.T) {
	s := newStore(t)
	before := s.raft.LastIndex()
	update(t, s, func(tx Tx) error {
		_, err := tx.Services()
		return err
	})
	if after := s.raft.LastIndex(); after != before {
		t.Errorf("read-only Update grew the log from %d to %d", before, after)
	}
}

func TestUpdateNeedsLeadership(t *testing.T) {
	ctx := testContext(t)
	cfg := testConfig(t, t.TempDir())
	cfg.LeaderWait = 50 * time.Millisecond
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.HasState() {
		t.Fatal("a new store reports Raft state")
	}
	err = s.Update(ctx, func(tx Tx) error { return tx.CreateService(newService("web")) })
	if !errors.Is(err, ErrNoLeader) || !isUnavailable(err) {
		t.Fatalf("Update before bootstrap: err = %v, want ErrNoLeader", err)
	}
	if err := s.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if !s.HasState() {
		t.Error("HasState after Bootstrap = false")
	}
	if err := s.Bootstrap(ctx); !errors.Is(err, ErrHasState) || !isUnavailable(err) {
		t.Errorf("second Bootstrap: err = %v, want ErrHasState", err)
	}
	if err := s.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if !s.IsLeader() {
		t.Error("IsLeader after WaitLeader = false")
	}
}

func TestNewID(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		id := NewID()
		if len(id) != 25 || strings.Trim(id, "0123456789abcdefghijklmnopqrstuvwxyz") != "" || seen[id] {
			t.Fatalf("NewID() = %q: want 25 unique lowercase base-36 characters", id)
		}
		seen[id] = true
	}
}

// A change over MaxEntrySize is refused before it reaches Raft.
func TestUpdateRefusesOversizedEntry(t *testing.T) {
	s := newStore(t)
	svc := newService("big")
	svc.Spec.Labels["blob"] = strings.Repeat("x", MaxEntrySize)
	err := s.Update(testContext(t), func(tx Tx) error { return tx.CreateService(svc) })
	var iv interface{ InvalidParameter() bool }
	if !errors.As(err, &iv) || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("oversized create: err = %v, want an invalid-parameter error saying it is too large", err)
	}
	_ = s.View(func(tx ReadTx) error {
		if _, err := tx.ServiceByName("big"); err == nil {
			t.Error("the oversized service was stored")
		}
		return nil
	})
}
