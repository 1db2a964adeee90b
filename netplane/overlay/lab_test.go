package overlay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/shoal-project/shoal/netplane/namespace"

	"github.com/shoal-project/shoal/netplane/wg"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// The networks every lab knows; each gateway is its subnet's first address.
var (
	netA    = Network{ID: "neta", Subnet: netip.MustParsePrefix("10.10.1.0/24")}
	netB    = Network{ID: "netb", Subnet: netip.MustParsePrefix("10.10.2.0/24")}
	ingress = Network{ID: "ingress", Subnet: netip.MustParsePrefix("10.10.9.0/24"), Ingress: true}
)

// lab is one test's two nodes: each a network namespace of its own playing
// the host, joined by a veth (the underlay, 192.0.2.0/24), each with a real
// WireGuard interface (userspace here) peered with the other, and an
// overlay Plane. Nothing of the real host is seen or touched, and closing
// the namespaces' handles removes everything.
type lab struct {
	t     testing.TB
	tag   string
	nodes [2]*node
}

// node is one of the lab's hosts.
type node struct {
	ns       netns.NsHandle
	dev      *wg.Device
	devName  string
	key      wgtypes.Key
	mesh     netip.Addr // on the WireGuard interface, in DefaultMeshRange
	underlay netip.Addr
	plane    *Plane
	tasks    []*task
}

// task is a sandbox attached to one network.
type task struct {
	id   string
	node *node
	ns   netns.NsHandle
	path string
	addr netip.Addr
	net  Network
	ep   Endpoint
	att  Attachment
}

func newLab(t testing.TB) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, TUN devices, nftables")
	}
	l := &lab{t: t, tag: randomHex(t, 3)}
	for i := range l.nodes {
		l.nodes[i] = &node{
			ns:       newNetNS(t),
			key:      newKey(t),
			mesh:     netip.AddrFrom4([4]byte{10, 254, 0, byte(i + 1)}),
			underlay: netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}),
			devName:  "shoal-" + string(rune('a'+i)) + l.tag,
		}
		linkUp(t, l.nodes[i].ns, "lo")
	}
	a, b := l.nodes[0], l.nodes[1]
	h := handleAt(t, a.ns)
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "underlay"}, PeerName: "underlay",
		PeerNamespace: netlink.NsFd(int(b.ns)), PeerTxQLen: -1}); err != nil {
		t.Fatalf("add underlay veth: %v", err)
	}
	for _, n := range l.nodes {
		addAddr(t, n.ns, "underlay", netip.PrefixFrom(n.underlay, 24))
		linkUp(t, n.ns, "underlay")
		n.dev = openDevice(t, n.ns, wg.Config{Name: n.devName, Key: n.key,
			Address: netip.PrefixFrom(n.mesh, DefaultMeshRange.Bits())})
		n.plane = openPlane(t, n.ns, Config{})
	}
	l.syncPeers()
	return l
}

// syncPeers makes each node the other's peer, routed at its mesh address and
// its tasks' addresses, as the agent will.
func (l *lab) syncPeers() {
	l.t.Helper()
	for i, n := range l.nodes {
		other := l.nodes[1-i]
		allowed := []netip.Prefix{netip.PrefixFrom(other.mesh, 32)}
		for _, tk := range other.tasks {
			allowed = append(allowed, netip.PrefixFrom(tk.addr, 32))
		}
		if err := n.dev.SetPeers([]wg.Peer{{Key: other.key.PublicKey(),
			Endpoint: netip.AddrPortFrom(other.underlay, wg.DefaultPort), AllowedIPs: allowed}}); err != nil {
			l.t.Fatalf("set peers: %v", err)
		}
	}
}

// state is what the agent would apply on n: the lab's networks over its
// WireGuard interface, and vips.
func (l *lab) state(n *node, vips ...VIP) State {
	return State{Device: n.devName, Networks: []Network{netA, netB, ingress}, VIPs: vips}
}

func (l *lab) apply(n *node, vips ...VIP) {
	l.t.Helper()
	if err := n.plane.Apply(context.Background(), l.state(n, vips...)); err != nil {
		l.t.Fatalf("Apply: %v", err)
	}
}

// task makes a sandbox on n, attaches it to nw at addr as eth1 and tells the
// other node's WireGuard about it.
func (l *lab) task(n *node, id string, nw Network, addr string, routes ...netip.Prefix) *task {
	l.t.Helper()
	ns := newNetNS(l.t)
	linkUp(l.t, ns, "lo")
	tk := &task{id: id, node: n, ns: ns, path: nsPath(ns), addr: netip.MustParseAddr(addr), net: nw}
	tk.att = Attachment{NetworkID: nw.ID, Subnet: nw.Subnet, Gateway: gatewayOf(nw.Subnet), Addr: tk.addr,
		IfName: "eth1", Routes: routes}
	ep, err := n.plane.Attach(context.Background(), id, tk.path, tk.att)
	if err != nil {
		l.t.Fatalf("Attach %s: %v", id, err)
	}
	tk.ep = ep
	n.tasks = append(n.tasks, tk)
	l.syncPeers()
	return tk
}

func gatewayOf(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }

// newNetNS makes an anonymous network namespace, alive while its handle is
// open: closing it at cleanup removes the namespace and all in it.
func newNetNS(t testing.TB) netns.NsHandle {
	t.Helper()
	type result struct {
		ns  netns.NsHandle
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer orig.Close()
		ns, err := netns.New()
		if err != nil {
			done <- result{err: err}
			return
		}
		if err := netns.Set(orig); err != nil {
			done <- result{ns, err} // the thread stays locked and dies with the goroutine
			return
		}
		runtime.UnlockOSThread()
		done <- result{ns, nil}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("new netns: %v", r.err)
	}
	t.Cleanup(func() { r.ns.Close() })
	return r.ns
}

// nsPath names a namespace by the test process's descriptor of it, as a
// caller names a sandbox's by its bind mount.
func nsPath(ns netns.NsHandle) string { return "/proc/self/fd/" + strconv.Itoa(int(ns)) }

func openDevice(t testing.TB, ns netns.NsHandle, cfg wg.Config) *wg.Device {
	t.Helper()
	var d *wg.Device
	if err := namespace.Run(ns, func() (err error) { d, err = wg.Open(cfg); return err }); err != nil {
		t.Fatalf("open WireGuard %s: %v", cfg.Name, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func openPlane(t testing.TB, ns netns.NsHandle, cfg Config) *Plane {
	t.Helper()
	var p *Plane
	if err := namespace.Run(ns, func() (err error) { p, err = New(context.Background(), cfg); return err }); err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func handleAt(t testing.TB, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

func linkUp(t testing.TB, ns netns.NsHandle, name string) {
	t.Helper()
	h := handleAt(t, ns)
	link, err := h.LinkByName(name)
	if err == nil {
		err = h.LinkSetUp(link)
	}
	if err != nil {
		t.Fatalf("set %s up: %v", name, err)
	}
}

func addAddr(t testing.TB, ns netns.NsHandle, name string, p netip.Prefix) {
	t.Helper()
	h := handleAt(t, ns)
	link, err := h.LinkByName(name)
	if err == nil {
		err = h.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}})
	}
	if err != nil {
		t.Fatalf("address %s on %s: %v", p, name, err)
	}
}

func newKey(t testing.TB) wgtypes.Key {
	t.Helper()
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
