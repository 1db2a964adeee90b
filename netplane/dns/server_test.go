package dns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/shoal-project/shoal/netplane/namespace"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// newSandboxNS makes a network namespace with loopback up, as a task's, and returns
// a path to it; the namespace goes when the test ends and the server's sockets in it
// are closed.
func newSandboxNS(t testing.TB) (string, netns.NsHandle) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: it creates network namespaces")
	}
	type made struct {
		ns  netns.NsHandle
		err error
	}
	c := make(chan made, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			c <- made{err: err}
			return
		}
		defer orig.Close()
		ns, err := netns.New() // the thread is in it now
		if err := netns.Set(orig); err != nil {
			c <- made{ns: ns, err: fmt.Errorf("return to netns: %w", err)}
			return // the thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		c <- made{ns: ns, err: err}
	}()
	m := <-c
	if m.err != nil {
		if m.ns.IsOpen() {
			m.ns.Close()
		}
		t.Fatalf("new netns: %v", m.err)
	}
	t.Cleanup(func() { m.ns.Close() })
	h, err := netlink.NewHandleAt(m.ns)
	if err != nil {
		t.Fatalf("netlink: %v", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("set lo up: %v", err)
	}
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(m.ns)), m.ns
}

// ask sends one query to 127.0.0.11:53 from inside ns over network (udp or tcp).
func ask(ns netns.NsHandle, network, name string, qtype uint16) (*dns.Msg, error) {
	var resp *dns.Msg
	var qerr error
	err := namespace.Run(ns, func() error {
		c := &dns.Client{Net: network, Timeout: 2 * time.Second}
		resp, _, qerr = c.Exchange(query(name, qtype), Address+":53")
		return nil
	})
	return resp, errors.Join(err, qerr)
}

// mustAsk is ask that fails the test on an error or a reply other than NOERROR.
func mustAsk(t *testing.T, ns netns.NsHandle, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	resp, err := ask(ns, network, name, qtype)
	if err != nil {
		t.Fatalf("%s query %s from the sandbox: %v", network, name, err)
	}
	if resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("%s query %s from the sandbox: %s", network, name, dns.RcodeToString[resp.Rcode])
	}
	return resp
}

func wantAddrs(t *testing.T, resp *dns.Msg, want []netip.Addr) {
	t.Helper()
	got := addrsOf(t, resp)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: addresses %v, want %v", resp.Question[0].Name, got, want)
	}
}

// A sandbox's namespace gets the Table's answers over UDP and TCP at 127.0.0.11:53,
// the upstream's for other names; Stop closes the sockets and leaves no goroutine.
func TestServeInNetNS(t *testing.T) {
	up := startUpstream(t, 0)
	s := newServer(t, Config{Upstreams: []netip.AddrPort{up.addr}})
	path, ns := newSandboxNS(t)
	otherPath, otherNS := newSandboxNS(t)
	before := runtime.NumGoroutine()

	ctx := context.Background()
	if err := s.Serve(ctx, "sb1", path, []string{"front"}); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if err := s.Serve(ctx, "sb2", otherPath, []string{"back"}); err != nil {
		t.Fatalf("Serve a second sandbox: %v", err)
	}
	if err := s.Serve(ctx, "sb1", path, nil); err == nil {
		t.Fatal("Serve of a sandbox already served succeeded")
	}

	for _, network := range []string{"udp", "tcp"} {
		wantAddrs(t, mustAsk(t, ns, network, "web.", dns.TypeA), addrs("10.0.1.2"))
		wantAddrs(t, mustAsk(t, ns, network, "tasks.web.", dns.TypeA), addrs("10.0.1.5", "10.0.1.6", "10.0.1.7"))
		wantAddrs(t, mustAsk(t, ns, network, externalName, dns.TypeA), []netip.Addr{externalAddr})
		if resp := mustAsk(t, ns, network, "web.", dns.TypeAAAA); len(resp.Answer) != 0 {
			t.Fatalf("%s AAAA web.: %v, want no answer", network, resp.Answer)
		}
		resp := mustAsk(t, ns, network, "7.1.0.10.in-addr.arpa.", dns.TypePTR)
		if len(resp.Answer) != 1 || resp.Answer[0].(*dns.PTR).Ptr != "web.3.ccc." {
			t.Fatalf("%s PTR of a task: %v, want web.3.ccc.", network, resp.Answer)
		}
		// The same name is another service's in the other sandbox's network.
		wantAddrs(t, mustAsk(t, otherNS, network, "web.", dns.TypeA), addrs("10.0.2.3"))
	}
	// 100 addresses do not fit 512 bytes: truncated over UDP, whole over TCP.
	if resp := mustAsk(t, ns, "udp", bigName, dns.TypeA); !resp.Truncated {
		t.Fatalf("UDP answer of 100 addresses: %d records, not truncated", len(resp.Answer))
	}
	if resp := mustAsk(t, ns, "tcp", bigName, dns.TypeA); len(resp.Answer) != 100 {
		t.Fatalf("TCP answer of 100 addresses: %d records", len(resp.Answer))
	}

	// db is back's: forwarded (the upstream does not know it) until sb1 joins back.
	if resp, err := ask(ns, "udp", "db.", dns.TypeA); err != nil || resp.Rcode != dns.RcodeNameError {
		t.Fatalf("db. from a sandbox not on back: %v, %v; want the upstream's NXDOMAIN", resp, err)
	}
	if err := s.SetNetworks("sb1", []string{"front", "back"}); err != nil {
		t.Fatalf("SetNetworks: %v", err)
	}
	wantAddrs(t, mustAsk(t, ns, "udp", "db.", dns.TypeA), addrs("10.0.2.2"))

	for _, id := range []string{"sb1", "sb2"} {
		if err := s.Stop(id); err != nil {
			t.Fatalf("Stop %s: %v", id, err)
		}
	}
	for _, network := range []string{"udp", "tcp"} {
		if resp, err := ask(ns, network, "web.", dns.TypeA); err == nil {
			t.Fatalf("%s query after Stop answered: %v", network, resp)
		}
	}
	waitFor(t, 5*time.Second, "goroutines back to their number before Serve", func() error {
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Errorf("%d goroutines, %d before Serve", n, before)
		}
		return nil
	})
}

// A forward in flight ends when its sandbox stops; Close stops every sandbox and
// Serve fails afterwards.
func TestStopEndsForwardsAndClose(t *testing.T) {
	up := startUpstream(t, 0)
	s := newServer(t, Config{Upstreams: []netip.AddrPort{up.addr}, ForwardTimeout: time.Minute})
	path, ns := newSandboxNS(t)
	before := runtime.NumGoroutine()
	if err := s.Serve(context.Background(), "sb", path, []string{"front"}); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	asked := make(chan error, 1)
	go func() {
		_, err := ask(ns, "udp", slowName, dns.TypeA)
		asked <- err
	}()
	select {
	case <-up.held:
	case <-time.After(5 * time.Second):
		t.Fatal("the query did not reach the upstream")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- s.Close() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close waits for a forward in flight")
	}
	if err := <-asked; err == nil {
		t.Fatal("the held query was answered after its sandbox stopped")
	}
	if err := s.Serve(context.Background(), "sb", path, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Serve after Close: %v, want ErrClosed", err)
	}
	up.releaseAll()
	waitFor(t, 5*time.Second, "goroutines back to their number before Serve", func() error {
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Errorf("%d goroutines, %d before Serve", n, before)
		}
		return nil
	})
}
