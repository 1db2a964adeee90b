package bridge

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/netplane/namespace"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// lab is one test's private world: the test goroutine's thread is moved into a fresh
// network namespace that plays the host, so the real host's links and firewall are
// neither seen nor touched.
type lab struct {
	t   *testing.T
	ns  netns.NsHandle // the lab's "host" namespace
	cfg Config
}

// newLab enters a fresh network namespace for the rest of the test and builds a
// Config with names unique to the test. Tests using it must not call t.Parallel or
// t.Run: the namespace belongs to the test goroutine's thread.
func newLab(t *testing.T, subnet string) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("these tests need root: they create namespaces, links and nftables tables")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("get netns: %v", err)
	}
	ns, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("new netns: %v", err)
	}
	t.Cleanup(func() {
		ns.Close()
		err := netns.Set(orig)
		orig.Close()
		if err != nil {
			t.Errorf("return to original netns: %v", err) // thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
	})

	sum := sha256.Sum256([]byte(t.Name()))
	tag := hex.EncodeToString(sum[:])[:8]
	dir := t.TempDir()
	l := &lab{t: t, ns: ns, cfg: Config{
		StateDir:   filepath.Join(dir, "state"),
		NetNSDir:   filepath.Join(dir, "netns"),
		BridgeName: "sb" + tag,
		Subnet:     netip.MustParsePrefix(subnet),
		TableName:  "shoaltest_" + tag,
	}}
	// Runs after the Network's own cleanup: whatever a failed test left mounted.
	t.Cleanup(func() { unmountAll(t, l.cfg.NetNSDir) })
	l.linkUp("lo")
	// Bridged traffic must not need br_netfilter: edge kernels often lack it. The
	// sysctl is per namespace, and this thread is in the lab's.
	const brnf = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	if _, err := os.Stat(brnf); err == nil {
		if err := os.WriteFile(brnf, []byte("0\n"), 0o644); err != nil {
			t.Fatalf("turn off br_netfilter in the lab: %v", err)
		}
	}
	return l
}

// open runs New in the lab and closes the Network when the test ends.
func (l *lab) open() *Network {
	l.t.Helper()
	n, err := New(context.Background(), l.cfg)
	if err != nil {
		l.t.Fatalf("New: %v", err)
	}
	l.t.Cleanup(func() { _ = n.Close() })
	return n
}

// create makes a sandbox or fails the test.
func (l *lab) create(n *Network, id string) Sandbox {
	l.t.Helper()
	sb, err := n.CreateSandbox(context.Background(), id)
	if err != nil {
		l.t.Fatalf("CreateSandbox(%s): %v", id, err)
	}
	return sb
}

func (l *lab) linkUp(name string) {
	l.t.Helper()
	h, err := netlink.NewHandleAt(l.ns)
	if err != nil {
		l.t.Fatalf("netlink: %v", err)
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	if err == nil {
		err = h.LinkSetUp(link)
	}
	if err != nil {
		l.t.Fatalf("set %s up: %v", name, err)
	}
}

// links returns the names of the links in the lab's host namespace.
func (l *lab) links() map[string]string {
	l.t.Helper()
	h, err := netlink.NewHandleAt(l.ns)
	if err != nil {
		l.t.Fatalf("netlink: %v", err)
	}
	defer h.Close()
	all, err := h.LinkList()
	if err != nil {
		l.t.Fatalf("list links: %v", err)
	}
	names := map[string]string{}
	for _, link := range all {
		names[link.Attrs().Name] = link.Type()
	}
	return names
}

func unmountAll(t *testing.T, dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if isNetNSMount(p) {
			if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
				t.Errorf("unmount leftover %s: %v", p, err)
			}
		}
	}
}

// openNetNS opens a sandbox's namespace for the duration of the test.
func openNetNS(t *testing.T, path string) netns.NsHandle {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatalf("open netns %s: %v", path, err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// serveGreeting listens on addr inside ns and answers every connection with one line,
// "<name> sees <remote address>", so callers learn both who answered and which source
// address arrived.
func serveGreeting(t *testing.T, ns netns.NsHandle, addr, name string) net.Addr {
	t.Helper()
	var ln net.Listener
	err := namespace.Run(ns, func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, name, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // listener closed by cleanup
			}
			remote, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "%s sees %s\n", name, remote)
			c.Close()
		}
	}()
	return ln.Addr()
}

// ask connects to addr from inside ns and returns the line the server sent.
func ask(ns netns.NsHandle, addr string) (string, error) {
	var line string
	err := namespace.Run(ns, func() error {
		c, err := net.DialTimeout("tcp4", addr, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		line, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	return strings.TrimSpace(line), err
}

// eventually polls check until it succeeds or ten seconds pass.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// expectReply asks addr from ns until the reply is want.
func expectReply(t *testing.T, ns netns.NsHandle, addr, want string) {
	t.Helper()
	eventually(t, "connect to "+addr, func() error {
		got, err := ask(ns, addr)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("reply %q, want %q", got, want)
		}
		return nil
	})
}

// newOutside makes a namespace linked to the lab's host by a veth, with hostAddr on
// the lab's side and outsideAddr on the other, and returns it.
func newOutside(t *testing.T, l *lab, hostAddr, outsideAddr netip.Prefix) netns.NsHandle {
	t.Helper()
	var outside netns.NsHandle
	err := namespace.Run(l.ns, func() error {
		var err error
		outside, err = netns.New() // the thread now sits in outside; namespace.Run takes it back
		return err
	})
	if err != nil {
		t.Fatalf("create outside netns: %v", err)
	}
	t.Cleanup(func() { outside.Close() })

	h, err := netlink.NewHandleAt(l.ns)
	if err != nil {
		t.Fatalf("netlink: %v", err)
	}
	defer h.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "uplink"}, PeerName: "wan",
		PeerNamespace: netlink.NsFd(int(outside))}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatalf("add uplink veth: %v", err)
	}
	configure := func(h *netlink.Handle, name string, addr netip.Prefix) {
		link, err := h.LinkByName(name)
		if err == nil {
			err = h.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), 32)}})
		}
		if err == nil {
			err = h.LinkSetUp(link)
		}
		if err != nil {
			t.Fatalf("configure %s: %v", name, err)
		}
	}
	configure(h, "uplink", hostAddr)
	oh, err := netlink.NewHandleAt(outside)
	if err != nil {
		t.Fatalf("netlink in outside: %v", err)
	}
	defer oh.Close()
	configure(oh, "wan", outsideAddr)
	return outside
}

// nft returns an nftables connection to the lab's host namespace.
func (l *lab) nft() *nftables.Conn {
	l.t.Helper()
	conn, err := nftables.New(nftables.WithNetNSFd(int(l.ns)))
	if err != nil {
		l.t.Fatalf("nftables: %v", err)
	}
	return conn
}

// rules lists the rules of one chain of the lab's table.
func (l *lab) rules(chain string) []*nftables.Rule {
	l.t.Helper()
	table := &nftables.Table{Name: l.cfg.TableName, Family: nftables.TableFamilyIPv4}
	rules, err := l.nft().GetRules(table, &nftables.Chain{Name: chain, Table: table})
	if err != nil {
		l.t.Fatalf("list rules of %s: %v", chain, err)
	}
	return rules
}
