package bridge

import (
	"context"
	"errors"
	"net/netip"
	"testing"
)

// An ingress port balances its connections over the service's tasks in turn,
// follows changes of the task set, conflicts with other owners of the port, and
// goes when the service does.
func TestIngressPortBalancesOverTasks(t *testing.T) {
	l := newLab(t, "10.231.9.0/24")
	n := l.open()
	ctx := context.Background()
	a, b := l.create(n, "task-a"), l.create(n, "task-b")
	serveGreeting(t, openNetNS(t, a.NetNSPath), ":8080", "a")
	serveGreeting(t, openNetNS(t, b.NetNSPath), ":8080", "b")
	ports := []ServicePort{{PublishedPort: 18080, TargetPort: 8080}}
	if err := n.PublishService(ctx, "web", ports, []netip.Addr{a.IP, b.IP}); err != nil {
		t.Fatalf("PublishService: %v", err)
	}
	gw := a.Gateway.String()
	seen := map[string]int{}
	for i := 0; i < 6; i++ {
		got, err := ask(l.ns, "127.0.0.1:18080")
		if err != nil {
			t.Fatalf("connection %d to the ingress port: %v", i, err)
		}
		seen[got]++
	}
	if seen["a sees "+gw] != 3 || seen["b sees "+gw] != 3 {
		t.Fatalf("six connections were spread %v, want 3 to each task", seen)
	}

	// The port follows the task set.
	if err := n.PublishService(ctx, "web", ports, []netip.Addr{b.IP}); err != nil {
		t.Fatalf("PublishService with one backend: %v", err)
	}
	for i := 0; i < 3; i++ {
		expectReply(t, l.ns, "127.0.0.1:18080", "b sees "+gw)
	}

	// Nobody else may publish the port.
	var conflict interface{ Conflict() bool }
	if _, err := n.PublishPorts(ctx, a.ID, []PortMapping{{Protocol: "tcp", HostPort: 18080, ContainerPort: 80}}); !errors.As(err, &conflict) {
		t.Errorf("a sandbox publishing the ingress port: %v, want Conflict", err)
	}
	if err := n.PublishService(ctx, "other", ports, []netip.Addr{a.IP}); !errors.As(err, &conflict) {
		t.Errorf("another service publishing the port: %v, want Conflict", err)
	}

	// The state survives a restart of the daemon.
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n = l.open()
	expectReply(t, l.ns, "127.0.0.1:18080", "b sees "+gw)

	if err := n.PublishService(ctx, "web", nil, nil); err != nil {
		t.Fatalf("unpublish: %v", err)
	}
	if _, err := ask(l.ns, "127.0.0.1:18080"); err == nil {
		t.Error("the ingress port still answers after the service was unpublished")
	}
}
