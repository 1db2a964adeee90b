package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
	"github.com/shoal-project/shoal/testenv"
)

// The swarm's PKI across nodes: joins refused, the root CA rotated, node
// certificates renewed.

// Forged, wrong-CA and rotated tokens are refused and add no node; a TLS
// client without a swarm certificate is refused on the control port; a node
// removed from the swarm cannot come back with its certificate.
func TestMultiNodeJoinRefusals(t *testing.T) {
	t.Parallel()
	lab := testenv.NewLab(t, testenv.LabOptions{Nodes: 4})
	n1, n2, n3, n4 := lab.Nodes[0], lab.Nodes[1], lab.Nodes[2], lab.Nodes[3]
	n1.MustDocker("swarm", "init", "--advertise-addr", n1.Addr())
	remote := n1.Addr() + ":2377"
	token := strings.TrimSpace(n1.MustDocker("swarm", "join-token", "-q", "worker"))

	forged := token[:len(token)-5] + "aaaaa"
	out, err := try(n2, "swarm", "join", "--token", forged, remote)
	if err == nil || !strings.Contains(out, "A valid join token is necessary to join this cluster") {
		t.Errorf("forged token: %v %q", err, out)
	}
	// A token of another swarm: its CA digest does not match.
	n4.MustDocker("swarm", "init", "--advertise-addr", n4.Addr())
	other := strings.TrimSpace(n4.MustDocker("swarm", "join-token", "-q", "worker"))
	out, err = try(n2, "swarm", "join", "--token", other, remote)
	if err == nil || !strings.Contains(out, "remote CA does not match fingerprint") {
		t.Errorf("wrong-CA token: %v %q", err, out)
	}
	n1.MustDocker("swarm", "join-token", "--rotate", "worker")
	out, err = try(n2, "swarm", "join", "--token", token, remote)
	if err == nil || !strings.Contains(out, "A valid join token is necessary") {
		t.Errorf("rotated token: %v %q", err, out)
	}
	if rows, _ := nodeList(t, n1); len(rows) != 1 {
		t.Errorf("refused joins added nodes: %v", rows)
	}

	// No certificate, no control port (the join protocol aside).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := n2.DialContext(ctx, "tcp", remote)
	if err != nil {
		t.Fatal(err)
	}
	conn := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"shoal-rpc/1"}, MinVersion: tls.VersionTLS13})
	err = conn.HandshakeContext(ctx)
	if err == nil {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
	}
	conn.Close()
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client without a certificate on the control port: %v, want a refusal that names the certificate", err)
	}

	fresh := strings.TrimSpace(n1.MustDocker("swarm", "join-token", "-q", "worker"))
	n3.MustDocker("swarm", "join", "--token", fresh, remote)
	waitNodeStatus(t, n1, "node3", "Ready", 30*time.Second)
	n1.MustDocker("node", "rm", "--force", "node3")
	n3.Restart() // its agent opens a new session with the certificate it has
	testenv.WaitFor(t, 30*time.Second, "the removed node refused", func() (bool, string) {
		log := n3.Log()
		return strings.Contains(log, "no session with a manager"), ""
	})
	if rows, _ := nodeList(t, n1); len(rows) != 1 {
		t.Errorf("a removed node came back: %v", rows)
	}
	// A join through a node that is not a manager says so.
	out, err = try(n2, "swarm", "join", "--token", fresh, n3.Addr()+":2377")
	if err == nil || !strings.Contains(out, "not a swarm manager") {
		t.Errorf("join through a worker: %v %q", err, out)
	}
}

// `docker swarm ca --rotate` in a running three-node swarm (two managers, a
// worker): every node ends with a certificate of the new root, the join tokens
// name it, the old token is refused and the new one works, and no task
// container was restarted.
func TestMultiNodeCARotation(t *testing.T) {
	t.Parallel()
	lab := testenv.NewLab(t, testenv.LabOptions{Nodes: 4})
	n1, n2, n3, n4 := lab.Nodes[0], lab.Nodes[1], lab.Nodes[2], lab.Nodes[3]
	n1.MustDocker("swarm", "init", "--advertise-addr", n1.Addr())
	archive := imagetest.BusyboxArchive(t, t.TempDir(), "busybox:latest")
	n1.MustDocker("load", "-i", archive)
	manager := strings.TrimSpace(n1.MustDocker("swarm", "join-token", "-q", "manager"))
	worker := strings.TrimSpace(n1.MustDocker("swarm", "join-token", "-q", "worker"))
	n2.MustDocker("swarm", "join", "--token", manager, n1.Addr()+":2377")
	n3.MustDocker("swarm", "join", "--token", worker, n1.Addr()+":2377")
	waitNodes(t, n1, 3, "Ready")
	n1.MustDocker("service", "create", "-d", "--name", "web", "--replicas", "3", "--placement-pref", "spread=node.id", "busybox", "sleep", "1000")
	waitRunningOn(t, n1, "web", 3, 90*time.Second, func(by map[string]int) bool { return len(by) == 3 })
	containers := func() string {
		var ids []string
		for _, n := range []*testenv.Node{n1, n2, n3} {
			out, _ := try(n, "ps", "-q", "--no-trunc", "--filter", "label=com.docker.swarm.service.name=web")
			ids = append(ids, n.Name+":"+strings.TrimSpace(out))
		}
		return strings.Join(ids, " ")
	}
	before := containers()
	oldRoot := n1.MustDocker("swarm", "ca")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := n1.DockerContext(ctx, "swarm", "ca", "--rotate")
	if err != nil {
		t.Fatalf("swarm ca --rotate: %v", err)
	}
	newRoot := n2.MustDocker("swarm", "ca")
	if newRoot == oldRoot || !strings.Contains(out, strings.TrimSpace(newRoot)) {
		t.Fatalf("root after the rotation:\n%s\nbefore:\n%s\nrotate said:\n%s", newRoot, oldRoot, out)
	}
	if got := strings.TrimSpace(n1.MustDocker("info", "--format", "{{.Swarm.Cluster.RootRotationInProgress}}")); got != "false" {
		t.Errorf("rotation still in progress: %s", got)
	}
	testenv.WaitFor(t, 30*time.Second, "every node on the new root", func() (bool, string) {
		out, err := try(n2, "node", "ls", "--format", "{{.Hostname}} {{.TLSStatus}}")
		return err == nil && strings.Count(out, "Ready") == 3, out
	})
	newWorker := strings.TrimSpace(n1.MustDocker("swarm", "join-token", "-q", "worker"))
	if newWorker == worker || newWorker[len(newWorker)-25:] != worker[len(worker)-25:] {
		t.Errorf("worker token after the rotation %s, want the old secret with the new root's digest (was %s)", newWorker, worker)
	}
	if out, err := try(n4, "swarm", "join", "--token", worker, n1.Addr()+":2377"); err == nil {
		t.Errorf("a token of the old root joined: %s", out)
	}
	n4.MustDocker("swarm", "join", "--token", newWorker, n1.Addr()+":2377")
	waitNodes(t, n1, 4, "Ready")
	if after := containers(); after != before {
		t.Errorf("task containers changed across the rotation:\nbefore %s\nafter  %s", before, after)
	}
	waitRunningOn(t, n2, "web", 3, 30*time.Second, nil)
}

