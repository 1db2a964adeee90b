package autolock

import (
	"bytes"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
)

func TestKeyRoundTrip(t *testing.T) {
	k := NewKey()
	s := k.String()
	if !strings.HasPrefix(s, "SWMKEY-1-") || strings.ContainsAny(s, "=\n") {
		t.Fatalf("key %q is not in Docker's form", s)
	}
	got, err := Parse(s + "\n")
	if err != nil || !bytes.Equal(got, k) {
		t.Fatalf("Parse(String()) = %x, %v; want %x", got, err, k)
	}
	if bytes.Equal(k.KEK(), k) || !bytes.Equal(k.KEK(), got.KEK()) || len(k.KEK()) != 32 {
		t.Fatal("the KEK is not a 32-byte function of the key distinct from it")
	}
	if bytes.Equal(NewKey().KEK(), k.KEK()) {
		t.Fatal("two keys derive the same KEK")
	}
}

func TestParseRefuses(t *testing.T) {
	for _, s := range []string{"", "SWMKEY-1-", "SWMKEY-2-AAAA", "hunter2", "SWMKEY-1-***"} {
		if _, err := Parse(s); !errors.Is(err, ErrFormat) {
			t.Errorf("Parse(%q): err = %v, want ErrFormat", s, err)
		}
	}
}

func TestSealOpen(t *testing.T) {
	kek := NewKey().KEK()
	keyPEM := []byte("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n")
	sealed, err := Seal(kek, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !IsSealed(sealed) || IsSealed(keyPEM) || bytes.Contains(sealed, []byte("MHcCAQEE")) {
		t.Fatal("the sealed key is not recognized, or shows its contents")
	}
	got, err := Open(kek, sealed)
	if err != nil || !bytes.Equal(got, keyPEM) {
		t.Fatalf("Open: %q, %v", got, err)
	}
	if _, err := Open(NewKey().KEK(), sealed); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open with another KEK: err = %v, want ErrWrongKey", err)
	}
}

// A sealed key says it is encrypted as PEM does (what swarmkit's keyutils and
// moby's lock tests read), and a key sealed before the headers existed still
// opens.
func TestSealedKeyIsMarkedEncrypted(t *testing.T) {
	kek := NewKey().KEK()
	keyPEM := []byte("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n")
	sealed, err := Seal(kek, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(sealed)
	if b == nil || b.Headers["Proc-Type"] != "4,ENCRYPTED" || b.Headers["DEK-Info"] == "" {
		t.Fatalf("sealed key's PEM headers: %+v", b)
	}
	bare := pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: b.Bytes})
	if got, err := Open(kek, bare); err != nil || !bytes.Equal(got, keyPEM) {
		t.Fatalf("Open of a key sealed without headers: %q, %v", got, err)
	}
}
