package overlay

import (
	"net/netip"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
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
