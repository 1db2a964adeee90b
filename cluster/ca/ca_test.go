package ca

import (
	"crypto/x509"
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

// During a rotation, a node certificate of the new root, with the
// cross-signed intermediate, is accepted by a node that trusts only the old
// root, and by one that trusts only the new.
func TestCrossSignedChain(t *testing.T) {
	now := time.Now()
	old, _ := NewRootCA(now)
	next, _ := NewRootCA(now)
	cross, err := old.CrossSign(next, now)
	if err != nil {
		t.Fatal(err)
	}
	next.Intermediate = cross
	key, _, _ := NewNodeKey()
	csr, _ := NewCSR(key)
	certPEM, err := next.Issue(csr, Identity{NodeID: "n1", Role: WorkerRole, ClusterID: "c"}, now, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := ParseCertificates(certPEM)
	if err != nil || len(chain) != 2 {
		t.Fatalf("chain of %d certificates (%v), want the node's and the intermediate", len(chain), err)
	}
	for name, root := range map[string]RootCA{"old": old, "new": next} {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(root.CertPEM)
		if id, err := Verify(chain, pool, now); err != nil || id.NodeID != "n1" {
			t.Errorf("trusting only the %s root: %v", name, err)
		}
	}
	other, _ := NewRootCA(now)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(other.CertPEM)
	if _, err := Verify(chain, pool, now); err == nil {
		t.Error("a node of another swarm accepted the chain")
	}
}
