package dns

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

const (
	// ttl is the time to live of every local answer, in seconds: Docker's.
	ttl = 600
	// ednsSize is the UDP payload size the server says it accepts. Queries and
	// answers only cross the sandbox's loopback, which does not fragment.
	ednsSize = 4096
)

// parseQuery turns the bytes of one query into a message to answer. When the query
// cannot be answered as asked, early is the reply to send at once (FORMERR,
// NOTIMP); when both are nil the bytes are dropped: too short to reply to, or a
// response, which must never be answered lest two resolvers loop.
func parseQuery(raw []byte) (req, early *dns.Msg) {
	req = new(dns.Msg)
	if err := req.Unpack(raw); err != nil {
		const headerLen = 12
		if len(raw) < headerLen || raw[2]&0x80 != 0 {
			return nil, nil
		}
		early = new(dns.Msg)
		early.Id = binary.BigEndian.Uint16(raw)
		early.Response = true
		early.Opcode = int(raw[2]>>3) & 0xf
		early.Rcode = dns.RcodeFormatError
		return nil, early
	}
	if req.Response {
		return nil, nil
	}
	if early := checkQuery(req); early != nil {
		return nil, early
	}
	return req, nil
}

// checkQuery returns the error reply to a query no resolver can answer, or nil.
func checkQuery(req *dns.Msg) *dns.Msg {
	switch {
	case req.Opcode != dns.OpcodeQuery:
		return failure(req, dns.RcodeNotImplemented)
	case len(req.Question) != 1:
		return failure(req, dns.RcodeFormatError)
	}
	return nil
}

// answer is the reply to req from v for a sandbox attached to networks, or nil when
// the name is not the Table's and the query goes upstream. req has one question.
//
// A name on a network the sandbox is not attached to is not the Table's either: it
// is forwarded, as Docker does, so that a name outside the cluster that happens to
// be a service's elsewhere still resolves.
func answer(v *view, networks []string, req *dns.Msg) *dns.Msg {
	q := req.Question[0]
	if q.Qclass != dns.ClassINET {
		return nil
	}
	name := canonical(q.Name)
	if q.Qtype == dns.TypePTR {
		if a, ok := parseReverse(name); ok {
			target, ok := v.reverse(networks, a)
			if !ok {
				return nil
			}
			resp := reply(req)
			resp.Answer = []dns.RR{&dns.PTR{Hdr: rrHeader(q.Name, dns.TypePTR), Ptr: target}}
			return resp
		}
	}
	addrs, ok := v.lookup(networks, name)
	if !ok {
		return nil
	}
	resp := reply(req)
	// Any other type of a known name is NOERROR with no answer: forwarding it
	// would let an upstream's NXDOMAIN deny that the name exists at all.
	if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
		resp.Answer = aRecords(q.Name, addrs)
	}
	return resp
}

// aRecords builds one A record per address, shuffled so that clients taking the
// first spread over a service's tasks. Three allocations whatever the count.
func aRecords(qname string, addrs []netip.Addr) []dns.RR {
	recs := make([]dns.A, len(addrs))
	ips := make([]byte, 4*len(addrs))
	rrs := make([]dns.RR, len(addrs))
	for i, a := range addrs {
		ip := ips[4*i : 4*i+4 : 4*i+4]
		b := a.As4()
		copy(ip, b[:])
		recs[i] = dns.A{Hdr: rrHeader(qname, dns.TypeA), A: net.IP(ip)}
		rrs[i] = &recs[i]
	}
	rand.Shuffle(len(rrs), func(i, j int) { rrs[i], rrs[j] = rrs[j], rrs[i] })
	return rrs
}

// rrHeader names a record as the question did, so a client comparing the two with
// case folding or without finds its name.
func rrHeader(qname string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: qname, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

// reply starts the reply to req: recursion available (the server forwards what
// it does not know), EDNS when the query used it. Not authoritative, as
// Docker's resolver answers (clients print "Non-authoritative answer").
func reply(req *dns.Msg) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = true
	if req.IsEdns0() != nil {
		resp.SetEdns0(ednsSize, false)
	}
	return resp
}

// failure is an empty reply to req with rcode.
func failure(req *dns.Msg, rcode int) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetRcode(req, rcode)
	resp.RecursionAvailable = true
	return resp
}

// parseReverse reads the IPv4 address of a reverse name such as
// "4.3.2.1.in-addr.arpa" (canonical form). Anything else, including the name of a
// reverse zone with fewer labels, is not an address.
func parseReverse(name string) (netip.Addr, bool) {
	rest, ok := strings.CutSuffix(name, ".in-addr.arpa")
	if !ok {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i := 3; i >= 0; i-- {
		label := rest
		if i > 0 {
			var found bool
			label, rest, found = strings.Cut(rest, ".")
			if !found {
				return netip.Addr{}, false
			}
		}
		n, ok := parseOctet(label)
		if !ok {
			return netip.Addr{}, false
		}
		b[i] = n
	}
	return netip.AddrFrom4(b), true
}

// parseOctet reads a decimal number from 0 to 255 without leading zeros.
func parseOctet(s string) (byte, bool) {
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n > 255 {
		return 0, false
	}
	return byte(n), true
}

// pack encodes resp, dropping records (and setting TC) beyond limit bytes. A reply
// that cannot be encoded becomes a SERVFAIL with the same ID and question.
func pack(resp *dns.Msg, limit int) []byte {
	resp.Truncate(limit)
	out, err := resp.Pack()
	if err != nil {
		fail := new(dns.Msg)
		fail.Id = resp.Id
		fail.Response = true
		fail.Opcode = resp.Opcode
		fail.Rcode = dns.RcodeServerFailure
		out, _ = fail.Pack() // a bare header always encodes
	}
	return out
}

// udpLimit is the largest reply a query over UDP may get: its EDNS size, at least
// the 512 bytes every client takes.
func udpLimit(req *dns.Msg) int {
	if req != nil {
		if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > dns.MinMsgSize {
			return int(opt.UDPSize())
		}
	}
	return dns.MinMsgSize
}
