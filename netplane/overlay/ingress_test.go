package overlay

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The routing mesh: a client outside the swarm connects to a port node 1
// publishes, which node 1 DNATs (as netplane/bridge does) to a task's
// ingress address on node 2. The connection works, and the task sees node
// 1's mesh address, so its replies go back through node 1 to be un-NATed.
func TestIngressReachesTasksOfOtherNodes(t *testing.T) {
	l := newLab(t)
	n1, n2 := l.nodes[0], l.nodes[1]
	i2 := l.task(n2, "i2", ingress, "10.10.9.2", DefaultMeshRange)
	serve(t, i2.ns, ":80", "i2")
	l.apply(n1)
	l.apply(n2)

	client := newNetNS(t)
	linkUp(t, client, "lo")
	h := handleAt(t, n1.ns)
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ext"}, PeerName: "ext",
		PeerNamespace: netlink.NsFd(int(client)), PeerTxQLen: -1}); err != nil {
		t.Fatalf("add the client's veth: %v", err)
	}
	addAddr(t, n1.ns, "ext", netip.MustParsePrefix("198.51.100.1/24"))
	addAddr(t, client, "ext", netip.MustParsePrefix("198.51.100.2/24"))
	linkUp(t, n1.ns, "ext")
	linkUp(t, client, "ext")
	publish(t, n1, 8080, netip.AddrPortFrom(i2.addr, 80))

	expectReply(t, client, "198.51.100.1:8080", "i2 sees "+n1.mesh.String())
}

// publish DNATs TCP port on n to backend in a table of the test's own,
// standing in for netplane/bridge's published ports.
func publish(t *testing.T, n *node, port uint16, backend netip.AddrPort) {
	t.Helper()
	conn, err := nftables.New(nftables.WithNetNSFd(int(n.ns)))
	if err != nil {
		t.Fatalf("nftables: %v", err)
	}
	table := conn.AddTable(&nftables.Table{Name: "shoaltest-publish", Family: nftables.TableFamilyIPv4})
	pre := conn.AddChain(&nftables.Chain{Name: "prerouting", Table: table, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
	addr := backend.Addr().As4()
	conn.AddRule(&nftables.Rule{Table: table, Chain: pre, Exprs: concat(matchL4Proto(unix.IPPROTO_TCP), []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.Immediate{Register: 1, Data: addr[:]},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(backend.Port())},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	})})
	if err := conn.Flush(); err != nil {
		t.Fatalf("publish port %d: %v", port, err)
	}
}

// With the relay, the routing mesh keeps the client's address across nodes:
// the task on node 2 sees the outside client's own address, answers it
// through node 1 (which undoes the DNAT), and this under a strict reverse
// path filter on both nodes. Without the relay, the same connection is
// masqueraded to node 1's mesh address again, and the relay's device, rules
// and routes are gone.
func TestIngressRelayKeepsTheClientAddress(t *testing.T) {
	l := newLab(t)
	n1, n2 := l.nodes[0], l.nodes[1]
	for _, n := range l.nodes {
		setSysctl(t, n.ns, "net/ipv4/conf/all/rp_filter", "1")
	}
	// No default route in the task: its replies to the client leave through
	// eth1 by their source, or not at all.
	i2 := l.task(n2, "i2", ingress, "10.10.9.2", DefaultMeshRange)
	i2.att.SourceRouted = true
	if _, err := n2.plane.Attach(context.Background(), "i2", i2.path, i2.att); err != nil {
		t.Fatalf("Attach again, source routed: %v", err)
	}
	serve(t, i2.ns, ":80", "i2")
	client := outsideClient(t, n1)
	publish(t, n1, 8080, netip.AddrPortFrom(i2.addr, 80))
	// Node 2 is on the client's network too (as a lab's nodes are): its
	// connected route must not take the task's replies past node 1.
	other := newNetNS(t)
	if err := handleAt(t, n2.ns).LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ext"}, PeerName: "ext",
		PeerNamespace: netlink.NsFd(int(other)), PeerTxQLen: -1}); err != nil {
		t.Fatalf("add node 2's veth: %v", err)
	}
	addAddr(t, n2.ns, "ext", netip.MustParsePrefix("198.51.100.3/24"))
	linkUp(t, n2.ns, "ext")

	relayed := func(n *node, backends map[netip.Addr]netip.Addr) State {
		s := l.state(n)
		other := l.nodes[0]
		if n == other {
			other = l.nodes[1]
		}
		s.Relay = &Relay{Self: n.mesh, Peers: []netip.Addr{other.mesh}, Backends: backends}
		return s
	}
	applyState(t, n1, relayed(n1, map[netip.Addr]netip.Addr{i2.addr: n2.mesh}))
	applyState(t, n2, relayed(n2, nil))
	expectReply(t, client, "198.51.100.1:8080", "i2 sees 198.51.100.2")
	// Applying the same state again keeps the relay and its connections.
	h := hold(t, client, "198.51.100.1:8080")
	applyState(t, n1, relayed(n1, map[netip.Addr]netip.Addr{i2.addr: n2.mesh}))
	applyState(t, n2, relayed(n2, nil))
	if got, err := h.ping(); err != nil || got != "i2" {
		t.Errorf("relayed connection after applying again: %q, %v", got, err)
	}
	// A bulk transfer through the relay: the MSS fits its MTU.
	expectBulk(t, client, "198.51.100.1:8080")

	l.apply(n1)
	l.apply(n2)
	expectReply(t, client, "198.51.100.1:8080", "i2 sees "+n1.mesh.String())
	for _, n := range l.nodes {
		if _, err := handleAt(t, n.ns).LinkByName(RelayDevice); err == nil {
			t.Errorf("%s still there without a relay", RelayDevice)
		}
		var left []string
		rules, err := handleAt(t, n.ns).RuleList(netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			if r.Priority >= prefIngress && r.Priority <= prefTask {
				left = append(left, r.String())
			}
		}
		if len(left) > 0 {
			t.Errorf("relay rules left: %v", left)
		}
	}
}

