package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/store/storetest"
)

// Two writes that take an address from one network on the same snapshot do
// not both commit it: the later is refused and tried again on a fresh one.
func TestAddressesClaimedOnce(t *testing.T) {
	s := storetest.Leader(t, "node1")
	c := clusterOn(s)
	ctx := context.Background()
	back, err := newNetwork(NetworkRequest{Name: "back"}, &swarm.Swarm{}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	back.ID = "backid"
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.CreateNetwork(back) }); err != nil {
		t.Fatal(err)
	}
	netID := back.ID
	service := func(id string) *swarm.Service {
		svc := &swarm.Service{ID: id, Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: id}}}
		svc.Spec.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: netID}}
		return svc
	}
	tries := 0
	err = c.updateAllocating(ctx, func(tx store.Tx) error {
		tries++
		a := service("a")
		if err := allocateVIPs(tx, a); err != nil {
			return err
		}
		if tries == 1 {
			// Another write, on the snapshot this one read, commits first.
			err := s.Update(ctx, func(tx store.Tx) error {
				b := service("b")
				if err := allocateVIPs(tx, b); err != nil {
					return err
				}
				return tx.CreateService(b)
			})
			if err != nil {
				return err
			}
		}
		return tx.CreateService(a)
	})
	if err != nil || tries != 2 {
		t.Fatalf("update: %v after %d tries, want success on the second", err, tries)
	}
	vip := func(id string) string {
		var out string
		_ = s.View(func(tx store.ReadTx) error {
			svc, err := tx.Service(id)
			if err == nil && len(svc.Endpoint.VirtualIPs) == 1 {
				out = svc.Endpoint.VirtualIPs[0].Addr.String()
			}
			return err
		})
		return out
	}
	if a, b := vip("a"), vip("b"); a == "" || a == b {
		t.Fatalf("VIPs of a and b: %q and %q", a, b)
	}
}

// A service update that publishes a port and a create that publishes the same
// one, on the same snapshot, do not both commit it: the later is tried again
// and refused, as Docker refuses a port in use.
func TestIngressPortClaimedOnce(t *testing.T) {
	s := storetest.Leader(t, "node1")
	c := clusterOn(s)
	ctx := context.Background()
	ingress, err := ingressNetwork(&swarm.Swarm{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.CreateNetwork(ingress) }); err != nil {
		t.Fatal(err)
	}
	service := func(id string, port uint32) *swarm.Service {
		svc := &swarm.Service{ID: id, Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: id}}}
		svc.Spec.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: port}}}
		return svc
	}
	publish := func(tx store.Tx, svc *swarm.Service, before []swarm.PortConfig) error {
		if err := resolvePorts(tx, svc, before); err != nil {
			return err
		}
		return allocateVIPs(tx, svc)
	}
	if err := s.Update(ctx, func(tx store.Tx) error {
		a := service("a", 8080)
		if err := publish(tx, a, nil); err != nil {
			return err
		}
		return tx.CreateService(a)
	}); err != nil {
		t.Fatal(err)
	}
	tries := 0
	err = c.updateAllocating(ctx, func(tx store.Tx) error {
		tries++
		cur, err := tx.Service("a")
		if err != nil {
			return err
		}
		a := service("a", 9090)
		a.Meta, a.Endpoint = cur.Meta, cur.Endpoint
		if err := publish(tx, a, cur.Endpoint.Ports); err != nil {
			return err
		}
		if tries == 1 {
			// A create of b on port 9090, on the snapshot this one read, commits first.
			if err := s.Update(ctx, func(tx store.Tx) error {
				b := service("b", 9090)
				if err := publish(tx, b, nil); err != nil {
					return err
				}
				return tx.CreateService(b)
			}); err != nil {
				return err
			}
		}
		return tx.UpdateService(a)
	})
	if tries != 2 || err == nil || !strings.Contains(err.Error(), "port '9090' is already in use by service 'b'") {
		t.Fatalf("update after %d tries: %v; want the second try refused as the port is b's", tries, err)
	}
}
