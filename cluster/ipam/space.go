package ipam

import (
	"fmt"
	"net/netip"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/nodenet"
	"github.com/shoal-project/shoal/cluster/taskstate"
)

// Space is what is taken in every overlay network of the swarm, read from the
// store: networks' gateways, services' VIPs and the attachments of tasks that have
// not ended.
type Space struct {
	nets    map[string]*Subnet
	cursors map[string]netip.Addr
}

// Build reads the taken addresses from the store's objects. Networks whose
// allocation is unreadable are left out (nothing can be allocated in them).
// cursors (kept by the caller between builds, may be nil) remember the last
// address handed out in each network, so that the next one follows it.
func Build(networks []*swarm.Network, services []*swarm.Service, tasks []*swarm.Task, cursors map[string]netip.Addr) *Space {
	if cursors == nil {
		cursors = map[string]netip.Addr{}
	}
	s := &Space{nets: map[string]*Subnet{}, cursors: cursors}
	for _, n := range networks {
		if sub, ok := SubnetOf(n); ok {
			s.nets[n.ID] = sub
		}
	}
	for _, svc := range services {
		for _, vip := range svc.Endpoint.VirtualIPs {
			if sub := s.nets[vip.NetworkID]; sub != nil && vip.Addr.IsValid() {
				sub.Use(vip.Addr.Addr())
			}
		}
	}
	for _, t := range tasks {
		if !Holds(t) {
			continue
		}
		for _, na := range t.NetworksAttachments {
			if sub := s.nets[na.Network.ID]; sub != nil {
				for _, a := range na.Addresses {
					sub.Use(a.Addr())
				}
			}
		}
	}
	return s
}

// Allocate hands out the next free address of a network, as a prefix with the
// subnet's length (how Docker shows task and VIP addresses).
func (s *Space) Allocate(networkID string) (netip.Prefix, error) {
	sub := s.nets[networkID]
	if sub == nil {
		return netip.Prefix{}, fmt.Errorf("network %s has no address space", networkID)
	}
	a, err := sub.Allocate(s.cursors[networkID])
	if err != nil {
		return netip.Prefix{}, err
	}
	s.cursors[networkID] = a
	return netip.PrefixFrom(a, sub.Prefix.Bits()), nil
}

// Attach gives a task an address on each network it joins, in order, as
// swarmkit lists them: when it publishes a port through the routing mesh, the
// ingress network (nil when the swarm has none), then the swarm networks of
// its spec (the node-local host and bridge networks have no addresses).
// Networks are looked up in byID; a task that already has attachments keeps
// them.
func (s *Space) Attach(t *swarm.Task, byID map[string]*swarm.Network, ingress *swarm.Network) error {
	if len(t.NetworksAttachments) > 0 {
		return nil
	}
	var want []*swarm.Network
	if ingress != nil && publishesIngress(t) {
		want = append(want, ingress)
	}
	for _, na := range nodenet.SwarmNetworks(t.Spec) {
		n := byID[na.Target]
		if n == nil {
			return fmt.Errorf("network %s not found", na.Target)
		}
		want = append(want, n)
	}
	var out []swarm.NetworkAttachment
	for _, n := range want {
		addr, err := s.Allocate(n.ID)
		if err != nil {
			return fmt.Errorf("allocate an address on network %s: %w", n.Spec.Name, err)
		}
		out = append(out, swarm.NetworkAttachment{Network: *n, Addresses: []netip.Prefix{addr}})
	}
	t.NetworksAttachments = out
	return nil
}

// publishesIngress reports whether a task's service publishes a port through
// the routing mesh (the task carries its service's ports).
func publishesIngress(t *swarm.Task) bool {
	for _, p := range t.Status.PortStatus.Ports {
		if p.PublishMode == swarm.PortConfigPublishModeIngress || p.PublishMode == "" {
			return true
		}
	}
	return false
}

// Holds reports whether a task still holds its addresses: until it has ended.
func Holds(t *swarm.Task) bool { return !taskstate.Terminal(t.Status.State) }

// Subnet is a network's address space in s, nil for a network s does not know.
func (s *Space) Subnet(networkID string) *Subnet { return s.nets[networkID] }

// SubnetOf is the address space a network was allocated (its first IPAM config).
func SubnetOf(n *swarm.Network) (*Subnet, bool) {
	if n.IPAMOptions == nil || len(n.IPAMOptions.Configs) == 0 {
		return nil, false
	}
	c := n.IPAMOptions.Configs[0]
	sub, err := NewSubnet(c.Subnet, c.Range, c.Gateway)
	if err != nil {
		return nil, false
	}
	return sub, true
}

// Prefixes are the subnets of networks, for NextSubnet's taken list.
func Prefixes(networks []*swarm.Network) []netip.Prefix {
	var out []netip.Prefix
	for _, n := range networks {
		if n.IPAMOptions != nil {
			for _, c := range n.IPAMOptions.Configs {
				if c.Subnet.IsValid() {
					out = append(out, c.Subnet)
				}
			}
		}
	}
	return out
}