func applyState(t *testing.T, n *node, s State) {
	t.Helper()
	if err := n.plane.Apply(context.Background(), s); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// outsideClient is a namespace cabled to n by a veth: n is 198.51.100.1 on
// it, the client 198.51.100.2, routed to everything through n.
func outsideClient(t *testing.T, n *node) netns.NsHandle {
	t.Helper()
	client := newNetNS(t)
	linkUp(t, client, "lo")
	h := handleAt(t, n.ns)
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ext"}, PeerName: "ext",
		PeerNamespace: netlink.NsFd(int(client)), PeerTxQLen: -1}); err != nil {
		t.Fatalf("add the client's veth: %v", err)
	}
	addAddr(t, n.ns, "ext", netip.MustParsePrefix("198.51.100.1/24"))
	addAddr(t, client, "ext", netip.MustParsePrefix("198.51.100.2/24"))
	linkUp(t, n.ns, "ext")
	linkUp(t, client, "ext")
	return client
}

// expectBulk sends 1 MB of lines on one connection and reads every answer.
func expectBulk(t *testing.T, ns netns.NsHandle, addr string) {
	t.Helper()
	c, err := dial(ns, net.Dialer{Timeout: time.Second}, addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	line := strings.Repeat("x", 4095) + "\n"
	go func() {
		for range 256 {
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := range 256 {
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatalf("answer %d of 256 to 1 MB sent: %v", i, err)
		}
	}
}

// Teardown removes the relay with the rest: device, rules and routes.
func TestTeardownRemovesTheRelay(t *testing.T) {
	l := newLab(t)
	n1, n2 := l.nodes[0], l.nodes[1]
	s := l.state(n1)
	s.Relay = &Relay{Self: n1.mesh, Peers: []netip.Addr{n2.mesh}}
	applyState(t, n1, s)
	h := handleAt(t, n1.ns)
	if _, err := h.LinkByName(RelayDevice); err != nil {
		t.Fatalf("no %s after Apply: %v", RelayDevice, err)
	}
	if err := n1.plane.Teardown(context.Background()); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	if _, err := h.LinkByName(RelayDevice); err == nil {
		t.Errorf("%s left after Teardown", RelayDevice)
	}
	rules, err := h.RuleList(netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if r.Priority >= prefIngress && r.Priority <= prefTask {
			t.Errorf("relay rule left after Teardown: %s", r)
		}
	}
	routes, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: protoRelay, Table: unix.RT_TABLE_UNSPEC},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil || len(routes) > 0 {
		t.Errorf("relay routes left after Teardown: %v, %v", routes, err)
	}
}
