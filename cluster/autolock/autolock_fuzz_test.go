package autolock

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzUnlock feeds arbitrary unlock keys (what POST /swarm/unlock carries) and
// sealed node keys (what a disk holds) to Parse and Open: a key parses or is
// ErrFormat, a sealed key opens only with its KEK, and nothing panics.
func FuzzUnlock(f *testing.F) {
	k := Key(bytes.Repeat([]byte{1}, keySize))
	sealed, _ := Seal(k.KEK(), []byte("-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----\n"))
	f.Add(k.String(), sealed)
	f.Add("SWMKEY-1-", []byte("-----BEGIN SHOAL SEALED PRIVATE KEY-----\n\n-----END SHOAL SEALED PRIVATE KEY-----\n"))
	f.Add("hunter2", []byte{})
	f.Add("SWMKEY-1-AA", sealed[:len(sealed)/2])
	f.Fuzz(func(t *testing.T, text string, data []byte) {
		key, err := Parse(text)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("Parse(%q): %v, want ErrFormat", text, err)
			}
			return
		}
		if again, err := Parse(key.String()); err != nil || !bytes.Equal(again, key) {
			t.Fatalf("Parse(%q).String() does not parse back: %v", text, err)
		}
		if plain, err := Open(key.KEK(), data); err == nil && !bytes.Equal(key, k) {
			t.Fatalf("a key other than the sealing one opened %q", plain)
		}
	})
}
