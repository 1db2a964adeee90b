package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/shoal-project/shoal/netplane/namespace"
)

func TestPublishedPortReachesTheSandbox(t *testing.T) {
	l := newLab(t, "10.231.4.0/24")
	n := l.open()
	ctx := context.Background()
	web := l.create(n, "web")
	client := l.create(n, "client")
	nsWeb, nsClient := openNetNS(t, web.NetNSPath), openNetNS(t, client.NetNSPath)
	serveGreeting(t, nsWeb, ":8080", "web")

	got, err := n.PublishPorts(ctx, web.ID, []PortMapping{{Protocol: "tcp", ContainerPort: 8080}})
	if err != nil {
		t.Fatalf("PublishPorts: %v", err)
	}
	hp := got[0].HostPort
	if len(got) != 1 || hp < 30000 || hp > 32767 || got[0].ContainerPort != 8080 || got[0].Protocol != "tcp" {
		t.Fatalf("PublishPorts = %+v, want one tcp mapping 8080 from the ephemeral range", got)
	}

	gw := web.Gateway.String()
	port := fmt.Sprint(hp)
	// From the host, through the loopback address and the bridge-side address.
	expectReply(t, l.ns, net.JoinHostPort("127.0.0.1", port), "web sees "+gw)
	expectReply(t, l.ns, net.JoinHostPort(gw, port), "web sees "+gw)
	// From another sandbox on the same bridge, through the host.
	expectReply(t, nsClient, net.JoinHostPort(gw, port), "web sees "+gw)

	// Publishing again is a no-op that returns the same host port.
	again, err := n.PublishPorts(ctx, web.ID, []PortMapping{{Protocol: "tcp", ContainerPort: 8080}})
	if err != nil || again[0].HostPort != hp {
		t.Errorf("second PublishPorts = %+v, %v; want host port %d again", again, err, hp)
	}
	if ports, _ := n.Ports(web.ID); len(ports) != 1 {
		t.Errorf("sandbox has %d published ports, want 1: %+v", len(ports), ports)
	}

	// Another sandbox cannot take the host port; the same number over UDP is free.
	_, err = n.PublishPorts(ctx, client.ID, []PortMapping{{Protocol: "tcp", HostPort: hp, ContainerPort: 80}})
	var conflict interface{ Conflict() bool }
	if !errors.As(err, &conflict) {
		t.Errorf("publishing a taken host port: err %v, want Conflict", err)
	}
	if _, err := n.PublishPorts(ctx, client.ID, []PortMapping{{Protocol: "udp", HostPort: hp, ContainerPort: 53}}); err != nil {
		t.Errorf("publishing %d/udp: %v", hp, err)
	}

	// A fixed host port is honoured.
	fixed, err := n.PublishPorts(ctx, web.ID, []PortMapping{{Protocol: "tcp", HostPort: 8000, ContainerPort: 8080}})
	if err != nil || fixed[0].HostPort != 8000 {
		t.Fatalf("PublishPorts(8000) = %+v, %v", fixed, err)
	}
	expectReply(t, l.ns, "127.0.0.1:8000", "web sees "+gw)

	// Once the sandbox is gone its host ports are free again.
	if err := n.RemoveSandbox(ctx, web.ID); err != nil {
		t.Fatalf("RemoveSandbox: %v", err)
	}
	if _, err := ask(l.ns, "127.0.0.1:8000"); err == nil {
		t.Error("host port 8000 still answers after its sandbox was removed")
	}
	if _, err := n.PublishPorts(ctx, client.ID, []PortMapping{{Protocol: "tcp", HostPort: 8000, ContainerPort: 80}}); err != nil {
		t.Errorf("reusing host port 8000 of a removed sandbox: %v", err)
	}
}

func TestPublishPortsValidates(t *testing.T) {
	l := newLab(t, "10.231.5.0/24")
	n := l.open()
	ctx := context.Background()
	sb := l.create(n, "v")

	var invalid interface{ InvalidParameter() bool }
	for _, p := range []PortMapping{{Protocol: "icmp", ContainerPort: 1}, {Protocol: "tcp", HostPort: 80}} {
		if _, err := n.PublishPorts(ctx, sb.ID, []PortMapping{p}); !errors.As(err, &invalid) {
			t.Errorf("PublishPorts(%+v): err %v, want InvalidParameter", p, err)
		}
	}
	var notFound interface{ NotFound() bool }
	if _, err := n.PublishPorts(ctx, "nope", []PortMapping{{ContainerPort: 80}}); !errors.As(err, &notFound) {
		t.Errorf("PublishPorts on a missing sandbox: err %v, want NotFound", err)
	}
}

func TestSandboxTrafficToTheOutsideIsMasqueraded(t *testing.T) {
	l := newLab(t, "10.231.6.0/24")
	n := l.open()
	sb := l.create(n, "egress")

	// An "outside" host reachable from the lab's host over a veth, with no route back
	// to the bridge subnet: only a masqueraded connection can be answered.
	outside := newOutside(t, l, netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("192.0.2.2/24"))
	serveGreeting(t, outside, "192.0.2.2:9000", "outside")

	expectReply(t, openNetNS(t, sb.NetNSPath), "192.0.2.2:9000", "outside sees 192.0.2.1")
}

func TestPublishedUDPPortReachesTheSandbox(t *testing.T) {
	l := newLab(t, "10.231.13.0/24")
	n := l.open()
	dns := l.create(n, "dns")
	nsDNS := openNetNS(t, dns.NetNSPath)

	var pc net.PacketConn
	if err := namespace.Run(nsDNS, func() error {
		var err error
		pc, err = net.ListenPacket("udp4", ":53")
		return err
	}); err != nil {
		t.Fatalf("listen udp in sandbox: %v", err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed by cleanup
			}
			host, _, _ := net.SplitHostPort(from.String())
			_, _ = pc.WriteTo([]byte("dns sees "+host), from)
		}
	}()

	got, err := n.PublishPorts(context.Background(), dns.ID, []PortMapping{{Protocol: "udp", HostPort: 5353, ContainerPort: 53}})
	if err != nil || got[0].HostPort != 5353 {
		t.Fatalf("PublishPorts = %+v, %v", got, err)
	}
	want := "dns sees " + dns.Gateway.String()
	eventually(t, "udp to 127.0.0.1:5353", func() error {
		var reply string
		err := namespace.Run(l.ns, func() error {
			c, err := net.Dial("udp4", "127.0.0.1:5353")
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
			if _, err := c.Write([]byte("query")); err != nil {
				return err
			}
			buf := make([]byte, 512)
			k, err := c.Read(buf)
			reply = string(buf[:k])
			return err
		})
		if err == nil && reply != want {
			err = fmt.Errorf("reply %q, want %q", reply, want)
		}
		return err
	})
}
