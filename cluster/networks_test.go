package cluster

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/store/storetest"
)

// A swarm's networks: ingress at Docker's 10.0.0.0/24, others from the default
// pool clear of it and of each other, a user's subnet kept, overlaps refused.
func TestNewNetworkSubnets(t *testing.T) {
	cl := &swarm.Swarm{ClusterInfo: swarm.ClusterInfo{DefaultAddrPool: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, SubnetSize: 24}}
	now := time.Now()
	ingress, err := ingressNetwork(cl, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := ingress.IPAMOptions.Configs[0]; got.Subnet.String() != "10.0.0.0/24" || got.Gateway.String() != "10.0.0.1" || !ingress.Spec.Ingress {
		t.Fatalf("ingress: %+v", got)
	}
	nets := []*swarm.Network{ingress}
	a, err := newNetwork(NetworkRequest{Name: "a"}, cl, nets, now)
	if err != nil || a.IPAMOptions.Configs[0].Subnet.String() != "10.0.1.0/24" {
		t.Fatalf("a: %+v %v", a, err)
	}
	if a.IPAMOptions.Driver.Options != nil {
		t.Errorf("a: IPAM options %v, want none (none given)", a.IPAMOptions.Driver.Options)
	}
	withOpts, err := newNetwork(NetworkRequest{Name: "o", IPAMOptions: map[string]string{"foo": "bar"}}, cl, nets, now)
	if err != nil || withOpts.IPAMOptions.Driver.Options["foo"] != "bar" || withOpts.IPAMOptions.Driver.Options["com.docker.network.ipam.serial"] != "true" {
		t.Fatalf("IPAM options given: %+v %v, want them with serial allocation, as swarmkit shows them", withOpts.IPAMOptions, err)
	}
	nets = append(nets, a)
	b, err := newNetwork(NetworkRequest{Name: "b", Subnet: netip.MustParsePrefix("192.168.50.0/24"), Gateway: netip.MustParseAddr("192.168.50.254")}, cl, nets, now)
	if err != nil || b.IPAMOptions.Configs[0].Gateway.String() != "192.168.50.254" || b.Spec.Scope != "swarm" || b.Spec.DriverConfiguration.Name != "overlay" {
		t.Fatalf("b: %+v %v", b, err)
	}
	for _, c := range []struct {
		req  NetworkRequest
		want string
	}{
		{NetworkRequest{Name: "c", Subnet: netip.MustParsePrefix("10.0.1.128/25")}, "Pool overlaps with other one on this address space"},
		{NetworkRequest{Name: "d", Subnet: netip.MustParsePrefix("10.254.9.0/24")}, "Pool overlaps"}, // the mesh
		{NetworkRequest{Name: "e", Subnet: netip.MustParsePrefix("10.9.0.0/24"), Gateway: netip.MustParseAddr("10.8.0.1")}, "gateway 10.8.0.1 is not inside subnet"},
	} {
		if _, err := newNetwork(c.req, cl, nets, now); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.req.Name, err, c.want)
		}
	}
	for _, c := range []struct {
		req  NetworkRequest
		want string
	}{
		{NetworkRequest{Name: "bad name!"}, "name must be valid as a DNS name component"},
		{NetworkRequest{Name: "x", IPAMDriver: "dhcp"}, "ipam driver dhcp is not supported"},
		{NetworkRequest{Name: "x", Gateway: netip.MustParseAddr("10.0.0.1")}, "needs a subnet"},
	} {
		if err := validateNetworkRequest(c.req); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.req, err, c.want)
		}
	}
}

