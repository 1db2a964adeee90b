package dns

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fixture is a cluster's names on two networks: "front" has a VIP service web with
// an alias and three tasks, and a dnsrr service rr with two; "back" has a service db
// and another web.
func fixture() Records {
	a := netip.MustParseAddr
	return Records{
		"front": {
			"web":       {a("10.0.1.2")},
			"webalias":  {a("10.0.1.2")},
			"tasks.web": {a("10.0.1.5"), a("10.0.1.6"), a("10.0.1.7")},
			"web.1.aaa": {a("10.0.1.5")},
			"web.2.bbb": {a("10.0.1.6")},
			"web.3.ccc": {a("10.0.1.7")},
			"rr":        {a("10.0.1.10"), a("10.0.1.11")},
			"tasks.rr":  {a("10.0.1.10"), a("10.0.1.11")},
			"rr.1.ddd":  {a("10.0.1.10")},
			"rr.2.eee":  {a("10.0.1.11")},
		},
		"back": {
			"db":        {a("10.0.2.2")},
			"tasks.db":  {a("10.0.2.5")},
			"db.1.fff":  {a("10.0.2.5")},
			"web":       {a("10.0.2.3")},
			"tasks.web": {a("10.0.2.6")},
		},
	}
}

func query(name string, qtype uint16) *dns.Msg {
	return new(dns.Msg).SetQuestion(name, qtype)
}

// addrsOf returns the A records of resp, sorted.
func addrsOf(t *testing.T, resp *dns.Msg) []netip.Addr {
	t.Helper()
	var out []netip.Addr
	for _, rr := range resp.Answer {
		a, ok := rr.(*dns.A)
		if !ok {
			t.Fatalf("answer %v is not an A record", rr)
		}
		addr, ok := netip.AddrFromSlice(a.A)
		if !ok {
			t.Fatalf("bad address in %v", rr)
		}
		out = append(out, addr.Unmap())
	}
	sortAddrs(out)
	return out
}

func sortAddrs(s []netip.Addr) { slices.SortFunc(s, netip.Addr.Compare) }

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	sortAddrs(out)
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, within, err)
		}
		<-tick.C
	}
}
