package overlay

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A VIP balances connections over its backends, two on the client's node
// and one across the mesh; the backends see the client's own address. A
// backend taken out gets no new connection while held connections to the
// others go on; a VIP without backends refuses at once.
func TestVIPBalancesOverLocalAndRemoteBackends(t *testing.T) {
	l := newLab(t)
	n1, n2 := l.nodes[0], l.nodes[1]
	c := l.task(n1, "c", netA, "10.10.1.10")
	s1 := l.task(n1, "s1", netA, "10.10.1.11")
	s2 := l.task(n1, "s2", netA, "10.10.1.12")
	s3 := l.task(n2, "s3", netA, "10.10.1.13")
	for _, tk := range []*task{s1, s2, s3} {
		serve(t, tk.ns, ":80", tk.id)
	}
	vip := netip.MustParseAddr("10.10.1.250")
	l.apply(n1, VIP{Addr: vip, Backends: []netip.Addr{s1.addr, s2.addr, s3.addr}})
	l.apply(n2)
	const vipAddr = "10.10.1.250:80"

	counts := askMany(t, c, vipAddr, 30)
	for _, name := range []string{"s1", "s2", "s3"} {
		if counts[name] == 0 {
			t.Errorf("no connection reached %s: %v", name, counts)
		}
	}

	held := map[string]*held{}
	for i := 0; i < 10 && len(held) < 3; i++ {
		h := hold(t, c.ns, vipAddr)
		held[strings.Fields(h.greeting)[0]] = h
	}
	if len(held) != 3 {
		t.Fatalf("held connections reach %d backends, want 3", len(held))
	}

	l.apply(n1, VIP{Addr: vip, Backends: []netip.Addr{s3.addr, s1.addr}})
	for _, name := range []string{"s1", "s3"} {
		if got, err := held[name].ping(); err != nil || got != name {
			t.Errorf("connection held to %s after its VIP lost s2: %q, %v", name, got, err)
		}
	}
	// Its connections were forgotten: the next packet is balanced afresh and
	// reset by a backend that never had it, instead of going on to s2.
	if got, err := held["s2"].ping(); err == nil {
		t.Errorf("connection held to s2 after it left the VIP still answers: %q", got)
	}
	counts = askMany(t, c, vipAddr, 30)
	if counts["s2"] != 0 || counts["s1"] == 0 || counts["s3"] == 0 {
		t.Errorf("connections after s2 left: %v, want s1 and s3 only", counts)
	}

	l.apply(n1, VIP{Addr: vip})
	start := time.Now()
	_, err := dial(c.ns, net.Dialer{Timeout: 5 * time.Second}, vipAddr)
	if !errors.Is(err, syscall.ECONNREFUSED) || time.Since(start) > time.Second {
		t.Errorf("connect to a VIP without backends: %v after %v, want refused at once", err, time.Since(start))
	}
}

// askMany connects n times from tk to addr and counts the answers by name;
// every backend must answer with the client's own address.
func askMany(t *testing.T, tk *task, addr string, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for range n {
		var got string
		eventually(t, "connect to "+addr, func() (err error) { got, err = ask(tk.ns, addr); return err })
		name, sees, _ := strings.Cut(got, " sees ")
		if sees != tk.addr.String() {
			t.Fatalf("backend %s sees %q, want the client's %s", name, sees, tk.addr)
		}
		counts[name]++
	}
	return counts
}
