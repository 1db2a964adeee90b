package store

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// Autolock's life: a store locked under a KEK the disk does not hold opens
// only with that KEK; unlocking it writes a new KEK back.
func TestLockAndUnlock(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := openStore(t, cfg)
	populate(t, s, "web")
	want := fingerprint(t, s)
	if err := s.SetKEK(key(1)); err != nil {
		t.Fatalf("SetKEK: %v", err)
	}
	if exists(t, filepath.Join(dir, kekFile)) {
		t.Fatal("the kek file is still there after SetKEK")
	}
	populate(t, s, "after-lock")
	want2 := fingerprint(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if want == want2 {
		t.Fatal("populate after the lock changed nothing")
	}

	if _, err := Open(testContext(t), cfg); !errors.Is(err, ErrLocked) {
		t.Fatalf("Open without a KEK: err = %v, want ErrLocked", err)
	}
	wrong := cfg
	wrong.KEK = key(2)
	if _, err := Open(testContext(t), wrong); !errors.Is(err, ErrInvalidKEK) {
		t.Fatalf("Open with the wrong KEK: err = %v, want ErrInvalidKEK", err)
	}
	for _, tc := range []struct {
		kek  []byte
		want error
	}{{nil, ErrLocked}, {key(2), ErrInvalidKEK}, {key(1), nil}} {
		if err := CheckKEK(dir, tc.kek); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("CheckKEK(%x): %v, want %v", tc.kek, err, tc.want)
		}
	}
	right := cfg
	right.KEK = key(1)
	s = openStore(t, right)
	if got := fingerprint(t, s); got != want2 {
		t.Fatalf("state after unlock:\n%s\nwant:\n%s", got, want2)
	}

	// Rotating the unlock key: the old KEK stops working.
	if err := s.SetKEK(key(3)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(testContext(t), right); !errors.Is(err, ErrInvalidKEK) {
		t.Fatalf("Open with the rotated-out KEK: err = %v, want ErrInvalidKEK", err)
	}
	rotated := cfg
	rotated.KEK = key(3)
	s = openStore(t, rotated)

	// Autolock off: a KEK on disk again, and the store opens without one.
	if err := s.SetKEK(nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !exists(t, filepath.Join(dir, kekFile)) {
		t.Fatal("no kek file after SetKEK(nil)")
	}
	if got := fingerprint(t, openStore(t, cfg)); got != want2 {
		t.Fatalf("state after autolock off:\n%s\nwant:\n%s", got, want2)
	}
}

// A crash between re-wrapping the data key under an unlock key and removing the
// kek file leaves a kek file that opens nothing: the store is locked, and
// unlocking it removes the stale file.
func TestStaleKEKFileMeansLocked(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := openStore(t, cfg)
	populate(t, s, "web")
	want := fingerprint(t, s)
	stale, err := os.ReadFile(filepath.Join(dir, kekFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetKEK(key(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, kekFile), stale, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(testContext(t), cfg); !errors.Is(err, ErrLocked) {
		t.Fatalf("Open with a stale kek file: err = %v, want ErrLocked", err)
	}
	cfg.KEK = key(1)
	if got := fingerprint(t, openStore(t, cfg)); got != want {
		t.Fatalf("state after unlock:\n%s\nwant:\n%s", got, want)
	}
	if exists(t, filepath.Join(dir, kekFile)) {
		t.Error("the stale kek file survived the unlock")
	}
}

// A store written before data keys could rotate (a dek file wrapping one bare
// key) opens as it always did.
func TestOlderKeyLayoutOpens(t *testing.T) {
	dir := t.TempDir()
	kek, dek := key(4), key(5)
	wrap, err := newSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, kekFile), kek, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, dekFile), wrap.seal(dek, aadDEK), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, dir)
	s := openStore(t, cfg)
	populate(t, s, "web")
	want := fingerprint(t, s)
	if !bytes.Equal(s.keys.keys.Current, dek) {
		t.Fatal("the store did not use the data key on disk")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fingerprint(t, openStore(t, cfg)); got != want {
		t.Fatalf("state after reopen:\n%s\nwant:\n%s", got, want)
	}
}

// Rotating the data key re-seals the state under the new key; once the log
// is compacted the old key is forgotten, and what is on disk opens with the
// new one alone.
func TestRotateDataKey(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := openStore(t, cfg)
	populate(t, s, "web")
	old := append([]byte(nil), s.keys.keys.Current...)
	if err := s.RotateDataKey(testContext(t)); err != nil {
		t.Fatalf("RotateDataKey: %v", err)
	}
	if s.DataKeyRotating() {
		t.Fatal("the previous data key is still kept after the compacting snapshot")
	}
	if bytes.Equal(s.keys.keys.Current, old) {
		t.Fatal("the data key did not change")
	}
	populate(t, s, "after-rotation")
	want := fingerprint(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	kek, _ := os.ReadFile(filepath.Join(dir, kekFile))
	wrapped, _ := os.ReadFile(filepath.Join(dir, dekFile))
	keys, err := unwrapDataKeys(kek, wrapped)
	if err != nil || keys.Previous != nil || bytes.Equal(keys.Current, old) {
		t.Fatalf("dek file after the rotation: prev %x, same as old %v, err %v", keys.Previous, bytes.Equal(keys.Current, old), err)
	}
	// Nothing on disk is sealed with the old key any more.
	oldSealer, _ := newSealer(old)
	snaps, err := raft.NewFileSnapshotStore(dir, snapshotsKept, nil)
	if err != nil {
		t.Fatal(err)
	}
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		t.Fatalf("snapshots: %v (%d)", err, len(list))
	}
	_, rc, err := snaps.Open(list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(rc)
	rc.Close()
	if _, err := oldSealer.open(buf.Bytes(), aadSnapshot); err == nil {
		t.Error("the newest snapshot opens with the rotated-out key")
	}
	if got := fingerprint(t, openStore(t, cfg)); got != want {
		t.Fatalf("state after reopen:\n%s\nwant:\n%s", got, want)
	}
}

// While a rotation is under way, entries sealed with the previous key stay
// readable, also across a restart; the previous key goes only once a snapshot
// sealed with the new key exists and the log is compacted past the rotation.
func TestPreviousDataKeyOpensOlderEntries(t *testing.T) {
	dir := t.TempDir()
	kr, err := newKeyring(dir, key(1))
	if err != nil {
		t.Fatal(err)
	}
	before := kr.cur.seal([]byte("entry 7"), logAAD(7))
	if err := kr.rotate(func() (uint64, error) { return 7, nil }); err != nil {
		t.Fatal(err)
	}
	if err := kr.rotate(func() (uint64, error) { return 8, nil }); err == nil {
		t.Fatal("a second rotation began while the first was under way")
	}
	again, err := openKeyring(dir, key(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*keyring{kr, again} {
		if got, err := k.open(before, logAAD(7)); err != nil || string(got) != "entry 7" {
			t.Fatalf("open an entry sealed before the rotation: %q, %v", got, err)
		}
	}
	_ = kr.retire(9)
	if !kr.rotating() {
		t.Fatal("the previous key was retired before any snapshot was sealed with the new one")
	}
	_, sealed := kr.sealSnapshot([]byte("state"))
	sealed()
	_ = kr.retire(7)
	if !kr.rotating() {
		t.Fatal("the previous key was retired while the log still holds entry 7")
	}
	if err := kr.retire(8); err != nil || kr.rotating() {
		t.Fatalf("retire after compaction: %v, rotating %v", err, kr.rotating())
	}
	if _, err := kr.open(before, logAAD(7)); err == nil {
		t.Fatal("an entry sealed with the retired key still opens")
	}
	again, err = openKeyring(dir, key(1))
	if err != nil || again.rotating() {
		t.Fatalf("reopen after retiring: %v, rotating %v", err, again != nil && again.rotating())
	}
}

// A Raft log whose data key is gone is refused, not given a new key that
// opens none of it; the log stays as it was.
func TestMissingDataKeyIsRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := openStore(t, cfg)
	populate(t, s, "web")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(dir, boltFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, dekFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(testContext(t), cfg); !errors.Is(err, ErrCorruptKey) {
		t.Fatalf("Open without dek: err = %v, want ErrCorruptKey", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, boltFile))
	if !bytes.Equal(before, after) || exists(t, filepath.Join(dir, dekFile)) {
		t.Fatal("the refused open changed the log or wrote a data key")
	}
}

// A damaged dek file is a clear error, never a panic.
func TestCorruptWrappedKey(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
		want   error
	}{
		{"empty", func([]byte) []byte { return nil }, ErrCorruptKey},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, ErrCorruptKey},
		{"extended", func(b []byte) []byte { return append(b, 0) }, ErrCorruptKey},
		{"flipped bit", func(b []byte) []byte { b[20] ^= 1; return b }, ErrInvalidKEK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(t, dir)
			cfg.KEK = key(1)
			s := openStore(t, cfg)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, dekFile)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.damage(data), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(testContext(t), cfg); !errors.Is(err, tc.want) {
				t.Fatalf("Open: err = %v, want %v", err, tc.want)
			}
		})
	}
}
