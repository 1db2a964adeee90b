package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/moby/moby/api/types/swarm"
)

// populate writes one object of every kind (and the cluster if missing),
// then updates the service.
func populate(t *testing.T, s *Store, name string) {
	t.Helper()
	svc := newService(name)
	update(t, s, func(tx Tx) error {
		if _, err := tx.Cluster(); IsNotFound(err) {
			c := &swarm.Swarm{ClusterInfo: swarm.ClusterInfo{ID: NewID()}}
			if err := tx.CreateCluster(c); err != nil {
				return err
			}
		}
		node := &swarm.Node{ID: NewID()}
		if err := tx.CreateNode(node); err != nil {
			return err
		}
		if err := tx.CreatePeer(&Peer{ID: node.ID, ControlAddr: "10.0.0.1:2377"}); err != nil {
			return err
		}
		if _, err := tx.Root(); IsNotFound(err) {
			if err := tx.CreateRoot(&RootCA{ID: RootID, CertPEM: []byte("cert"), KeyPEM: []byte("key")}); err != nil {
				return err
			}
		}
		if err := tx.CreateService(svc); err != nil {
			return err
		}
		if err := tx.CreateRegistryAuth(&RegistryAuth{ID: svc.ID, Encoded: "e30="}); err != nil {
			return err
		}
		if err := tx.CreateTask(newTask(svc.ID, "n1")); err != nil {
			return err
		}
		net := &swarm.Network{ID: NewID(), Spec: swarm.NetworkSpec{Annotations: swarm.Annotations{Name: name + "-net"}}}
		if err := tx.CreateNetwork(net); err != nil {
			return err
		}
		sec := &swarm.Secret{ID: NewID(), Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: name + "-secret"}, Data: []byte(name + "-secret-data")}}
		if err := tx.CreateSecret(sec); err != nil {
			return err
		}
		cfg := &swarm.Config{ID: NewID(), Spec: swarm.ConfigSpec{Annotations: swarm.Annotations{Name: name + "-config"}}}
		return tx.CreateConfig(cfg)
	})
	svc.Spec.Labels["updated"] = "yes"
	update(t, s, func(tx Tx) error { return tx.UpdateService(svc) })
}

