package ipam

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

func mustSubnet(t *testing.T, prefix, rng, gw string) *Subnet {
	t.Helper()
	var r netip.Prefix
	if rng != "" {
		r = netip.MustParsePrefix(rng)
	}
	var g netip.Addr
	if gw != "" {
		g = netip.MustParseAddr(gw)
	}
	s, err := NewSubnet(netip.MustParsePrefix(prefix), r, g)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Addresses are handed out in order after the cursor, never the network,
// broadcast or gateway address, and a subnet runs out with ErrExhausted.
func TestSubnetAllocate(t *testing.T) {
	s := mustSubnet(t, "10.0.1.0/29", "", "")
	if s.Gateway != netip.MustParseAddr("10.0.1.1") {
		t.Fatalf("default gateway %s", s.Gateway)
	}
	var got []string
	var cursor netip.Addr
	for {
		a, err := s.Allocate(cursor)
		if errors.Is(err, ErrExhausted) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a.String())
		cursor = a
	}
	want := []string{"10.0.1.2", "10.0.1.3", "10.0.1.4", "10.0.1.5", "10.0.1.6"}
	if len(got) != len(want) {
		t.Fatalf("allocated %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocated %v, want %v", got, want)
		}
	}
}

// A released address is not handed out again before the others: the cursor
// moves on and wraps around.
func TestSubnetCursorAvoidsReuse(t *testing.T) {
	// 10.0.1.2 was released (not in use) but the cursor is past it.
	s2 := mustSubnet(t, "10.0.1.0/24", "", "")
	s2.Use(netip.MustParseAddr("10.0.1.3"))
	a, err := s2.Allocate(netip.MustParseAddr("10.0.1.3"))
	if err != nil || a != netip.MustParseAddr("10.0.1.4") {
		t.Fatalf("after cursor .3: %s %v, want 10.0.1.4", a, err)
	}
	a, err = s2.Allocate(netip.MustParseAddr("10.0.1.254"))
	if err != nil || a != netip.MustParseAddr("10.0.1.2") {
		t.Fatalf("wrapped: %s %v, want 10.0.1.2", a, err)
	}
}

// A range limits what is handed out; a gateway or range outside the subnet is
// refused.
func TestSubnetRangeAndChecks(t *testing.T) {
	s := mustSubnet(t, "10.0.0.0/16", "10.0.7.0/30", "10.0.0.1")
	a, err := s.Allocate(netip.Addr{})
	if err != nil || a != netip.MustParseAddr("10.0.7.0") {
		t.Fatalf("first in range: %s %v", a, err)
	}
	for _, c := range []struct{ prefix, rng, gw string }{
		{"10.0.0.0/24", "10.1.0.0/28", ""},
		{"10.0.0.0/24", "", "10.9.9.9"},
		{"10.0.0.0/31", "", ""},
		{"fd00::/64", "", ""},
	} {
		var r netip.Prefix
		if c.rng != "" {
			r = netip.MustParsePrefix(c.rng)
		}
		var g netip.Addr
		if c.gw != "" {
			g = netip.MustParseAddr(c.gw)
		}
		if _, err := NewSubnet(netip.MustParsePrefix(c.prefix), r, g); err == nil {
			t.Errorf("NewSubnet(%v) accepted", c)
		}
	}
}

// Subnets are picked from the pools clear of every taken prefix.
func TestNextSubnet(t *testing.T) {
	pools := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	taken := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("10.0.1.128/25")}
	p, err := NextSubnet(pools, 24, taken)
	if err != nil || p != netip.MustParsePrefix("10.0.2.0/24") {
		t.Fatalf("NextSubnet: %s %v, want 10.0.2.0/24", p, err)
	}
	if _, err := NextSubnet([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}, 24, taken); !errors.Is(err, ErrExhausted) {
		t.Fatalf("full pool: %v", err)
	}
}

// A space counts VIPs and live tasks' addresses as taken, not ended tasks'.
func TestBuildAndAttach(t *testing.T) {
	n := &swarm.Network{ID: "net1", Spec: swarm.NetworkSpec{Annotations: swarm.Annotations{Name: "back"}},
		IPAMOptions: &swarm.IPAMOptions{Configs: []swarm.IPAMConfig{{Subnet: netip.MustParsePrefix("10.0.5.0/29"), Gateway: netip.MustParseAddr("10.0.5.1")}}}}
	ing := &swarm.Network{ID: "ing", Spec: swarm.NetworkSpec{Ingress: true},
		IPAMOptions: &swarm.IPAMOptions{Configs: []swarm.IPAMConfig{{Subnet: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.1")}}}}
	svc := &swarm.Service{Endpoint: swarm.Endpoint{VirtualIPs: []swarm.EndpointVirtualIP{{NetworkID: "net1", Addr: netip.MustParsePrefix("10.0.5.2/29")}}}}
	live := &swarm.Task{Status: swarm.TaskStatus{State: swarm.TaskStateRunning},
		NetworksAttachments: []swarm.NetworkAttachment{{Network: *n, Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.5.3/29")}}}}
	ended := &swarm.Task{Status: swarm.TaskStatus{State: swarm.TaskStateShutdown},
		NetworksAttachments: []swarm.NetworkAttachment{{Network: *n, Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.5.4/29")}}}}
	space := Build([]*swarm.Network{n, ing}, []*swarm.Service{svc}, []*swarm.Task{live, ended}, nil)
	byID := map[string]*swarm.Network{"net1": n, "ing": ing}

	task := &swarm.Task{Spec: swarm.TaskSpec{Networks: []swarm.NetworkAttachmentConfig{{Target: "net1"}}},
		Status: swarm.TaskStatus{PortStatus: swarm.PortStatus{Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: 8080, PublishMode: swarm.PortConfigPublishModeIngress}}}}}
	if err := space.Attach(task, byID, ing); err != nil {
		t.Fatal(err)
	}
	if len(task.NetworksAttachments) != 2 {
		t.Fatalf("attachments %+v, want ingress and net1", task.NetworksAttachments)
	}
	if got := task.NetworksAttachments[1].Addresses[0].String(); got != "10.0.5.4/29" {
		t.Fatalf("net1 address %s, want 10.0.5.4/29 (the ended task's, the first free)", got)
	}
	if got := task.NetworksAttachments[0]; got.Network.ID != "ing" || got.Addresses[0].String() != "10.0.0.2/24" {
		t.Fatalf("ingress attachment %+v", got)
	}
	// Two more fit (.5, .6); the next is refused.
	for i := 0; i < 2; i++ {
		if _, err := space.Allocate("net1"); err != nil {
			t.Fatal(err)
		}
	}
	next := &swarm.Task{Spec: swarm.TaskSpec{Networks: []swarm.NetworkAttachmentConfig{{Target: "net1"}}}}
	if err := space.Attach(next, byID, ing); !errors.Is(err, ErrExhausted) {
		t.Fatalf("full network: %v", err)
	}
	if err := space.Attach(&swarm.Task{Spec: swarm.TaskSpec{Networks: []swarm.NetworkAttachmentConfig{{Target: "gone"}}}}, byID, ing); err == nil {
		t.Fatal("an unknown network was attached")
	}
}
