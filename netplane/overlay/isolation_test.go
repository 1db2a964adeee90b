package overlay

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/shoal-project/shoal/netplane/namespace"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// A task of network B reaches B's tasks but none of A's, on its node or
// across the mesh, even with a route that sends it there.
func TestNetworksAreIsolated(t *testing.T) {
	l := newLab(t)
	n1, n2 := l.nodes[0], l.nodes[1]
	a1 := l.task(n1, "a1", netA, "10.10.1.2")
	a3 := l.task(n2, "a3", netA, "10.10.1.4")
	b1 := l.task(n1, "b1", netB, "10.10.2.2")
	b2 := l.task(n2, "b2", netB, "10.10.2.3")
	// Every task routes the other network through its host end, as a task
	// whose default route led there would: only the node stands between.
	for _, tk := range []*task{a1, a3, b1, b2} {
		addRoute(t, tk, netip.MustParsePrefix("10.10.0.0/16"))
	}
	l.apply(n1)
	l.apply(n2)
	servers := map[string]*server{}
	for _, tk := range []*task{a1, a3, b1, b2} {
		servers[tk.id] = serve(t, tk.ns, tk.addr.String()+":80", tk.id)
	}

	expectReply(t, b1.ns, "10.10.2.3:80", "b2 sees 10.10.2.2")
	expectReply(t, a1.ns, "10.10.1.4:80", "a3 sees 10.10.1.2")
	expectNoConnection(t, b1.ns, "10.10.1.2:80")
	expectNoConnection(t, b1.ns, "10.10.1.4:80")
	expectNoConnection(t, a1.ns, "10.10.2.3:80")
	for _, s := range []*server{servers["a1"], servers["a3"]} {
		if s.saw("10.10.2.2") {
			t.Errorf("%s accepted a connection from network B", s.name)
		}
	}
}

// A task cannot send as another address: not as an unused address of its
// own network (which isolation alone would let through), nor as network A
// from network B. The overlay's own guard drops every such packet on the
// task's node whatever the host's reverse path filter is set to, while the
// task's real address gets through. The host ends' rp_filter 1 alone is not
// enough: the kernel applies the larger of it and conf/all (a loose all
// still drops here, since a host end has no address, but that is the
// kernel's detail), and anything that rewrites the host ends' setting after
// they are made (a sysctl.d glob such as net.ipv4.conf.*.rp_filter=0, which
// systemd's udev rule applies to every new interface) turns it off.
func TestSpoofedSourcesAreDropped(t *testing.T) {
	for _, c := range []struct{ name, all, ends string }{
		{"kernel defaults", "0", ""},
		{"loose all", "2", ""},
		{"host ends unfiltered", "0", "0"},
	} {
		t.Run(c.name, func(t *testing.T) { testSpoofedSources(t, c.all, c.ends) })
	}
}

func testSpoofedSources(t *testing.T, all, ends string) {
	l := newLab(t)
	n1, n2 := l.nodes[0], l.nodes[1]
	// The sysctls are per network namespace: node 1's, where the tasks send.
	setSysctl(t, n1.ns, "net/ipv4/conf/all/rp_filter", all)
	a1 := l.task(n1, "a1", netA, "10.10.1.2")
	a2 := l.task(n1, "a2", netA, "10.10.1.3")
	a3 := l.task(n2, "a3", netA, "10.10.1.4")
	b1 := l.task(n1, "b1", netB, "10.10.2.2")
	addAddr(t, a2.ns, "eth1", netip.MustParsePrefix("10.10.1.77/32"))
	addAddr(t, b1.ns, "eth1", netip.MustParsePrefix("10.10.1.50/32"))
	addRoute(t, b1, netA.Subnet)
	if ends != "" {
		for _, tk := range n1.tasks {
			setSysctl(t, n1.ns, "net/ipv4/conf/"+tk.ep.HostIfName+"/rp_filter", ends)
		}
	}
	l.apply(n1)
	l.apply(n2)
	at1 := listenUDP(t, a1.ns, "10.10.1.2:9000")
	at3 := listenUDP(t, a3.ns, "10.10.1.4:9000")

	// Real sources first, until both arrive, so that the spoofed packets
	// sent next would arrive too if nothing dropped them.
	eventually(t, "a2's own address reaches a1 and a3", func() error {
		sendUDP(t, a2.ns, "10.10.1.3", "10.10.1.2:9000", 1)
		sendUDP(t, a2.ns, "10.10.1.3", "10.10.1.4:9000", 1)
		if !at1.got("10.10.1.3") || !at3.got("10.10.1.3") {
			return fmt.Errorf("a1 got %v, a3 got %v", at1.sources(), at3.sources())
		}
		return nil
	})
	before := spoofDrops(t, n1)
	sendUDP(t, a2.ns, "10.10.1.77", "10.10.1.2:9000", 5)
	sendUDP(t, a2.ns, "10.10.1.77", "10.10.1.4:9000", 5)
	sendUDP(t, b1.ns, "10.10.1.50", "10.10.1.2:9000", 5)
	sendUDP(t, b1.ns, "10.10.2.2", "10.10.1.2:9000", 1) // b1's real address: isolation drops it
	eventually(t, "a2's own address still reaches a1 and a3", func() error {
		sendUDP(t, a2.ns, "10.10.1.3", "10.10.1.2:9000", 1)
		sendUDP(t, a2.ns, "10.10.1.3", "10.10.1.4:9000", 1)
		if c1, c3 := at1.count("10.10.1.3"), at3.count("10.10.1.3"); c1 < 2 || c3 < 2 {
			return fmt.Errorf("a1 got %v, a3 got %v", at1.sources(), at3.sources())
		}
		return nil
	})
	for _, u := range []*udpListener{at1, at3} {
		if u.got("10.10.1.77") || u.got("10.10.1.50") || u.got("10.10.2.2") {
			t.Errorf("a spoofed source got through: %v", u.sources())
		}
	}
	eventually(t, "the overlay's guard drops the 15 spoofed packets", func() error {
		if n := spoofDrops(t, n1) - before; n < 15 {
			return fmt.Errorf("%d dropped", n)
		}
		return nil
	})
}

