package testenv_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/testenv"
)

// These tests need root, and the shoal binary ($SHOAL_BINARY, as make test sets
// it, or built on the fly). Most share one three-node lab, as a package of
// multi-node tests would.
var shared = testenv.NewSharedLab(testenv.LabOptions{Nodes: 3})

func TestMain(m *testing.M) {
	code := m.Run()
	if err := shared.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close shared lab:", err)
		code = 1
	}
	os.Exit(code)
}

func TestLabNodesAnswer(t *testing.T) {
	lab := shared.Use(t)
	if len(lab.Nodes) != 3 {
		t.Fatalf("lab has %d nodes, want 3", len(lab.Nodes))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i, n := range lab.Nodes {
		if want := fmt.Sprintf("node%d", i+1); n.Name != want {
			t.Errorf("node %d is named %q, want %q", i, n.Name, want)
		}
		if want := fmt.Sprintf("10.99.0.%d", i+1); n.Addr() != want {
			t.Errorf("%s: Addr() = %q, want %q", n.Name, n.Addr(), want)
		}
		if err := n.Ping(ctx); err != nil {
			t.Errorf("%s: %v", n.Name, err)
		}
		if v := strings.TrimSpace(n.MustDocker("version", "--format", "{{.Server.Version}}")); v == "" {
			t.Errorf("%s: docker version shows no server version", n.Name)
		}
		if name := strings.TrimSpace(n.MustDocker("info", "--format", "{{.Name}}")); name != n.Name {
			t.Errorf("%s: docker info says the node is %q", n.Name, name)
		}
		// Programs run on the node see its hostname and its address.
		if out := commandOutput(t, n, "hostname"); strings.TrimSpace(out) != n.Name {
			t.Errorf("%s: hostname says %q", n.Name, out)
		}
		if out := commandOutput(t, n, "ip", "-4", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(out, " "+n.Addr()+"/24 ") {
			t.Errorf("%s: eth0 lacks %s/24:\n%s", n.Name, n.Addr(), out)
		}
	}
}

func TestLabNodesReachEachOther(t *testing.T) {
	lab := shared.Use(t)
	for _, from := range lab.Nodes {
		for _, to := range lab.Nodes {
			if from == to {
				continue
			}
			addr := echoServer(t, to)
			if err := reachTCP(from, addr); err != nil {
				t.Errorf("%s -> %s over TCP: %v", from.Name, to.Name, err)
			}
			if err := reachUDP(t, from, to); err != nil {
				t.Errorf("%s -> %s over UDP: %v", from.Name, to.Name, err)
			}
		}
	}
}

func TestLabPartitionAndHeal(t *testing.T) {
	lab := shared.Use(t)
	n1, n2, n3 := lab.Nodes[0], lab.Nodes[1], lab.Nodes[2]
	addr1, addr2, addr3 := echoServer(t, n1), echoServer(t, n2), echoServer(t, n3)
	// A connection open before the partition, to see that it hangs.
	open, err := n2.DialContext(context.Background(), "tcp", addr1)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if err := echo(open, "before"); err != nil {
		t.Fatalf("open connection before the partition: %v", err)
	}

	lab.Partition([]*testenv.Node{n1}, []*testenv.Node{n2, n3})
	if got := lab.Lab.Partitioned(); fmt.Sprint(got) != "[[node1] [node2 node3]]" {
		t.Errorf("Partitioned() = %v", got)
	}
	for _, c := range []struct {
		from *testenv.Node
		to   string
	}{{n2, addr1}, {n3, addr1}, {n1, addr2}, {n1, addr3}} {
		if err := silentTCP(c.from, c.to); err != nil {
			t.Errorf("%s -> %s across the partition: %v", c.from.Name, c.to, err)
		}
	}
	if err := reachTCP(n2, addr3); err != nil {
		t.Errorf("node2 -> node3 inside a group: %v", err)
	}
	if err := reachTCP(n3, addr2); err != nil {
		t.Errorf("node3 -> node2 inside a group: %v", err)
	}
	if err := reachUDP(t, n1, n2); err == nil {
		t.Error("a UDP datagram crossed the partition from node1 to node2")
	}
	if err := reachUDP(t, n3, n2); err != nil {
		t.Errorf("node3 -> node2 over UDP inside a group: %v", err)
	}
	if _, err := open.Write([]byte("during\n")); err != nil {
		t.Fatal(err)
	}
	_ = open.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, err := open.Read(make([]byte, 16)); err == nil || !isTimeout(err) {
		t.Errorf("the open connection carried data across the partition (read %d bytes, err %v)", n, err)
	}

	// A node left out of every group reaches all.
	lab.Partition([]*testenv.Node{n1}, []*testenv.Node{n2})
	if err := silentTCP(n1, addr2); err != nil {
		t.Errorf("node1 -> node2 across the partition: %v", err)
	}
	if err := reachTCP(n3, addr1); err != nil {
		t.Errorf("node3 (in no group) -> node1: %v", err)
	}
	if err := reachTCP(n3, addr2); err != nil {
		t.Errorf("node3 (in no group) -> node2: %v", err)
	}

	lab.Heal()
	if got := lab.Lab.Partitioned(); got != nil {
		t.Errorf("Partitioned() after Heal = %v", got)
	}
	addrs := map[*testenv.Node]string{n1: addr1, n2: addr2, n3: addr3}
	for _, from := range lab.Nodes {
		for to, addr := range addrs {
			if from != to {
				testenv.WaitFor(t, 10*time.Second, from.Name+" reaches "+to.Name+" after heal", func() (bool, string) {
					err := reachTCP(from, addr)
					return err == nil, fmt.Sprint(err)
				})
			}
		}
	}
	// TCP retransmits what the partition dropped: the open connection lives on.
	_ = open.SetReadDeadline(time.Now().Add(15 * time.Second))
	buf := make([]byte, len("during\n"))
	if _, err := readFull(open, buf); err != nil || string(buf) != "during\n" {
		t.Errorf("open connection after heal: read %q, %v", buf, err)
	}
}

func TestLabNodeKeepsAddressAcrossRestarts(t *testing.T) {
	lab := shared.Use(t)
	n1, n2 := lab.Nodes[0], lab.Nodes[1]
	eth0 := func() string { return commandOutput(t, n2, "ip", "-4", "-o", "addr", "show", "dev", "eth0") }
	before := eth0()

	n2.Kill()
	if n2.State() != "stopped" {
		t.Errorf("after Kill, state is %s", n2.State())
	}
	if err := pingWithin(n2, time.Second); err == nil {
		t.Error("the killed daemon answers")
	}
	// The node's network lives on without its daemon.
	if err := reachTCP(n1, echoServer(t, n2)); err != nil {
		t.Errorf("node1 -> node2 while node2's daemon is down: %v", err)
	}
	n2.Start()
	if after := eth0(); after != before {
		t.Errorf("eth0 changed across Kill and Start:\n%s\n%s", before, after)
	}
	if name := strings.TrimSpace(n2.MustDocker("info", "--format", "{{.Name}}")); name != "node2" {
		t.Errorf("after Start, docker info says %q", name)
	}

	n2.Freeze()
	if n2.State() != "frozen" {
		t.Errorf("after Freeze, state is %s", n2.State())
	}
	if err := pingWithin(n2, 500*time.Millisecond); err == nil {
		t.Error("the frozen daemon answers")
	}
	n2.Thaw()
	if err := pingWithin(n2, 10*time.Second); err != nil {
		t.Errorf("after Thaw: %v", err)
	}

	n2.Stop()
	if n2.State() != "stopped" {
		t.Errorf("after Stop, state is %s", n2.State())
	}
	n2.Start()

	n2.MustDocker("volume", "create", "kept-until-reset")
	n2.Restart()
	if out := n2.MustDocker("volume", "ls", "-q"); !strings.Contains(out, "kept-until-reset") {
		t.Errorf("the volume did not survive Restart: %q", out)
	}
	n2.Reset()
	if out := n2.MustDocker("volume", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("volumes after Reset: %q", out)
	}
	if after := eth0(); after != before {
		t.Errorf("eth0 changed across Reset:\n%s\n%s", before, after)
	}
	if err := reachTCP(n1, echoServer(t, n2)); err != nil {
		t.Errorf("node1 -> node2 after Reset: %v", err)
	}
}

func pingWithin(n *testenv.Node, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return n.Ping(ctx)
}

func commandOutput(t *testing.T, n *testenv.Node, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := n.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %s %v: %v\n%s", n.Name, name, args, err, out)
	}
	return string(out)
}

// BenchmarkLab5 measures how long a five-node lab takes to start and to close.
func BenchmarkLab5(b *testing.B) {
	binary := testenv.Binary(b)
	var up, down time.Duration
	for b.Loop() {
		began := time.Now()
		lab, err := testenv.StartLab(context.Background(), testenv.LabOptions{Nodes: 5, Binary: binary})
		if err != nil {
			b.Fatal(err)
		}
		up += time.Since(began)
		began = time.Now()
		if err := lab.Close(); err != nil {
			b.Fatal(err)
		}
		down += time.Since(began)
	}
	b.ReportMetric(float64(up.Milliseconds())/float64(b.N), "ms-up/op")
	b.ReportMetric(float64(down.Milliseconds())/float64(b.N), "ms-close/op")
}
