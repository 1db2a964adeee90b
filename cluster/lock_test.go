package cluster

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/shoal-project/shoal/cluster/autolock"
	"github.com/shoal-project/shoal/cluster/ca"
	"github.com/shoal-project/shoal/cluster/store"
)

func TestUpdateUnlockKey(t *testing.T) {
	old := autolock.NewKey()
	for _, tc := range []struct {
		name         string
		have         autolock.Key
		on, rotate   bool
		changed, set bool
	}{
		{"autolock turns on", nil, true, false, true, true},
		{"autolock stays on", old, true, false, false, true},
		{"the key rotates", old, true, true, true, true},
		{"autolock turns off", old, false, false, true, false},
		{"a rotation without autolock does nothing", nil, false, true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &store.RootCA{UnlockKey: tc.have}
			changed := updateUnlockKey(r, tc.on, tc.rotate)
			if changed != tc.changed || (len(r.UnlockKey) > 0) != tc.set {
				t.Fatalf("changed %v, key set %v; want %v, %v", changed, len(r.UnlockKey) > 0, tc.changed, tc.set)
			}
			if changed && tc.set && bytes.Equal(r.UnlockKey, tc.have) {
				t.Fatal("the key changed to itself")
			}
		})
	}
}

// The node key opens with the key it is sealed under, or with the key staged
// beside it by an unlock-key change a crash interrupted; with no key the node
// is locked, with another one the key is refused as Docker refuses it.
func TestOpenNodeKey(t *testing.T) {
	c := &Cluster{cfg: Config{Root: t.TempDir()}}
	if err := os.MkdirAll(c.certDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	plain := []byte("-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----\n")
	k1, k2 := autolock.NewKey(), autolock.NewKey()
	sealed1, _ := autolock.Seal(k1.KEK(), plain)
	sealed2, _ := autolock.Seal(k2.KEK(), plain)
	if err := os.WriteFile(c.keyPath(), sealed1, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.stagedKeyPath(), sealed2, 0o600); err != nil {
		t.Fatal(err)
	}
	files := ca.NodeFiles{KeyPEM: sealed1}
	for _, k := range []autolock.Key{k1, k2} {
		got, err := c.openNodeKey(files, k)
		if err != nil || !bytes.Equal(got.KeyPEM, plain) {
			t.Fatalf("open with a key it is sealed or staged under: %q, %v", got.KeyPEM, err)
		}
	}
	if _, err := c.openNodeKey(files, nil); !errors.Is(err, errLocked) {
		t.Fatalf("open without a key: %v, want errLocked", err)
	}
	if _, err := c.openNodeKey(files, autolock.NewKey()); !errors.As(err, new(invalidUnlockKey)) {
		t.Fatalf("open with another key: %v, want invalidUnlockKey", err)
	}
	if got, err := c.openNodeKey(ca.NodeFiles{KeyPEM: plain}, nil); err != nil || !bytes.Equal(got.KeyPEM, plain) {
		t.Fatalf("a plain key: %q, %v", got.KeyPEM, err)
	}
}