// fingerprint lists every object with its version.
func fingerprint(t *testing.T, s *Store) string {
	t.Helper()
	var out bytes.Buffer
	err := s.View(func(tx ReadTx) error {
		c, err := tx.Cluster()
		if err != nil {
			return err
		}
		fmt.Fprintln(&out, "cluster", c.ID, c.Version.Index, c.CreatedAt.UnixNano())
		nodes, _ := tx.Nodes()
		for _, n := range nodes {
			fmt.Fprintln(&out, "node", n.ID, n.Version.Index)
		}
		svcs, _ := tx.Services()
		for _, v := range svcs {
			fmt.Fprintln(&out, "service", v.ID, v.Spec.Name, v.Version.Index, v.UpdatedAt.UnixNano(), v.Spec.Labels)
		}
		tasks, _ := tx.Tasks()
		for _, v := range tasks {
			fmt.Fprintln(&out, "task", v.ID, v.ServiceID, v.Version.Index)
		}
		nets, _ := tx.Networks()
		for _, v := range nets {
			fmt.Fprintln(&out, "network", v.ID, v.Spec.Name, v.Version.Index)
		}
		secs, _ := tx.Secrets()
		for _, v := range secs {
			fmt.Fprintln(&out, "secret", v.ID, v.Spec.Name, string(v.Spec.Data), v.Version.Index)
		}
		cfgs, _ := tx.Configs()
		for _, v := range cfgs {
			fmt.Fprintln(&out, "config", v.ID, v.Spec.Name, v.Version.Index)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("fingerprint: %v", err)
	}
	return out.String()
}

// reopen closes s and opens its Dir again; owner owns the new store.
func reopen(t, owner *testing.T, s *Store) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	again := openStore(owner, s.cfg)
	if !again.HasState() {
		t.Fatal("reopened store has no Raft state")
	}
	return again
}

func TestReopenRestoresEveryObject(t *testing.T) {
	s := newStore(t)
	populate(t, s, "first")
	want := fingerprint(t, s)
	owner := t

	t.Run("from the log", func(t *testing.T) {
		s = reopen(t, owner, s)
		if got := fingerprint(t, s); got != want {
			t.Fatalf("after reopen:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Run("from a snapshot", func(t *testing.T) {
		if err := s.Snapshot(testContext(t)); err != nil {
			t.Fatalf("Snapshot: %v", err)
		}
		snaps, err := s.snaps.List()
		if err != nil || len(snaps) == 0 {
			t.Fatalf("no snapshot stored (err %v)", err)
		}
		populate(t, s, "second") // after the snapshot: replayed from the log
		want = fingerprint(t, s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		// Drop the entries the snapshot covers, so that only the snapshot
		// can bring those objects back.
		logs, err := raftboltdb.NewBoltStore(filepath.Join(s.cfg.Dir, boltFile))
		if err != nil {
			t.Fatal(err)
		}
		first, _ := logs.FirstIndex()
		if err := logs.DeleteRange(first, snaps[0].Index); err != nil {
			t.Fatal(err)
		}
		if err := logs.Close(); err != nil {
			t.Fatal(err)
		}
		s = reopen(t, owner, s)
		if got := fingerprint(t, s); got != want {
			t.Fatalf("after reopen:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Run("writes continue", func(t *testing.T) {
		populate(t, s, "third")
		before := getService(t, s, mustServiceID(t, s, "first"))
		if before.Spec.Labels["updated"] != "yes" {
			t.Errorf("service first lost its update: %v", before.Spec.Labels)
		}
	})
}

func mustServiceID(t *testing.T, s *Store, name string) string {
	t.Helper()
	var id string
	err := s.View(func(tx ReadTx) error {
		svc, err := tx.ServiceByName(name)
		if err == nil {
			id = svc.ID
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestNothingIsReadableAtRest(t *testing.T) {
	s := newStore(t)
	const name = "plaintext-canary-service"
	populate(t, s, name)
	if err := s.Snapshot(testContext(t)); err != nil {
		t.Fatal(err)
	}
	populate(t, s, name+"-after-snapshot")
	// The name is in the log; only encrypted.
	first, _ := s.logs.FirstIndex()
	last, _ := s.logs.LastIndex()
	inLog := false
	for i := first; i <= last; i++ {
		var l raft.Log
		if err := s.logs.GetLog(i, &l); err != nil {
			t.Fatalf("read log entry %d: %v", i, err)
		}
		inLog = inLog || bytes.Contains(l.Data, []byte(name))
	}
	if !inLog {
		t.Fatal("the service name is not in the decrypted log: nothing to look for")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files := 0
	err := filepath.WalkDir(s.cfg.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, secret := range []string{"plaintext-canary", name + "-secret-data"} {
			if bytes.Contains(data, []byte(secret)) {
				t.Errorf("%s contains %q in plain text", path, secret)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 4 { // kek, dek, raft.db, a snapshot's state and meta
		t.Errorf("only %d files under Dir", files)
	}
	if st, err := os.Stat(filepath.Join(s.cfg.Dir, kekFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("kek file: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
}

func TestKEK(t *testing.T) {
	dir := t.TempDir()
	kek := bytes.Repeat([]byte{7}, KeySize)
	cfg := testConfig(t, dir)
	cfg.KEK = kek
	s := openStore(t, cfg)
	populate(t, s, "web")
	want := fingerprint(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, kekFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a given KEK was written to disk (stat: %v)", err)
	}

	wrong := cfg
	wrong.KEK = bytes.Repeat([]byte{8}, KeySize)
	if _, err := Open(testContext(t), wrong); !errors.Is(err, ErrInvalidKEK) {
		t.Fatalf("Open with the wrong KEK: err = %v, want ErrInvalidKEK", err)
	}
	if got := fingerprint(t, openStore(t, cfg)); got != want {
		t.Errorf("after reopen with the right KEK:\n%s\nwant:\n%s", got, want)
	}
}

func TestDestroyRemovesEverything(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "swarm")
	s := openStore(t, testConfig(t, dir))
	populate(t, s, "web")
	if err := s.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Dir after Destroy: %v, want it gone", err)
	}
	fresh, err := Open(testContext(t), testConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fresh.Close() })
	if fresh.HasState() {
		t.Error("a store opened after Destroy still has Raft state")
	}
}

// After a restart, WaitApplied returns only once the state holds every command
// of the log: Raft's own applied index runs ahead of the state machine.
func TestWaitAppliedSeesTheWholeLog(t *testing.T) {
	s := newStore(t)
	update(t, s, func(tx Tx) error {
		return tx.CreateCluster(&swarm.Swarm{ClusterInfo: swarm.ClusterInfo{ID: NewID()}})
	})
	for i := range 200 {
		update(t, s, func(tx Tx) error { return tx.CreateService(newService(fmt.Sprintf("svc-%d", i))) })
	}
	want := fingerprint(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(testContext(t), s.cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { again.Close() })
	if err := again.WaitApplied(testContext(t)); err != nil {
		t.Fatalf("WaitApplied: %v", err)
	}
	if got := fingerprint(t, again); got != want {
		t.Fatalf("state right after WaitApplied:\n%s\nwant:\n%s", got, want)
	}
}
