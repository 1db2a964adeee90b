package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestSandboxesReachEachOtherAndTheGateway(t *testing.T) {
	l := newLab(t, "10.231.1.0/24")
	n := l.open()
	a := l.create(n, "task-a")
	b := l.create(n, "task-b")

	if a.IP == b.IP {
		t.Fatalf("both sandboxes got %s", a.IP)
	}
	gw := netip.MustParseAddr("10.231.1.1")
	for _, sb := range []Sandbox{a, b} {
		if !sb.Prefix.Contains(sb.IP) || sb.IP == gw || sb.Gateway != gw {
			t.Errorf("sandbox %s: ip %s prefix %s gateway %s", sb.ID, sb.IP, sb.Prefix, sb.Gateway)
		}
	}

	nsA, nsB := openNetNS(t, a.NetNSPath), openNetNS(t, b.NetNSPath)
	assertEth0(t, nsA, a)
	serveGreeting(t, nsA, a.IP.String()+":7000", "a")
	serveGreeting(t, nsB, b.IP.String()+":7000", "b")
	serveGreeting(t, l.ns, gw.String()+":7000", "host")
	serveGreeting(t, nsA, "127.0.0.1:7001", "a-loopback")

	expectReply(t, nsA, b.IP.String()+":7000", "b sees "+a.IP.String())
	expectReply(t, nsB, a.IP.String()+":7000", "a sees "+b.IP.String())
	expectReply(t, nsA, gw.String()+":7000", "host sees "+a.IP.String())
	expectReply(t, nsB, gw.String()+":7000", "host sees "+b.IP.String())
	expectReply(t, l.ns, a.IP.String()+":7000", "a sees "+gw.String())
	expectReply(t, nsA, "127.0.0.1:7001", "a-loopback sees 127.0.0.1")
}

// assertEth0 checks what a process in the sandbox would see with `ip addr`/`ip route`.
func assertEth0(t *testing.T, ns netns.NsHandle, sb Sandbox) {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink in sandbox: %v", err)
	}
	defer h.Close()
	eth, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatalf("sandbox has no eth0: %v", err)
	}
	if eth.Attrs().HardwareAddr.String() != sb.MAC.String() {
		t.Errorf("eth0 MAC %s, Sandbox.MAC %s", eth.Attrs().HardwareAddr, sb.MAC)
	}
	addrs, err := h.AddrList(eth, netlink.FAMILY_V4)
	if err != nil || len(addrs) != 1 || addrs[0].IPNet.String() != netip.PrefixFrom(sb.IP, sb.Prefix.Bits()).String() {
		t.Errorf("eth0 addresses %v (err %v), want %s/%d", addrs, err, sb.IP, sb.Prefix.Bits())
	}
	routes, err := h.RouteList(eth, netlink.FAMILY_V4)
	if err != nil {
		t.Fatalf("list routes: %v", err)
	}
	found := false
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.Equal(net.IP(sb.Gateway.AsSlice())) {
			found = true
		}
	}
	if !found {
		t.Errorf("no default route via %s in %v", sb.Gateway, routes)
	}
	links, err := h.LinkList()
	if err != nil {
		t.Fatalf("list links: %v", err)
	}
	if len(links) != 2 {
		t.Errorf("sandbox has %d links, want lo and eth0", len(links))
	}
	lo, err := h.LinkByName("lo")
	if err != nil || lo.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("lo is not up (err %v)", err)
	}
}

