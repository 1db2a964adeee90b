package ca

import (
	"strings"
	"testing"
	"time"
)

func TestJoinTokenPinsRootCA(t *testing.T) {
	root, err := NewRootCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	worker, err := NewJoinToken(root)
	if err != nil {
		t.Fatal(err)
	}
	manager, err := NewJoinToken(root)
	if err != nil {
		t.Fatal(err)
	}
	if worker == manager {
		t.Fatal("worker and manager tokens are equal")
	}
	digest, secret, err := ParseJoinToken(worker)
	if err != nil {
		t.Fatalf("parse %q: %v", worker, err)
	}
	want, _ := root.Digest()
	if digest != want || len(secret) != 25 {
		t.Fatalf("token %q: digest %q (want %q), secret %q", worker, digest, want, secret)
	}
	other, _ := NewRootCA(time.Now())
	if d, _ := other.Digest(); d == digest {
		t.Fatal("two root CAs share a digest")
	}
	if !strings.HasPrefix(worker, "SWMTKN-1-") {
		t.Fatalf("token %q lacks the SWMTKN-1 prefix", worker)
	}
	if _, _, err := ParseJoinToken("SWMTKN-1-abc-def"); err == nil {
		t.Fatal("malformed token accepted")
	}
}
