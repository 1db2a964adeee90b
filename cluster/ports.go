package cluster

import (
	"fmt"
	"slices"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/store"
)

// The range dynamic ingress ports come from, as Docker's.
const (
	ingressPortMin = 30000
	ingressPortMax = 32767
)

// resolvePorts sets svc.Endpoint.Ports from its spec: protocol and mode defaulted,
// and each ingress port without a published port given one from the dynamic range
// (the one it had before, if it had one). An ingress port another service already
// publishes is refused, as Docker refuses it. A port the service did not publish
// before claims the ingress network (claimAddresses): two writes that each took
// one port on the same snapshot then conflict, and the later is tried again and
// refused, instead of both publishing it.
func resolvePorts(tx store.Tx, svc *swarm.Service, before []swarm.PortConfig) error {
	ports := endpointOf(svc.Spec).Ports
	used := map[string]string{} // "proto/port" -> service name
	services, err := tx.Services()
	if err != nil {
		return err
	}
	for _, other := range services {
		if other.ID == svc.ID {
			continue
		}
		for _, p := range other.Endpoint.Ports {
			if p.PublishMode == swarm.PortConfigPublishModeIngress && p.PublishedPort != 0 {
				used[portID(p)] = other.Spec.Name
			}
		}
	}
	claim := false
	for i := range ports {
		p := &ports[i]
		if p.PublishMode != swarm.PortConfigPublishModeIngress {
			continue
		}
		if p.PublishedPort == 0 {
			p.PublishedPort = previousPort(*p, before)
		}
		if p.PublishedPort == 0 {
			for port := uint32(ingressPortMin); port <= ingressPortMax && p.PublishedPort == 0; port++ {
				q := *p
				q.PublishedPort = port
				if _, taken := used[portID(q)]; !taken {
					p.PublishedPort = port
				}
			}
			if p.PublishedPort == 0 {
				return errInvalidf("rpc error: code = ResourceExhausted desc = no free port left in the dynamic range %d-%d", ingressPortMin, ingressPortMax)
			}
		}
		if owner, taken := used[portID(*p)]; taken {
			return errInvalidf("rpc error: code = InvalidArgument desc = port '%d' is already in use by service '%s' as an ingress port", p.PublishedPort, owner)
		}
		used[portID(*p)] = svc.Spec.Name
		if !slices.ContainsFunc(before, func(b swarm.PortConfig) bool { return b.PublishMode == p.PublishMode && portID(b) == portID(*p) }) {
			claim = true
		}
	}
	if claim {
		if err := claimIngress(tx); err != nil {
			return err
		}
	}
	svc.Endpoint.Spec = endpointOf(svc.Spec).Spec
	svc.Endpoint.Ports = ports
	return nil
}

// claimIngress writes the ingress network back unchanged, if there is one
// (see claimAddresses).
func claimIngress(tx store.Tx) error {
	networks, err := tx.Networks()
	if err != nil {
		return err
	}
	for _, n := range networks {
		if n.Spec.Ingress {
			return claimAddresses(tx, networks, n.ID)
		}
	}
	return nil
}

func portID(p swarm.PortConfig) string { return fmt.Sprintf("%s/%d", p.Protocol, p.PublishedPort) }

// previousPort is the published port an earlier version of the service had for the
// same dynamic ingress port, or 0.
func previousPort(p swarm.PortConfig, before []swarm.PortConfig) uint32 {
	for _, b := range before {
		if b.PublishMode == p.PublishMode && b.Protocol == p.Protocol && b.TargetPort == p.TargetPort && b.Name == p.Name {
			return b.PublishedPort
		}
	}
	return 0
}
