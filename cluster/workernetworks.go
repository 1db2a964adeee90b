package cluster

import (
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/session"
)

// workerNetworks are the overlay networks a worker shows (it has no store):
// those its tasks have been on, from the overlay view its agent follows, as
// dockerd's worker shows the swarm networks it has attached. ok is false on a
// manager, or outside a swarm.
func (c *Cluster) workerNetworks() (networks []*swarm.Network, ok bool) {
	c.mu.RLock()
	ag := c.agent
	c.mu.RUnlock()
	if !c.isWorker() || ag == nil {
		return nil, false
	}
	for _, n := range ag.Networks() {
		networks = append(networks, networkOfView(n))
	}
	return networks, true
}

// networkOfView is the swarm network an overlay view describes.
func networkOfView(n session.OverlayNetwork) *swarm.Network {
	ipam := &swarm.IPAMOptions{Driver: swarm.Driver{Name: "default"}}
	if n.Subnet.IsValid() {
		ipam.Configs = []swarm.IPAMConfig{{Subnet: n.Subnet, Gateway: n.Gateway}}
	}
	return &swarm.Network{
		ID:   n.ID,
		Meta: swarm.Meta{CreatedAt: n.Created, UpdatedAt: n.Created},
		Spec: swarm.NetworkSpec{
			Annotations:         swarm.Annotations{Name: n.Name, Labels: n.Labels},
			DriverConfiguration: &swarm.Driver{Name: "overlay", Options: n.Options},
			Internal:            n.Internal,
			Attachable:          n.Attachable,
			Ingress:             n.Ingress,
			IPAMOptions:         ipam,
		},
		DriverState: swarm.Driver{Name: "overlay", Options: n.Options},
		IPAMOptions: ipam,
	}
}