// Service networks are named by ID, the ingress network and unknown networks
// refused; VIPs are given on each network and kept across updates; a network
// in use cannot be removed.
func TestServiceNetworksAndVIPs(t *testing.T) {
	s := storetest.Leader(t, "node1")
	ctx := context.Background()
	cl := &swarm.Swarm{}
	ingress, err := ingressNetwork(cl, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	back, err := newNetwork(NetworkRequest{Name: "back"}, cl, []*swarm.Network{ingress}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	back.ID = "backid"
	err = s.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateNetwork(ingress); err != nil {
			return err
		}
		return tx.CreateNetwork(back)
	})
	if err != nil {
		t.Fatal(err)
	}
	resolve := func(targets ...string) (swarm.ServiceSpec, error) {
		spec := swarm.ServiceSpec{}
		for _, tg := range targets {
			spec.TaskTemplate.Networks = append(spec.TaskTemplate.Networks, swarm.NetworkAttachmentConfig{Target: tg})
		}
		err := s.View(func(tx store.ReadTx) error { return resolveNetworks(tx, &spec) })
		return spec, err
	}
	spec, err := resolve("back")
	if err != nil || spec.TaskTemplate.Networks[0].Target != "backid" {
		t.Fatalf("resolve back: %+v %v", spec.TaskTemplate.Networks, err)
	}
	for _, c := range []struct {
		targets []string
		want    string
	}{
		{[]string{"nope"}, "network nope not found"},
		{[]string{"ingress"}, "Service cannot be explicitly attached to the ingress network"},
		{[]string{"back", "backid"}, "duplicate network attachment"},
	} {
		if _, err := resolve(c.targets...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.targets, err, c.want)
		}
	}

	svc := &swarm.Service{ID: "svc1", Spec: spec}
	svc.Spec.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: 8080, PublishMode: swarm.PortConfigPublishModeIngress}}}
	svc.Endpoint.Ports = svc.Spec.EndpointSpec.Ports
	err = s.Update(ctx, func(tx store.Tx) error {
		if err := allocateVIPs(tx, svc); err != nil {
			return err
		}
		return tx.CreateService(svc)
	})
	if err != nil {
		t.Fatal(err)
	}
	vips := svc.Endpoint.VirtualIPs
	if len(vips) != 2 || vips[0].NetworkID != "backid" || vips[0].Addr.String() != "10.0.1.2/24" || vips[1].NetworkID != ingress.ID || vips[1].Addr.String() != "10.0.0.2/24" {
		t.Fatalf("VIPs %+v", vips)
	}
	// An update that keeps the network keeps the VIP; dnsrr drops them.
	err = s.Update(ctx, func(tx store.Tx) error {
		cur, err := tx.Service("svc1")
		if err != nil {
			return err
		}
		if err := allocateVIPs(tx, cur); err != nil {
			return err
		}
		if cur.Endpoint.VirtualIPs[0] != vips[0] {
			t.Errorf("VIP changed on update: %+v", cur.Endpoint.VirtualIPs)
		}
		cur.Spec.EndpointSpec = &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR}
		cur.Endpoint = swarm.Endpoint{}
		if err := allocateVIPs(tx, cur); err != nil {
			return err
		}
		if len(cur.Endpoint.VirtualIPs) != 0 {
			t.Errorf("dnsrr service has VIPs: %+v", cur.Endpoint.VirtualIPs)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(func(tx store.ReadTx) error { return networkInUse(tx, back) })
	if err == nil || !strings.Contains(err.Error(), "network backid is in use by service svc1") {
		t.Fatalf("in use: %v", err)
	}
}

// Removing a network waits for the tasks still leaving it (their service is
// gone, they stop) and then removes it; a service attached to it is refused at
// once.
func TestRemoveNetworkWaitsForLeavingTasks(t *testing.T) {
	s := storetest.Leader(t, "node1")
	c := clusterOn(s)
	ctx := context.Background()
	back, err := newNetwork(NetworkRequest{Name: "back"}, &swarm.Swarm{}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	back.ID = "backid"
	task := &swarm.Task{ID: "task1", ServiceID: "gone", DesiredState: swarm.TaskStateShutdown,
		Status:              swarm.TaskStatus{State: swarm.TaskStateRunning},
		NetworksAttachments: []swarm.NetworkAttachment{{Network: swarm.Network{ID: "backid"}}}}
	err = s.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateNetwork(back); err != nil {
			return err
		}
		return tx.CreateTask(task)
	})
	if err != nil {
		t.Fatal(err)
	}

	// While the task runs, the removal waits (here until its context ends).
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := c.RemoveNetwork(short, "back"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("remove while a task leaves: %v, want it to wait", err)
	}
	done := make(chan error, 1)
	go func() { done <- c.RemoveNetwork(ctx, "back") }()
	err = s.Update(ctx, func(tx store.Tx) error {
		cur, err := tx.Task("task1")
		if err != nil {
			return err
		}
		cur.Status.State = swarm.TaskStateShutdown
		return tx.UpdateTask(cur)
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("remove after the task ended: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("remove still waiting after the task ended")
	}
	if _, err := c.Network(ctx, "backid"); err == nil {
		t.Fatal("network still there")
	}

	// A network a service is attached to is refused without waiting.
	other, err := newNetwork(NetworkRequest{Name: "other"}, &swarm.Swarm{}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other.ID = "otherid"
	svc := &swarm.Service{ID: "svc1"}
	svc.Spec.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: "otherid"}}
	err = s.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateNetwork(other); err != nil {
			return err
		}
		return tx.CreateService(svc)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveNetwork(ctx, "other"); err == nil || !strings.Contains(err.Error(), "network otherid is in use by service svc1") {
		t.Fatalf("remove of a service's network: %v", err)
	}
}

// A service that publishes through the routing mesh needs the ingress network:
// without one (removed by the user) it is refused in swarmkit's words, and a
// service that publishes nothing is not.
func TestPublishingWithoutIngress(t *testing.T) {
	s := storetest.Leader(t, "node1")
	publishing := &swarm.Service{ID: "svc1"}
	publishing.Spec.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: 8080, PublishMode: swarm.PortConfigPublishModeIngress}}}
	publishing.Endpoint.Ports = publishing.Spec.EndpointSpec.Ports
	err := s.Update(context.Background(), func(tx store.Tx) error { return allocateVIPs(tx, publishing) })
	if err == nil || !strings.Contains(err.Error(), "service needs ingress network, but no ingress network is present") {
		t.Fatalf("publishing without ingress: %v", err)
	}
	quiet := &swarm.Service{ID: "svc2"}
	if err := s.Update(context.Background(), func(tx store.Tx) error { return allocateVIPs(tx, quiet) }); err != nil {
		t.Fatalf("a service that publishes nothing: %v", err)
	}
}