// Certificates renew before they expire, in a running three-node swarm (two
// managers, a worker), with no task restarted: with a lifetime of 30 s (the
// daemons accept less than Docker's hour for this), every node holds a new
// certificate before its first one expires, and once all the first ones have
// expired the swarm still takes writes through a follower, and every node is
// Ready.
func TestMultiNodeCertificateRenewal(t *testing.T) {
	t.Parallel()
	lab := testenv.NewLab(t, testenv.LabOptions{Nodes: 3, Args: []string{"--min-cert-expiry", "10s"}})
	n1, n2, n3 := lab.Nodes[0], lab.Nodes[1], lab.Nodes[2]
	n1.MustDocker("swarm", "init", "--advertise-addr", n1.Addr(), "--cert-expiry", "30s")
	archive := imagetest.BusyboxArchive(t, t.TempDir(), "busybox:latest")
	n1.MustDocker("load", "-i", archive)
	n2.MustDocker("swarm", "join", "--token", strings.TrimSpace(n1.MustDocker("swarm", "join-token", "-q", "manager")), n1.Addr()+":2377")
	n3.MustDocker("swarm", "join", "--token", strings.TrimSpace(n1.MustDocker("swarm", "join-token", "-q", "worker")), n1.Addr()+":2377")
	waitNodes(t, n1, 3, "Ready")
	nodes := []*testenv.Node{n1, n2, n3}
	first := map[string]*x509.Certificate{}
	var lastExpiry time.Time
	for _, n := range nodes {
		c := nodeCertificate(t, n)
		if left := time.Until(c.NotAfter); left > 30*time.Second {
			t.Fatalf("%s: certificate valid for %s more, want the swarm's 30s at most", n.Name, left)
		}
		first[n.Name] = c
		if c.NotAfter.After(lastExpiry) {
			lastExpiry = c.NotAfter
		}
	}
	n1.MustDocker("service", "create", "-d", "--name", "web", "--replicas", "3", "--placement-pref", "spread=node.id", "busybox", "sleep", "1000")
	waitRunningOn(t, n1, "web", 3, 90*time.Second, func(by map[string]int) bool { return len(by) == 3 })
	containers := func() []string {
		var ids []string
		for _, n := range nodes {
			out, _ := try(n, "ps", "-q", "--no-trunc", "--filter", "label=com.docker.swarm.service.name=web")
			ids = append(ids, strings.Fields(out)...)
		}
		return ids
	}
	before := containers()

	for _, n := range nodes {
		testenv.WaitFor(t, time.Until(first[n.Name].NotAfter), n.Name+" renewing its certificate before it expires", func() (bool, string) {
			c := nodeCertificate(t, n)
			return c.SerialNumber.Cmp(first[n.Name].SerialNumber) != 0 && c.NotAfter.After(first[n.Name].NotAfter), c.NotAfter.String()
		})
	}
	testenv.WaitFor(t, time.Until(lastExpiry)+5*time.Second, "every first certificate expired", func() (bool, string) {
		return time.Now().After(lastExpiry.Add(time.Second)), ""
	})
	n2.MustDocker("service", "scale", "-d", "web=4")
	waitRunningOn(t, n2, "web", 4, 60*time.Second, nil)
	waitNodes(t, n2, 3, "Ready")
	for _, n := range nodes {
		if !strings.Contains(n.Log(), "node certificate renewed") {
			t.Errorf("%s: the log does not say the certificate was renewed", n.Name)
		}
	}
	after := strings.Join(containers(), " ")
	if len(before) != 3 {
		t.Fatalf("task containers before the renewals: %v", before)
	}
	for _, id := range before {
		if !strings.Contains(after, id) {
			t.Errorf("task container %s is gone after the renewals (now: %s)", id, after)
		}
	}
}

// nodeCertificate reads the node's certificate from its data root.
func nodeCertificate(t *testing.T, n *testenv.Node) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(n.DataRoot, "swarm", "certificates", "swarm-node.crt"))
	if err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM in swarm-node.crt", n.Name)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	return c
}
