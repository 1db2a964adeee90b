package dns

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

func TestAnswer(t *testing.T) {
	var table Table
	table.Replace(fixture())
	v := table.current()
	front := []string{"front"}
	tests := []struct {
		name     string
		networks []string
		qname    string
		qtype    uint16
		forward  bool         // not the Table's: nil answer
		want     []netip.Addr // A records, any order
		ptr      string       // the PTR answer, when qtype is PTR
	}{
		{name: "service VIP", networks: front, qname: "web.", qtype: dns.TypeA, want: addrs("10.0.1.2")},
		{name: "alias", networks: front, qname: "webalias.", qtype: dns.TypeA, want: addrs("10.0.1.2")},
		{name: "tasks of a VIP service", networks: front, qname: "tasks.web.", qtype: dns.TypeA,
			want: addrs("10.0.1.5", "10.0.1.6", "10.0.1.7")},
		{name: "task name", networks: front, qname: "web.2.bbb.", qtype: dns.TypeA, want: addrs("10.0.1.6")},
		{name: "dnsrr service", networks: front, qname: "rr.", qtype: dns.TypeA, want: addrs("10.0.1.10", "10.0.1.11")},
		{name: "upper case", networks: front, qname: "WeB.", qtype: dns.TypeA, want: addrs("10.0.1.2")},
		{name: "no trailing dot", networks: front, qname: "tasks.rr", qtype: dns.TypeA, want: addrs("10.0.1.10", "10.0.1.11")},
		{name: "ANY as A", networks: front, qname: "web.", qtype: dns.TypeANY, want: addrs("10.0.1.2")},
		{name: "AAAA of a known name is empty", networks: front, qname: "web.", qtype: dns.TypeAAAA},
		{name: "MX of a known name is empty", networks: front, qname: "web.", qtype: dns.TypeMX},
		{name: "AAAA of an unknown name", networks: front, qname: "nowhere.", qtype: dns.TypeAAAA, forward: true},
		{name: "unknown name", networks: front, qname: "nowhere.", qtype: dns.TypeA, forward: true},
		{name: "name on a network not attached", networks: front, qname: "db.", qtype: dns.TypeA, forward: true},
		{name: "no network", networks: nil, qname: "web.", qtype: dns.TypeA, forward: true},
		{name: "unknown network", networks: []string{"gone"}, qname: "web.", qtype: dns.TypeA, forward: true},
		{name: "first network wins", networks: []string{"back", "front"}, qname: "web.", qtype: dns.TypeA, want: addrs("10.0.2.3")},
		{name: "first network wins, other order", networks: []string{"front", "back"}, qname: "web.", qtype: dns.TypeA, want: addrs("10.0.1.2")},
		{name: "second network answers", networks: []string{"front", "back"}, qname: "db.", qtype: dns.TypeA, want: addrs("10.0.2.2")},
		{name: "PTR of a task", networks: front, qname: "5.1.0.10.in-addr.arpa.", qtype: dns.TypePTR, ptr: "web.1.aaa."},
		{name: "PTR of a dnsrr task", networks: front, qname: "11.1.0.10.in-addr.arpa.", qtype: dns.TypePTR, ptr: "rr.2.eee."},
		{name: "PTR of a VIP", networks: front, qname: "2.1.0.10.in-addr.arpa.", qtype: dns.TypePTR, ptr: "web."},
		{name: "PTR upper case", networks: front, qname: "6.1.0.10.IN-ADDR.ARPA.", qtype: dns.TypePTR, ptr: "web.2.bbb."},
		{name: "PTR on a network not attached", networks: front, qname: "2.2.0.10.in-addr.arpa.", qtype: dns.TypePTR, forward: true},
		{name: "PTR of an unknown address", networks: front, qname: "9.9.0.10.in-addr.arpa.", qtype: dns.TypePTR, forward: true},
		{name: "PTR of a reverse zone", networks: front, qname: "1.0.10.in-addr.arpa.", qtype: dns.TypePTR, forward: true},
		{name: "PTR of a name", networks: front, qname: "web.", qtype: dns.TypePTR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := query(tt.qname, tt.qtype)
			resp := answer(v, tt.networks, req)
			if tt.forward {
				if resp != nil {
					t.Fatalf("answered %v, want it forwarded", resp)
				}
				return
			}
			if resp == nil {
				t.Fatal("forwarded, want an answer")
			}
			if resp.Rcode != dns.RcodeSuccess || !resp.Response || resp.Id != req.Id || resp.Authoritative {
				t.Fatalf("header %+v, want a non-authoritative NOERROR response to ID %d", resp.MsgHdr, req.Id)
			}
			for _, rr := range resp.Answer {
				if rr.Header().Name != tt.qname || rr.Header().Ttl != ttl {
					t.Errorf("record %v: want name %q and TTL %d", rr, tt.qname, ttl)
				}
			}
			if tt.ptr != "" {
				if len(resp.Answer) != 1 {
					t.Fatalf("answers %v, want one PTR", resp.Answer)
				}
				if p, ok := resp.Answer[0].(*dns.PTR); !ok || p.Ptr != tt.ptr {
					t.Fatalf("answer %v, want PTR %s", resp.Answer[0], tt.ptr)
				}
				return
			}
			got := addrsOf(t, resp)
			if len(got) != len(tt.want) {
				t.Fatalf("addresses %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("addresses %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// Every answer holds the whole set, and the order changes between answers, so that
// clients taking the first address spread over the tasks.
func TestAnswerShuffles(t *testing.T) {
	var table Table
	table.Replace(fixture())
	v := table.current()
	want := addrs("10.0.1.5", "10.0.1.6", "10.0.1.7")
	firsts := map[string]int{}
	for range 300 {
		resp := answer(v, []string{"front"}, query("tasks.web.", dns.TypeA))
		firsts[resp.Answer[0].(*dns.A).A.String()]++
		got := addrsOf(t, resp)
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Fatalf("answer %v, want the set %v", got, want)
		}
	}
	if len(firsts) != len(want) {
		t.Fatalf("first addresses seen %v in 300 answers, want each of %v", firsts, want)
	}
}

func TestParseReverse(t *testing.T) {
	tests := []struct {
		name string
		want string // "" when not an address
	}{
		{"4.3.2.1.in-addr.arpa", "1.2.3.4"},
		{"255.0.0.10.in-addr.arpa", "10.0.0.255"},
		{"0.0.0.0.in-addr.arpa", "0.0.0.0"},
		{"256.0.0.10.in-addr.arpa", ""},
		{"01.0.0.10.in-addr.arpa", ""},
		{"1.0.10.in-addr.arpa", ""},
		{"1.1.0.0.10.in-addr.arpa", ""},
		{"a.0.0.10.in-addr.arpa", ""},
		{".0.0.10.in-addr.arpa", ""},
		{"1.0.0.10.ip6.arpa", ""},
		{"in-addr.arpa", ""},
	}
	for _, tt := range tests {
		a, ok := parseReverse(tt.name)
		switch {
		case tt.want == "" && ok:
			t.Errorf("parseReverse(%q) = %v, want not an address", tt.name, a)
		case tt.want != "" && (!ok || a.String() != tt.want):
			t.Errorf("parseReverse(%q) = %v, %v, want %s", tt.name, a, ok, tt.want)
		}
	}
}

func TestParseQuery(t *testing.T) {
	good, _ := query("web.", dns.TypeA).Pack()
	notify := query("web.", dns.TypeSOA)
	notify.Opcode = dns.OpcodeNotify
	notifyRaw, _ := notify.Pack()
	twoQ := query("web.", dns.TypeA)
	twoQ.Question = append(twoQ.Question, twoQ.Question[0])
	twoQRaw, _ := twoQ.Pack()
	resp := query("web.", dns.TypeA)
	resp.Response = true
	respRaw, _ := resp.Pack()
	// A header claiming one question, and no question after it.
	cut := append([]byte{0xab, 0xcd, 0x01, 0x00, 0x00, 0x01}, make([]byte, 6)...)

	tests := []struct {
		name  string
		raw   []byte
		query bool // parsed into a query
		rcode int  // else the early reply's, -1 for none (dropped)
	}{
		{"query", good, true, 0},
		{"notify", notifyRaw, false, dns.RcodeNotImplemented},
		{"two questions", twoQRaw, false, dns.RcodeFormatError},
		{"a response", respRaw, false, -1},
		{"header only", cut, false, dns.RcodeFormatError},
		{"too short", []byte{1, 2, 3}, false, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, early := parseQuery(tt.raw)
			if (req != nil) != tt.query {
				t.Fatalf("query %v, want parsed %v", req, tt.query)
			}
			if tt.query {
				return
			}
			if tt.rcode < 0 {
				if early != nil {
					t.Fatalf("reply %v, want the bytes dropped", early)
				}
				return
			}
			if early == nil || early.Rcode != tt.rcode || !early.Response {
				t.Fatalf("reply %v, want rcode %s", early, dns.RcodeToString[tt.rcode])
			}
			if want := uint16(tt.raw[0])<<8 | uint16(tt.raw[1]); early.Id != want {
				t.Fatalf("reply ID %d, want the query's %d", early.Id, want)
			}
		})
	}
}
