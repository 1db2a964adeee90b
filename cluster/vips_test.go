package cluster

import (
	"context"
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