// setSysctl writes a sysctl of ns (path under /proc/sys); /proc/sys/net is
// the namespace of the thread that opens it.
func setSysctl(t testing.TB, ns netns.NsHandle, path, value string) {
	t.Helper()
	if err := namespace.Run(ns, func() error {
		return os.WriteFile("/proc/sys/"+path, []byte(value+"\n"), 0o644)
	}); err != nil {
		t.Fatalf("sysctl %s=%s: %v", path, value, err)
	}
}

// spoofDrops reads the packet counter of the guard's drop rule on n; 0
// when there is none.
func spoofDrops(t *testing.T, n *node) uint64 {
	t.Helper()
	conn, err := nftables.New(nftables.WithNetNSFd(int(n.ns)))
	if err != nil {
		t.Fatalf("nftables: %v", err)
	}
	rules, err := conn.GetRules(&nftables.Table{Name: DefaultTable, Family: nftables.TableFamilyIPv4},
		&nftables.Chain{Name: chainGuard})
	if err != nil {
		return 0
	}
	for _, r := range rules {
		for _, e := range r.Exprs {
			if c, ok := e.(*expr.Counter); ok {
				return c.Packets
			}
		}
	}
	return 0
}

// addRoute routes dst through the task's gateway, as configureInside does.
func addRoute(t *testing.T, tk *task, dst netip.Prefix) {
	t.Helper()
	h := handleAt(t, tk.ns)
	eth := linkByName(t, h, tk.att.IfName)
	if err := h.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: ipNet(dst),
		Gw: tk.att.Gateway.AsSlice(), Flags: int(netlink.FLAG_ONLINK)}); err != nil {
		t.Fatalf("route %s in %s: %v", dst, tk.id, err)
	}
}

// udpListener records the source of every datagram it receives.
type udpListener struct {
	mu   sync.Mutex
	from []string
}

func listenUDP(t *testing.T, ns netns.NsHandle, addr string) *udpListener {
	t.Helper()
	var c net.PacketConn
	if err := namespace.Run(ns, func() (err error) { c, err = net.ListenPacket("udp4", addr); return err }); err != nil {
		t.Fatalf("listen on udp %s: %v", addr, err)
	}
	u := &udpListener{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			_, from, err := c.ReadFrom(buf)
			if err != nil {
				return // closed by cleanup
			}
			host, _, _ := net.SplitHostPort(from.String())
			u.mu.Lock()
			u.from = append(u.from, host)
			u.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return u
}

func (u *udpListener) got(src string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Contains(u.from, src)
}

func (u *udpListener) count(src string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, f := range u.from {
		if f == src {
			n++
		}
	}
	return n
}

func (u *udpListener) sources() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.from)
}

// sendUDP sends n datagrams from src (an address of the task's) to dst.
func sendUDP(t *testing.T, ns netns.NsHandle, src, dst string, n int) {
	t.Helper()
	var c net.PacketConn
	if err := namespace.Run(ns, func() (err error) { c, err = net.ListenPacket("udp4", src+":0"); return err }); err != nil {
		t.Fatalf("bind udp %s: %v", src, err)
	}
	defer c.Close()
	to, err := net.ResolveUDPAddr("udp4", dst)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := c.WriteTo([]byte("hello"), to); err != nil {
			t.Fatalf("send from %s to %s: %v", src, dst, err)
		}
	}
}
