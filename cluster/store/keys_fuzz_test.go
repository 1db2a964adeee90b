package store

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzUnwrapDataKeys feeds arbitrary keys and dek file contents to the unwrap
// path, the first thing a damaged or forged disk reaches: it must answer with
// keys of the right size or ErrInvalidKEK or ErrCorruptKey, never panic.
func FuzzUnwrapDataKeys(f *testing.F) {
	kek := key(1)
	one, _ := wrapDataKeys(kek, dataKeys{Current: key(2)})
	two, _ := wrapDataKeys(kek, dataKeys{Current: key(2), Previous: key(3), RetireAfter: 42})
	for _, seed := range [][]byte{one, two, one[:12], nil, append(one, 0)} {
		f.Add(kek, seed)
	}
	f.Add(key(9), one)
	f.Add([]byte("short"), two)
	f.Fuzz(func(t *testing.T, kek, wrapped []byte) {
		keys, err := unwrapDataKeys(kek, wrapped)
		if err != nil {
			if !errors.Is(err, ErrInvalidKEK) && !errors.Is(err, ErrCorruptKey) {
				t.Fatalf("unwrapDataKeys: error %v is neither ErrInvalidKEK nor ErrCorruptKey", err)
			}
			return
		}
		if len(keys.Current) != KeySize || (keys.Previous != nil && len(keys.Previous) != KeySize) {
			t.Fatalf("unwrapDataKeys: keys of %d and %d bytes", len(keys.Current), len(keys.Previous))
		}
		if again, err := wrapDataKeys(kek, keys); err != nil {
			t.Fatalf("wrap the unwrapped keys again: %v", err)
		} else if back, err := unwrapDataKeys(kek, again); err != nil || !bytes.Equal(back.marshal(), keys.marshal()) {
			t.Fatalf("keys do not survive a wrap and unwrap: %v", err)
		}
	})
}
