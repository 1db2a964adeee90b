package transport

import (
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/shoal-project/shoal/cluster/ca"
)

// node issues credentials for a node of the swarm rooted at root.
func node(t *testing.T, root ca.RootCA, id, role, cluster string) *Credentials {
	t.Helper()
	key, keyPEM, err := ca.NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ca.NewCSR(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := root.Issue(csr, ca.Identity{NodeID: id, Role: role, ClusterID: cluster}, time.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := NewCredentials(ca.NodeFiles{CertPEM: cert, KeyPEM: keyPEM, RootPEM: root.CertPEM})
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

func newRoot(t *testing.T) ca.RootCA {
	t.Helper()
	root, err := ca.NewRootCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// serve starts a manager's control port on loopback answering who called.
func serve(t *testing.T, creds *Credentials, authorize func(string, ca.Identity) error) string {
	t.Helper()
	l, err := Listen(Config{ListenAddr: "127.0.0.1:0", AdvertiseAddr: "127.0.0.1:2377", Credentials: creds, Authorize: authorize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	rpc := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := Peer(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		_, _ = io.WriteString(w, id.NodeID+" "+id.Role)
	})
	join := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "join") })
	l.Serve(rpc, join)
	return l.Addr().String()
}

func get(client *http.Client, addr, path string) (string, error) {
	resp, err := client.Get("https://" + addr + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func TestControlPortNamesItsPeers(t *testing.T) {
	root := newRoot(t)
	manager := node(t, root, "m1", ca.ManagerRole, "c1")
	addr := serve(t, manager, nil)

	worker := node(t, root, "w1", ca.WorkerRole, "c1")
	got, err := get(worker.HTTPClient(false), addr, "/")
	if err != nil || got != "w1 swarm-worker" {
		t.Fatalf("worker's call: %q, %v; want the worker named by its certificate", got, err)
	}

	// Another swarm's node is refused, and so is a client with no certificate.
	stranger := node(t, newRoot(t), "x1", ca.ManagerRole, "c1")
	if _, err := get(stranger.HTTPClient(false), addr, "/"); err == nil {
		t.Error("a node of another swarm was let in")
	}
	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: manager.clientConfig(ProtoRPC, false).Clone()}}
	plain.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = nil
	if _, err := get(plain, addr, "/"); err == nil {
		t.Error("a client without a certificate was let in")
	}

	// The join protocol needs no certificate; pinned to the root, it reaches the manager.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(root.CertPEM)
	if got, err := get(JoinClient(pool), addr, "/"); err != nil || got != "join" {
		t.Fatalf("join call: %q, %v", got, err)
	}
	other := x509.NewCertPool()
	other.AppendCertsFromPEM(newRoot(t).CertPEM)
	if _, err := get(JoinClient(other), addr, "/"); err == nil {
		t.Error("a joiner pinned to another root accepted this manager")
	}
}

func TestRaftIsForManagersOnly(t *testing.T) {
	root := newRoot(t)
	manager := node(t, root, "m1", ca.ManagerRole, "c1")
	addr := serve(t, manager, nil)
	ctx := context.Background()
	conn, err := node(t, root, "m2", ca.ManagerRole, "c1").Dial(ctx, addr, ProtoRaft, false)
	if err != nil {
		t.Fatalf("manager's raft dial: %v", err)
	}
	conn.Close()
	conn, err = node(t, root, "w1", ca.WorkerRole, "c1").Dial(ctx, addr, ProtoRaft, false)
	if err == nil {
		// TLS 1.3: the server's refusal may arrive with the first read.
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Fatal("a worker spoke raft to a manager")
	}
}

func TestAuthorizeRefusesRemovedNodes(t *testing.T) {
	root := newRoot(t)
	manager := node(t, root, "m1", ca.ManagerRole, "c1")
	addr := serve(t, manager, func(proto string, peer ca.Identity) error {
		if peer.NodeID == "removed" {
			return io.ErrUnexpectedEOF
		}
		return nil
	})
	if _, err := get(node(t, root, "removed", ca.WorkerRole, "c1").HTTPClient(false), addr, "/"); err == nil {
		t.Fatal("a removed node's certificate was accepted")
	}
	if _, err := get(node(t, root, "kept", ca.WorkerRole, "c1").HTTPClient(false), addr, "/"); err != nil {
		t.Fatalf("a known node was refused: %v", err)
	}
}
