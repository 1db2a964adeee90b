package dns

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestForward(t *testing.T) {
	up := startUpstream(t, 0)
	refusing := startUpstream(t, dns.RcodeRefused)
	tests := []struct {
		name      string
		upstreams []netip.AddrPort
		networks  []string
		qname     string
		rcode     int
		want      int // number of A records
		wantAddr  netip.Addr
	}{
		{name: "unknown name", upstreams: []netip.AddrPort{up.addr}, networks: []string{"front"},
			qname: externalName, want: 1, wantAddr: externalAddr},
		{name: "service name of a network not attached resolves outside", upstreams: []netip.AddrPort{up.addr},
			networks: []string{"elsewhere"}, qname: "web.", want: 1, wantAddr: collisionWeb},
		{name: "upstream NXDOMAIN passed on", upstreams: []netip.AddrPort{up.addr}, networks: []string{"front"},
			qname: "nowhere.test.", rcode: dns.RcodeNameError},
		{name: "truncated over UDP, asked again over TCP", upstreams: []netip.AddrPort{up.addr},
			networks: []string{"front"}, qname: bigName, want: 100},
		{name: "dead upstream passed over", upstreams: []netip.AddrPort{deadUpstream(t), up.addr},
			networks: []string{"front"}, qname: externalName, want: 1, wantAddr: externalAddr},
		{name: "REFUSED passed over", upstreams: []netip.AddrPort{refusing.addr, up.addr},
			networks: []string{"front"}, qname: externalName, want: 1, wantAddr: externalAddr},
		{name: "SERVFAIL passed over, and returned when nothing better", upstreams: []netip.AddrPort{up.addr, deadUpstream(t)},
			networks: []string{"front"}, qname: failName, rcode: dns.RcodeServerFailure},
		{name: "only REFUSED", upstreams: []netip.AddrPort{refusing.addr},
			networks: []string{"front"}, qname: externalName, rcode: dns.RcodeRefused},
		{name: "none answers", upstreams: []netip.AddrPort{deadUpstream(t), silentUpstream(t)},
			networks: []string{"front"}, qname: externalName, rcode: dns.RcodeServerFailure},
		{name: "no upstream", upstreams: []netip.AddrPort{}, networks: []string{"front"},
			qname: externalName, rcode: dns.RcodeServerFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, Config{Upstreams: tt.upstreams, ForwardTimeout: 300 * time.Millisecond})
			req := query(tt.qname, dns.TypeA)
			resp := s.resolve(context.Background(), tt.networks, req)
			if resp.Id != req.Id || resp.Rcode != tt.rcode || len(resp.Answer) != tt.want {
				t.Fatalf("reply ID %d rcode %s with %d answers; want ID %d rcode %s with %d",
					resp.Id, dns.RcodeToString[resp.Rcode], len(resp.Answer),
					req.Id, dns.RcodeToString[tt.rcode], tt.want)
			}
			if resp.Truncated {
				t.Fatal("reply truncated")
			}
			if tt.wantAddr.IsValid() {
				if got := addrsOf(t, resp); got[0] != tt.wantAddr {
					t.Fatalf("address %v, want %v", got[0], tt.wantAddr)
				}
			}
		})
	}
}

// Beyond its bound the server fails queries at once instead of queueing them.
func TestForwardBound(t *testing.T) {
	up := startUpstream(t, 0)
	s := newServer(t, Config{Upstreams: []netip.AddrPort{up.addr}, MaxForwards: 1})
	first := make(chan *dns.Msg, 1)
	go func() { first <- s.resolve(context.Background(), nil, query(slowName, dns.TypeA)) }()
	select {
	case <-up.held:
	case <-time.After(5 * time.Second):
		t.Fatal("the first query did not reach the upstream")
	}
	start := time.Now()
	resp := s.resolve(context.Background(), nil, query(externalName, dns.TypeA))
	if resp.Rcode != dns.RcodeServerFailure {
		t.Fatalf("second query while the slot is taken: %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("second query failed after %v, want at once", d)
	}
	if resp := s.resolve(context.Background(), []string{"front"}, query("web.", dns.TypeA)); len(resp.Answer) != 1 {
		t.Fatalf("a local name while forwards are at their bound: %v, want answered", resp)
	}
	up.releaseAll()
	if resp := <-first; resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Fatalf("held query: %v, want its answer", resp)
	}
	if resp := s.resolve(context.Background(), nil, query(externalName, dns.TypeA)); resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("query after the slot came back: %s", dns.RcodeToString[resp.Rcode])
	}
}

// A cancelled forward gives up at once rather than waiting out the timeout.
func TestForwardCancel(t *testing.T) {
	s := newServer(t, Config{Upstreams: []netip.AddrPort{silentUpstream(t)}, ForwardTimeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *dns.Msg, 1)
	go func() { done <- s.resolve(ctx, nil, query(externalName, dns.TypeA)) }()
	cancel()
	select {
	case resp := <-done:
		if resp.Rcode != dns.RcodeServerFailure {
			t.Fatalf("cancelled forward: %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled forward still waits")
	}
}

// Over UDP a reply fits the client's buffer: 512 bytes without EDNS, with TC set,
// its EDNS size with it; over TCP it is whole.
func TestRespondSizes(t *testing.T) {
	s := newServer(t, Config{})
	big := Records{"front": {"tasks.many": make([]netip.Addr, 100)}}
	for i := range big["front"]["tasks.many"] {
		big["front"]["tasks.many"][i] = netip.AddrFrom4([4]byte{10, 0, 3, byte(i)})
	}
	s.Table().Replace(big)
	plain, _ := query("tasks.many.", dns.TypeA).Pack()
	withEDNS := query("tasks.many.", dns.TypeA).SetEdns0(4096, false)
	ednsRaw, _ := withEDNS.Pack()
	tests := []struct {
		name      string
		raw       []byte
		udp       bool
		truncated bool
		answers   int
	}{
		{"udp", plain, true, true, -1},
		{"udp with edns", ednsRaw, true, false, 100},
		{"tcp", plain, false, false, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := s.respond(context.Background(), []string{"front"}, tt.raw, tt.udp)
			resp := new(dns.Msg)
			if err := resp.Unpack(out); err != nil {
				t.Fatalf("unpack reply: %v", err)
			}
			if resp.Truncated != tt.truncated {
				t.Fatalf("TC %v, want %v", resp.Truncated, tt.truncated)
			}
			if tt.udp && tt.truncated && len(out) > dns.MinMsgSize {
				t.Fatalf("reply of %d bytes over UDP without EDNS", len(out))
			}
			if tt.answers >= 0 && len(resp.Answer) != tt.answers {
				t.Fatalf("%d answers, want %d", len(resp.Answer), tt.answers)
			}
		})
	}
}

func TestAnswerUnknownSandbox(t *testing.T) {
	s := newServer(t, Config{})
	if resp := s.Answer(context.Background(), "nobody", query("web.", dns.TypeA)); resp.Rcode != dns.RcodeRefused {
		t.Fatalf("query from a sandbox not served: %s, want REFUSED", dns.RcodeToString[resp.Rcode])
	}
	if err := s.SetNetworks("nobody", []string{"front"}); err == nil {
		t.Fatal("SetNetworks of a sandbox not served succeeded")
	}
	if err := s.Stop("nobody"); err != nil {
		t.Fatalf("Stop of a sandbox not served: %v", err)
	}
}
