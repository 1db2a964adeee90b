package dns

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/miekg/dns"
)

// FuzzAnswer feeds arbitrary bytes into the path a UDP query takes: parsing,
// answering from the Table, failing what would be forwarded (there is no upstream)
// and encoding. It must never panic, and whatever it sends back must be a response
// to the query's ID that fits in 512 bytes or the query's EDNS size.
func FuzzAnswer(f *testing.F) {
	for _, q := range []*dns.Msg{
		query("web.", dns.TypeA),
		query("tasks.web.", dns.TypeA),
		query("5.1.0.10.in-addr.arpa.", dns.TypePTR),
		query("web.", dns.TypeAAAA),
		query("example.test.", dns.TypeA).SetEdns0(4096, true),
	} {
		raw, err := q.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	s := newServer(f, Config{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		out := s.respond(context.Background(), []string{"front", "back"}, raw, true)
		if out == nil {
			return
		}
		resp := new(dns.Msg)
		if err := resp.Unpack(out); err != nil {
			t.Fatalf("reply does not decode: %v", err)
		}
		if !resp.Response || resp.Id != binary.BigEndian.Uint16(raw) {
			t.Fatalf("reply %v is not a response to ID %d", resp.MsgHdr, binary.BigEndian.Uint16(raw))
		}
		req := new(dns.Msg)
		if err := req.Unpack(raw); err == nil && len(out) > udpLimit(req) {
			t.Fatalf("reply of %d bytes, the query takes %d", len(out), udpLimit(req))
		}
	})
}
