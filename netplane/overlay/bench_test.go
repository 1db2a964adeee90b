package overlay

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/shoal-project/shoal/netplane/namespace"

	"github.com/vishvananda/netns"
)

// BenchmarkThroughput measures one TCP stream's throughput between two
// tasks across the mesh and compares it with the WireGuard device alone
// (host to host at the mesh addresses), the underlay alone, and two tasks
// of one node. The userspace WireGuard runs in this process, so the figures
// are those of a node without kernel WireGuard.
func BenchmarkThroughput(b *testing.B) {
	l := newLab(b)
	n1, n2 := l.nodes[0], l.nodes[1]
	a1 := l.task(n1, "a1", netA, "10.10.1.2")
	a2 := l.task(n1, "a2", netA, "10.10.1.3")
	a3 := l.task(n2, "a3", netA, "10.10.1.4")
	l.apply(n1)
	l.apply(n2)
	cases := []struct {
		name     string
		from, to netns.NsHandle
		addr     string
	}{
		{"task-to-task-across", a1.ns, a3.ns, "10.10.1.4:5001"},
		{"wireguard-host-to-host", n1.ns, n2.ns, n2.mesh.String() + ":5001"},
		{"underlay-host-to-host", n1.ns, n2.ns, n2.underlay.String() + ":5001"},
		{"task-to-task-same-node", a1.ns, a2.ns, "10.10.1.3:5001"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			sink(b, c.to, c.addr)
			var conn net.Conn
			eventually(b, "connect to "+c.addr, func() (err error) {
				conn, err = dial(c.from, net.Dialer{Timeout: time.Second}, c.addr)
				return err
			})
			defer conn.Close()
			chunk := make([]byte, 128<<10)
			b.SetBytes(int64(len(chunk)))
			b.ResetTimer()
			for range b.N {
				if _, err := conn.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			// The sink closes when it has read everything: the time counts
			// bytes delivered, not bytes buffered.
			_ = conn.(*net.TCPConn).CloseWrite()
			if _, err := io.Copy(io.Discard, conn); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// sink accepts one connection on addr in ns, reads it to the end and closes it.
func sink(b *testing.B, ns netns.NsHandle, addr string) {
	b.Helper()
	var ln net.Listener
	if err := namespace.Run(ns, func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		b.Fatalf("listen on %s: %v", addr, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, c)
		c.Close()
	}()
	b.Cleanup(func() { ln.Close(); <-done })
}
