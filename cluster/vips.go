package cluster

import (
	"context"
	"errors"
	"slices"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/ipam"
	"github.com/shoal-project/shoal/cluster/nodenet"
	"github.com/shoal-project/shoal/cluster/store"
)

// resolveNetworks names each network of a service spec by its ID, as dockerd
// stores them, refusing a network that does not exist, the ingress network
// (joined only through published ports) and a network named twice. The
// node-local host and bridge networks are named by their IDs (nodenet); a
// service on the host network joins no other.
func resolveNetworks(tx store.ReadTx, spec *swarm.ServiceSpec) error {
	in := spec.TaskTemplate.Networks
	if len(in) == 0 {
		return nil
	}
	out := make([]swarm.NetworkAttachmentConfig, 0, len(in))
	seen := map[string]bool{}
	for _, na := range in {
		if id, ok := nodenet.Resolve(na.Target); ok {
			if seen[id] {
				return errInvalidf("rpc error: code = InvalidArgument desc = duplicate network attachment: network %s", na.Target)
			}
			seen[id] = true
			na.Target = id
			out = append(out, na)
			continue
		}
		if na.Target == "none" {
			return errNotFoundf("could not find the corresponding predefined swarm network: network none not found")
		}
		n, err := findNetwork(tx, na.Target)
		if err != nil {
			if isNotFound(err) {
				return errNotFoundf("network %s not found", na.Target)
			}
			return err
		}
		if n.Spec.Ingress {
			return errInvalidf("rpc error: code = InvalidArgument desc = Service cannot be explicitly attached to the ingress network %q", n.Spec.Name)
		}
		if seen[n.ID] {
			return errInvalidf("rpc error: code = InvalidArgument desc = duplicate network attachment: network %s", n.Spec.Name)
		}
		seen[n.ID] = true
		na.Target = n.ID
		out = append(out, na)
	}
	spec.TaskTemplate.Networks = out
	if seen[nodenet.ID(nodenet.Host)] {
		return validateHostNetwork(*spec)
	}
	return nil
}

// validateHostNetwork refuses what a service on the host network cannot have:
// other networks, and ports published other than on the task's own port of
// each node (its tasks listen on the node's addresses: there is no address to
// forward a routing-mesh port or another host port to). dockerd takes both
// and its tasks fail, or it drops the ports.
func validateHostNetwork(spec swarm.ServiceSpec) error {
	if len(spec.TaskTemplate.Networks) > 1 {
		return errInvalidf("rpc error: code = InvalidArgument desc = a service on the host network cannot join other networks: its tasks run in the node's own network namespace")
	}
	for _, p := range endpointOf(spec).Spec.Ports {
		if p.PublishMode != swarm.PortConfigPublishModeHost {
			return errInvalidf("rpc error: code = InvalidArgument desc = a service on the host network cannot publish port %d through the routing mesh: its tasks listen on the node's own addresses (publish it with mode=host)", p.TargetPort)
		}
		if p.PublishedPort != 0 && p.PublishedPort != p.TargetPort {
			return errInvalidf("rpc error: code = InvalidArgument desc = a service on the host network listens on port %d of the node itself: it cannot be published as port %d", p.TargetPort, p.PublishedPort)
		}
	}
	return nil
}

// allocateVIPs gives a service in vip mode one virtual IP on each network its
// tasks join (the ingress network's too while it publishes through the routing
// mesh), keeping the VIPs it already has on them; a service in dnsrr mode has
// none. Each network it takes an address from is claimed (claimAddresses).
func allocateVIPs(tx store.Tx, svc *swarm.Service) error {
	networks, err := tx.Networks()
	if err != nil {
		return err
	}
	var want []string
	if endpointOf(svc.Spec).Spec.Mode != swarm.ResolutionModeDNSRR {
		for _, na := range serviceNetworks(svc.Spec) {
			want = append(want, na.Target)
		}
	}
	if publishesIngress(svc) {
		ingress := slices.IndexFunc(networks, func(n *swarm.Network) bool { return n.Spec.Ingress })
		if ingress < 0 {
			return errInvalidf("rpc error: code = FailedPrecondition desc = service needs ingress network, but no ingress network is present")
		}
		if endpointOf(svc.Spec).Spec.Mode != swarm.ResolutionModeDNSRR {
			want = append(want, networks[ingress].ID)
		}
	}
	var keep []swarm.EndpointVirtualIP
	for _, id := range want {
		if i := slices.IndexFunc(svc.Endpoint.VirtualIPs, func(v swarm.EndpointVirtualIP) bool { return v.NetworkID == id }); i >= 0 {
			keep = append(keep, svc.Endpoint.VirtualIPs[i])
			continue
		}
		keep = append(keep, swarm.EndpointVirtualIP{NetworkID: id})
	}
	var space *ipam.Space
	for i := range keep {
		if keep[i].Addr.IsValid() {
			continue
		}
		if space == nil {
			if space, err = buildSpace(tx, networks); err != nil {
				return err
			}
		}
		addr, err := space.Allocate(keep[i].NetworkID)
		if err != nil {
			return errInvalidf("rpc error: code = ResourceExhausted desc = allocate a virtual IP: %v", err)
		}
		keep[i].Addr = addr
		if err := claimAddresses(tx, networks, keep[i].NetworkID); err != nil {
			return err
		}
	}
	svc.Endpoint.VirtualIPs = keep
	return nil
}

// buildSpace reads what every overlay network has taken.
func buildSpace(tx store.ReadTx, networks []*swarm.Network) (*ipam.Space, error) {
	services, err := tx.Services()
	if err != nil {
		return nil, err
	}
	tasks, err := tx.Tasks()
	if err != nil {
		return nil, err
	}
	return ipam.Build(networks, services, tasks, nil), nil
}

// claimAddresses writes the network an address was just taken from back
// unchanged, so that its version moves: two writes that each took an address
// from one network on the same snapshot (a service's VIP and a task's address,
// or two services' VIPs) then conflict in the store, and the later one is
// refused as out of sequence and tried again on a fresh snapshot, instead of
// both committing the same address. Only the network's version changes.
func claimAddresses(tx store.Tx, networks []*swarm.Network, id string) error {
	for _, n := range networks {
		if n.ID == id {
			return tx.UpdateNetwork(n)
		}
	}
	return nil
}

// allocationAttempts bounds the tries of a write that takes addresses.
const allocationAttempts = 5

// updateAllocating is update tried again on a fresh snapshot while the store
// refuses the write as out of sequence: a write that takes addresses conflicts
// with any other that took one from the same network (claimAddresses). fn
// must build everything it writes from what it reads.
func (c *Cluster) updateAllocating(ctx context.Context, fn func(tx store.Tx) error) error {
	var err error
	for range allocationAttempts {
		err = c.update(ctx, fn)
		var ce conflictError
		if !errors.As(err, &ce) || ce.msg != errOutOfSequence {
			return err
		}
	}
	return err
}
