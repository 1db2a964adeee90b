package overlay

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Attaching again changes nothing; a restarted daemon's Plane adopts the
// endpoints and table without disturbing held connections, direct or through
// a VIP; an endpoint that differs is replaced; Detach and Teardown leave
// nothing of the overlay on the host.
func TestRestartKeepsConnectionsAndTeardownLeavesNothing(t *testing.T) {
	l := newLab(t)
	n1, n2 := l.nodes[0], l.nodes[1]
	a1 := l.task(n1, "a1", netA, "10.10.1.2")
	a3 := l.task(n2, "a3", netA, "10.10.1.4")
	serve(t, a1.ns, ":80", "a1")
	serve(t, a3.ns, ":80", "a3")
	vips := []VIP{{Addr: netip.MustParseAddr("10.10.1.250"), Backends: []netip.Addr{a3.addr}}}
	l.apply(n1, vips...)
	l.apply(n2)
	direct := hold(t, a1.ns, "10.10.1.4:80")
	viaVIP := hold(t, a1.ns, "10.10.1.250:80")
	stillUp := func(when string) {
		t.Helper()
		for _, h := range []*held{direct, viaVIP} {
			if got, err := h.ping(); err != nil || got != "a3" {
				t.Fatalf("held connection %s: %q, %v", when, got, err)
			}
		}
	}
	h1 := handleAt(t, n1.ns)
	index := linkByName(t, h1, a1.ep.HostIfName).Attrs().Index

	ep, err := n1.plane.Attach(context.Background(), a1.id, a1.path, a1.att)
	if err != nil || ep.HostIfName != a1.ep.HostIfName || ep.MAC.String() != a1.ep.MAC.String() {
		t.Fatalf("Attach again: %+v, %v; want %+v", ep, err, a1.ep)
	}
	if got := linkByName(t, h1, ep.HostIfName).Attrs().Index; got != index {
		t.Errorf("Attach again replaced the host end: index %d, was %d", got, index)
	}
	stillUp("after Attach again")

	if err := n1.plane.Close(); err != nil {
		t.Fatal(err)
	}
	stillUp("with the daemon stopped")
	p := openPlane(t, n1.ns, Config{})
	stillUp("after New")
	if _, err := p.Attach(context.Background(), a1.id, a1.path, a1.att); err != nil {
		t.Fatalf("Attach after restart: %v", err)
	}
	if err := p.Apply(context.Background(), l.state(n1, vips...)); err != nil {
		t.Fatalf("Apply after restart: %v", err)
	}
	if got := linkByName(t, h1, a1.ep.HostIfName).Attrs().Index; got != index {
		t.Errorf("restart replaced the host end: index %d, was %d", got, index)
	}
	stillUp("after Attach and Apply by the restarted daemon")

	moved := a1.att
	moved.Addr = netip.MustParseAddr("10.10.1.20")
	if _, err := p.Attach(context.Background(), a1.id, a1.path, moved); err != nil {
		t.Fatalf("Attach with another address: %v", err)
	}
	if got := linkByName(t, h1, a1.ep.HostIfName).Attrs().Index; got == index {
		t.Errorf("an endpoint with another address kept its host end")
	}
	a1.addr = moved.Addr
	l.syncPeers()
	expectReply(t, a3.ns, "10.10.1.20:80", "a1 sees 10.10.1.4")

	if err := p.Detach(context.Background(), a1.id); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	if _, err := handleAt(t, a1.ns).LinkByName("eth1"); err == nil {
		t.Errorf("the sandbox keeps eth1 after Detach")
	}
	if ends := hostEnds(t, n1.ns); len(ends) != 0 {
		t.Errorf("host ends after Detach: %v", ends)
	}

	// Without a device the subnets are unreachable, and gone networks' routes go.
	if err := n2.plane.Apply(context.Background(), State{Networks: []Network{netA}}); err != nil {
		t.Fatal(err)
	}
	if rs := ownRoutes(t, n2.ns, protoNetwork); len(rs) != 1 || rs[0].Type != unix.RTN_UNREACHABLE || rs[0].Dst.String() != netA.Subnet.String() {
		t.Errorf("network routes without a device: %v, want only unreachable %s", rs, netA.Subnet)
	}

	for i, pl := range []*Plane{p, n2.plane} {
		if err := pl.Teardown(context.Background()); err != nil {
			t.Fatalf("Teardown of node %d: %v", i+1, err)
		}
	}
	for i, n := range l.nodes {
		if ends := hostEnds(t, n.ns); len(ends) != 0 {
			t.Errorf("node %d: host ends after Teardown: %v", i+1, ends)
		}
		if rs := append(ownRoutes(t, n.ns, protoNetwork), ownRoutes(t, n.ns, protoEndpoint)...); len(rs) != 0 {
			t.Errorf("node %d: routes after Teardown: %v", i+1, rs)
		}
		if hasTable(t, n.ns, DefaultTable) {
			t.Errorf("node %d: table %s after Teardown", i+1, DefaultTable)
		}
	}
}

func hostEnds(t *testing.T, ns netns.NsHandle) []string {
	t.Helper()
	links, err := handleAt(t, ns).LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, hostEndPrefix) {
			names = append(names, l.Attrs().Name)
		}
	}
	return names
}

func ownRoutes(t *testing.T, ns netns.NsHandle, proto netlink.RouteProtocol) []netlink.Route {
	t.Helper()
	rs, err := handleAt(t, ns).RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: proto}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func hasTable(t *testing.T, ns netns.NsHandle, name string) bool {
	t.Helper()
	conn, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name == name {
			return true
		}
	}
	return false
}
