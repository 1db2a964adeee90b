package dns

import (
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Names the fake upstream answers.
const (
	externalName = "example.test."
	bigName      = "big.test."  // 100 addresses: truncated over UDP
	slowName     = "slow.test." // held until the test releases it
	failName     = "fail.test." // SERVFAIL
)

var (
	externalAddr = netip.MustParseAddr("192.0.2.7")
	collisionWeb = netip.MustParseAddr("192.0.2.80") // "web." outside the cluster
)

// upstream is a fake resolver of the node on host loopback, serving UDP and TCP on
// one port.
type upstream struct {
	addr    netip.AddrPort
	held    chan string   // names of queries being held
	release chan struct{} // closed to answer held queries
	rcode   int           // when not zero, every answer has it
}

// startUpstream runs an upstream until the test ends.
func startUpstream(t *testing.T, rcode int) *upstream {
	t.Helper()
	u := &upstream{held: make(chan string, 16), release: make(chan struct{}), rcode: rcode}
	pc, l := listenPair(t)
	u.addr = netip.MustParseAddrPort(pc.LocalAddr().String())
	servers := []*dns.Server{
		{PacketConn: pc, Handler: dns.HandlerFunc(u.serve)},
		{Listener: l, Handler: dns.HandlerFunc(u.serve)},
	}
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = srv.ActivateAndServe()
		}()
	}
	t.Cleanup(func() {
		u.releaseAll()
		for _, srv := range servers {
			_ = srv.Shutdown()
		}
		wg.Wait()
	})
	return u
}

func (u *upstream) releaseAll() {
	select {
	case <-u.release:
	default:
		close(u.release)
	}
}

func (u *upstream) serve(w dns.ResponseWriter, req *dns.Msg) {
	resp := new(dns.Msg)
	resp.SetReply(req)
	q := req.Question[0]
	switch {
	case u.rcode != 0:
		resp.Rcode = u.rcode
	case q.Name == slowName:
		u.held <- q.Name
		<-u.release
		resp.Answer = append(resp.Answer, aRR(q.Name, externalAddr))
	case q.Name == failName:
		resp.Rcode = dns.RcodeServerFailure
	case q.Name == externalName:
		resp.Answer = append(resp.Answer, aRR(q.Name, externalAddr))
	case q.Name == "web.":
		resp.Answer = append(resp.Answer, aRR(q.Name, collisionWeb))
	case q.Name == bigName:
		for i := range 100 {
			resp.Answer = append(resp.Answer, aRR(q.Name, netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})))
		}
	default:
		resp.Rcode = dns.RcodeNameError
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		resp.Truncate(udpLimit(req))
	}
	_ = w.WriteMsg(resp)
}

func aRR(name string, a netip.Addr) dns.RR {
	return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: a.AsSlice()}
}

// listenPair binds UDP and TCP on one free port of 127.0.0.1.
func listenPair(t *testing.T) (net.PacketConn, net.Listener) {
	t.Helper()
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen udp: %v", err)
		}
		l, err := net.Listen("tcp4", pc.LocalAddr().String())
		if err == nil {
			return pc, l
		}
		pc.Close()
		lastErr = err
	}
	t.Fatalf("no port free for both udp and tcp: %v", lastErr)
	return nil, nil
}

// deadUpstream is a port of 127.0.0.1 where nothing listens: queries to it are
// refused at once.
func deadUpstream(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, l := listenPair(t)
	addr := netip.MustParseAddrPort(pc.LocalAddr().String())
	pc.Close()
	l.Close()
	return addr
}

// silentUpstream reads queries and never answers, until the test ends.
func silentUpstream(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, l := listenPair(t)
	t.Cleanup(func() { pc.Close(); l.Close() })
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

// newServer makes a Server with the fixture's Table and the given upstreams.
func newServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Upstreams == nil {
		cfg.Upstreams = []netip.AddrPort{}
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	s.Table().Replace(fixture())
	return s
}
