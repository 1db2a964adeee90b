package overlay

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Tasks of one network reach each other on one node and across the mesh,
// and each sees the other's own address: nothing on the way rewrites it.
func TestTasksOfANetworkReachEachOther(t *testing.T) {
	l := newLab(t)
	n1, n2 := l.nodes[0], l.nodes[1]
	a1 := l.task(n1, "a1", netA, "10.10.1.2")
	a2 := l.task(n1, "a2", netA, "10.10.1.3")
	a3 := l.task(n2, "a3", netA, "10.10.1.4")
	l.apply(n1)
	l.apply(n2)
	assertSandboxEnd(t, a1)

	for _, tk := range []*task{a1, a2, a3} {
		serve(t, tk.ns, tk.addr.String()+":80", tk.id)
	}
	expectReply(t, a1.ns, "10.10.1.4:80", "a3 sees 10.10.1.2")
	expectReply(t, a3.ns, "10.10.1.2:80", "a1 sees 10.10.1.4")
	expectReply(t, a1.ns, "10.10.1.3:80", "a2 sees 10.10.1.2")
	expectReply(t, a2.ns, "10.10.1.4:80", "a3 sees 10.10.1.3")
	// Across nodes, the bytes went through WireGuard.
	peers, err := n1.dev.Stats()
	if err != nil || len(peers) != 1 || peers[0].ReceiveBytes == 0 || peers[0].TransmitBytes == 0 {
		t.Errorf("node 1's WireGuard peers %+v (%v), want one with bytes both ways", peers, err)
	}
}

// assertSandboxEnd checks what `ip addr`, `ip neigh` and `ip route` show
// inside the sandbox: the address with its subnet's length, the gateway a
// permanent neighbour at the host end's MAC, the subnet routed through it.
func assertSandboxEnd(t *testing.T, tk *task) {
	t.Helper()
	h := handleAt(t, tk.ns)
	eth, err := h.LinkByName("eth1")
	if err != nil {
		t.Fatalf("sandbox has no eth1: %v", err)
	}
	if eth.Attrs().MTU != DefaultMTU || eth.Attrs().HardwareAddr.String() != tk.ep.MAC.String() {
		t.Errorf("eth1 MTU %d MAC %s, want %d and the endpoint's %s", eth.Attrs().MTU, eth.Attrs().HardwareAddr, DefaultMTU, tk.ep.MAC)
	}
	addrs, err := h.AddrList(eth, netlink.FAMILY_V4)
	if err != nil || len(addrs) != 1 || addrs[0].IPNet.String() != netip.PrefixFrom(tk.addr, tk.net.Subnet.Bits()).String() {
		t.Errorf("eth1 addresses %v (%v), want %s/%d", addrs, err, tk.addr, tk.net.Subnet.Bits())
	}
	gw := gatewayOf(tk.net.Subnet)
	neighs, err := h.NeighList(eth.Attrs().Index, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	var gwNeigh *netlink.Neigh
	for i := range neighs {
		if neighs[i].IP.Equal(net.IP(gw.AsSlice())) {
			gwNeigh = &neighs[i]
		}
	}
	hostEnd := linkByName(t, handleAt(t, tk.node.ns), tk.ep.HostIfName)
	if gwNeigh == nil || gwNeigh.State != netlink.NUD_PERMANENT || gwNeigh.HardwareAddr.String() != hostEnd.Attrs().HardwareAddr.String() {
		t.Errorf("gateway neighbour %+v, want permanent at the host end's %s", gwNeigh, hostEnd.Attrs().HardwareAddr)
	}
	routes, err := h.RouteList(eth, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 1 || routes[0].Dst.String() != tk.net.Subnet.String() || !routes[0].Gw.Equal(net.IP(gw.AsSlice())) ||
		routes[0].Flags&int(netlink.FLAG_ONLINK) == 0 {
		t.Errorf("eth1 routes %v, want only %s via %s onlink", routes, tk.net.Subnet, gw)
	}
}

func linkByName(t testing.TB, h *netlink.Handle, name string) netlink.Link {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("find %s: %v", name, err)
	}
	return l
}