func TestAddressesAreAllocatedOnceAndReleasedOnRemove(t *testing.T) {
	l := newLab(t, "10.231.2.0/29") // .1 gateway, .2-.6 for sandboxes, .7 broadcast
	n := l.open()
	ctx := context.Background()

	seen := map[netip.Addr]string{}
	var sandboxes []Sandbox
	for _, id := range []string{"s1", "s2", "s3", "s4", "s5"} {
		sb := l.create(n, id)
		if other, dup := seen[sb.IP]; dup {
			t.Fatalf("%s got %s, already given to %s", id, sb.IP, other)
		}
		seen[sb.IP] = id
		sandboxes = append(sandboxes, sb)
	}
	again := l.create(n, "s3")
	if again.IP != sandboxes[2].IP || again.NetNSPath != sandboxes[2].NetNSPath {
		t.Errorf("second CreateSandbox(s3) = %+v, want the first one %+v", again, sandboxes[2])
	}

	_, err := n.CreateSandbox(ctx, "s6")
	var unavailable interface{ Unavailable() bool }
	if !errors.As(err, &unavailable) {
		t.Fatalf("CreateSandbox in a full subnet: err %v, want an Unavailable error", err)
	}

	freed := sandboxes[1]
	if err := n.RemoveSandbox(ctx, freed.ID); err != nil {
		t.Fatalf("RemoveSandbox: %v", err)
	}
	if _, ok := n.Sandbox(freed.ID); ok {
		t.Error("removed sandbox is still listed")
	}
	if _, err := os.Stat(freed.NetNSPath); !os.IsNotExist(err) {
		t.Errorf("netns mount %s still there (stat err %v)", freed.NetNSPath, err)
	}
	if _, ok := l.links()[hostVethName(l.cfg.BridgeName, freed.ID)]; ok {
		t.Error("host veth of removed sandbox still exists")
	}
	if err := n.RemoveSandbox(ctx, freed.ID); err != nil {
		t.Errorf("second RemoveSandbox: %v", err)
	}

	s6 := l.create(n, "s6")
	if s6.IP != freed.IP {
		t.Errorf("new sandbox got %s, want the released %s", s6.IP, freed.IP)
	}
}

func TestCreateSandboxRejectsBadIDs(t *testing.T) {
	l := newLab(t, "10.231.3.0/24")
	n := l.open()
	for _, id := range []string{"", "..", "a/b"} {
		_, err := n.CreateSandbox(context.Background(), id)
		var invalid interface{ InvalidParameter() bool }
		if !errors.As(err, &invalid) {
			t.Errorf("CreateSandbox(%q): err %v, want InvalidParameter", id, err)
		}
	}
}

func TestConcurrentSandboxesGetDistinctAddresses(t *testing.T) {
	l := newLab(t, "10.231.11.0/24")
	n := l.open()
	ctx := context.Background()

	// The goroutines run on threads outside the lab's namespace: the Network must
	// still act in the namespace it was created in.
	const count = 8
	results := make(chan Sandbox, count)
	errs := make(chan error, count)
	for i := range count {
		go func() {
			sb, err := n.CreateSandbox(ctx, fmt.Sprintf("c%d", i))
			if err != nil {
				errs <- err
				return
			}
			if _, err := n.PublishPorts(ctx, sb.ID, []PortMapping{{ContainerPort: 80}}); err != nil {
				errs <- err
				return
			}
			results <- sb
		}()
	}
	ips := map[netip.Addr]bool{}
	for range count {
		select {
		case err := <-errs:
			t.Fatalf("concurrent create: %v", err)
		case sb := <-results:
			if ips[sb.IP] {
				t.Fatalf("address %s handed out twice", sb.IP)
			}
			ips[sb.IP] = true
		}
	}
	hostPorts := map[uint16]bool{}
	for i := range count {
		ports, _ := n.Ports(fmt.Sprintf("c%d", i))
		if len(ports) != 1 || hostPorts[ports[0].HostPort] {
			t.Fatalf("sandbox c%d ports %+v: want one host port of its own", i, ports)
		}
		hostPorts[ports[0].HostPort] = true
	}
	if got := len(l.rules(chainPublished)); got != count {
		t.Errorf("%d DNAT rules, want %d", got, count)
	}

	done := make(chan error, count)
	for i := range count {
		go func() { done <- n.RemoveSandbox(ctx, fmt.Sprintf("c%d", i)) }()
	}
	for range count {
		if err := <-done; err != nil {
			t.Errorf("concurrent remove: %v", err)
		}
	}
	if got := len(l.rules(chainPublished)); got != 0 {
		t.Errorf("%d DNAT rules left after removing every sandbox", got)
	}
	for name, kind := range l.links() {
		if kind == "veth" {
			t.Errorf("veth %s left after removing every sandbox", name)
		}
	}
}

func TestNetNSPathWorksWithNsenter(t *testing.T) {
	l := newLab(t, "10.231.12.0/24")
	n := l.open()
	sb := l.create(n, "tool")
	out, err := exec.Command("nsenter", "--net="+sb.NetNSPath, "ip", "-4", "-o", "addr", "show", "dev", "eth0").CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter: %v: %s", err, out)
	}
	if want := netip.PrefixFrom(sb.IP, sb.Prefix.Bits()).String(); !strings.Contains(string(out), want) {
		t.Errorf("ip addr in the sandbox says %q, want %s", out, want)
	}
}
