package dns

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/shoal-project/shoal/netplane/namespace"

	"github.com/miekg/dns"
)

// benchRecords is a busy node's view: 3 networks of 100 services each, every
// service with a VIP, an alias, 5 tasks and their names.
func benchRecords() Records {
	r := Records{}
	for n := range 3 {
		names := map[string][]netip.Addr{}
		for svc := range 100 {
			name := fmt.Sprintf("svc%d-%d", n, svc)
			vip := netip.AddrFrom4([4]byte{10, byte(n), byte(svc), 2})
			names[name] = []netip.Addr{vip}
			names[name+"-alias"] = []netip.Addr{vip}
			var tasks []netip.Addr
			for slot := range 5 {
				a := netip.AddrFrom4([4]byte{10, byte(n), byte(svc), byte(10 + slot)})
				tasks = append(tasks, a)
				names[fmt.Sprintf("%s.%d.task%d", name, slot+1, slot)] = []netip.Addr{a}
			}
			names["tasks."+name] = tasks
		}
		r[fmt.Sprintf("net%d", n)] = names
	}
	return r
}

// BenchmarkAnswer measures one query answered from the Table, looked up on the
// last of a sandbox's three networks: the answer alone, and from the query's bytes
// to the reply's (what a UDP query costs besides the two system calls).
func BenchmarkAnswer(b *testing.B) {
	s := newServer(b, Config{})
	s.Table().Replace(benchRecords())
	networks := []string{"net0", "net1", "net2"}
	cases := []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"vip", "svc2-57.", dns.TypeA},
		{"tasks", "tasks.svc2-57.", dns.TypeA},
		{"ptr", "12.57.2.10.in-addr.arpa.", dns.TypePTR},
	}
	for _, c := range cases {
		req := query(c.qname, c.qtype)
		if answer(s.table.current(), networks, req) == nil {
			b.Fatalf("%s is not answered", c.qname)
		}
		b.Run("msg/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				answer(s.table.current(), networks, req)
			}
		})
		raw, err := req.Pack()
		if err != nil {
			b.Fatal(err)
		}
		b.Run("wire/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.respond(context.Background(), networks, raw, true)
			}
		})
	}
}

// BenchmarkReplace measures building the Table of benchRecords, done at every
// change of the agent's view.
func BenchmarkReplace(b *testing.B) {
	var table Table
	records := benchRecords()
	b.ReportAllocs()
	for b.Loop() {
		table.Replace(records)
	}
}

// BenchmarkServeUDP measures queries answered through the sandbox's socket, one at a
// time from a client inside the namespace: the round trip a task's resolver sees.
func BenchmarkServeUDP(b *testing.B) {
	s := newServer(b, Config{})
	s.Table().Replace(benchRecords())
	path, ns := newSandboxNS(b)
	if err := s.Serve(context.Background(), "sb", path, []string{"net0", "net1", "net2"}); err != nil {
		b.Fatalf("Serve: %v", err)
	}
	req := query("svc2-57.", dns.TypeA)
	err := namespace.Run(ns, func() error {
		co, err := dns.Dial("udp", Address+":53")
		if err != nil {
			return err
		}
		defer co.Close()
		b.ReportAllocs()
		for b.Loop() {
			if err := co.WriteMsg(req); err != nil {
				return err
			}
			resp, err := co.ReadMsg()
			if err != nil {
				return err
			}
			if len(resp.Answer) != 1 {
				return fmt.Errorf("answer %v", resp.Answer)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("query through the socket: %v", err)
	}
}
