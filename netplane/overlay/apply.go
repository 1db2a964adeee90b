package overlay

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/shoal-project/shoal/netplane/dump"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Route protocols mark the routes a Plane makes, so that Apply and Teardown
// find their own among the host's (values free in iproute2's rt_protos).
const (
	protoNetwork  netlink.RouteProtocol = 83 // "subnet dev <Device>" or "unreachable subnet"
	protoEndpoint netlink.RouteProtocol = 84 // "addr/32 dev <host end>"
)

// Network is an overlay network as this node's data plane needs it. Its
// gateway is its subnet's first address, as in every Attachment to it.
type Network struct {
	ID     string
	Subnet netip.Prefix
	// Ingress marks the routing mesh's network: it and the mesh range reach
	// each other, and published ports reach its tasks on other nodes.
	Ingress bool
	// Internal networks need nothing of the host beyond others: overlay
	// subnets never route out, and the agent leaves their tasks without a
	// default route.
	Internal bool
}

// VIP is a service's virtual address, balanced over its tasks' addresses on
// the same network, on this node or others.
type VIP struct {
	Addr     netip.Addr
	Backends []netip.Addr
}

// State is what a node's overlay data plane should be.
type State struct {
	// Device is the node's WireGuard interface, which reaches other nodes'
	// tasks. Empty before the node has a mesh: networks are then unreachable
	// beyond this node.
	Device   string
	Networks []Network
	VIPs     []VIP
	// Relay, when set, carries published-port connections to the tasks of
	// services that keep their clients' addresses on other nodes with the
	// client's own source address (see Relay); nil keeps the masquerade for
	// every one.
	Relay *Relay
}

// Apply makes the node's network routes and the Plane's nftables table match
// s. The table is rewritten in one netlink batch, so the kernel moves from
// the old rules to the new at once and conntrack keeps every established
// connection on its backend. Connections to a backend a VIP no longer has
// are forgotten, so their next packet fails fast instead of hanging.
func (p *Plane) Apply(ctx context.Context, s State) error {
	s = normalize(s)
	if err := validateState(s); err != nil {
		return fmt.Errorf("apply overlay state: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("apply overlay state: %w", errClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("apply overlay state: %w", err)
	}
	if err := validateRelay(p.cfg.MeshRange, s); err != nil {
		return fmt.Errorf("apply overlay state: %w", err)
	}
	if err := p.syncNetworkRoutes(s); err != nil {
		return fmt.Errorf("apply overlay state: %w", err)
	}
	if err := p.syncRelay(s); err != nil {
		// A kernel without VXLAN, say: connections across nodes are
		// masqueraded as without the relay, and the rest of s applies.
		p.log.Warn("the routing mesh's client-source relay is off", "err", err)
		if rerr := p.removeRelay(); rerr != nil {
			p.log.Debug("remove the relay", "err", rerr)
		}
		s.Relay = nil
	}
	rs := ruleset{table: p.cfg.Table, mesh: p.cfg.MeshRange, state: s}
	if err := rs.apply(p.nft); err != nil {
		return fmt.Errorf("apply overlay state: %w", err)
	}
	if p.applied != nil {
		p.forgetRemovedBackends(*p.applied, s)
	}
	p.applied = &s
	p.log.Debug("overlay state applied", "device", s.Device, "networks", len(s.Networks), "vips", len(s.VIPs))
	return nil
}

// normalize sorts s so that equal states make equal tables.
func normalize(s State) State {
	s.Networks = slices.Clone(s.Networks)
	slices.SortFunc(s.Networks, func(a, b Network) int { return a.Subnet.Addr().Compare(b.Subnet.Addr()) })
	vips := make([]VIP, len(s.VIPs))
	for i, v := range s.VIPs {
		v.Backends = slices.Clone(v.Backends)
		slices.SortFunc(v.Backends, netip.Addr.Compare)
		v.Backends = slices.Compact(v.Backends)
		vips[i] = v
	}
	slices.SortFunc(vips, func(a, b VIP) int { return a.Addr.Compare(b.Addr) })
	s.VIPs = vips
	for i := range s.Networks {
		s.Networks[i].Subnet = s.Networks[i].Subnet.Masked()
	}
	return s
}

func validateState(s State) error {
	if len(s.Device) > 15 {
		return fmt.Errorf("device name %q is longer than 15 bytes", s.Device)
	}
	ingress := 0
	for _, n := range s.Networks {
		if !n.Subnet.IsValid() || !n.Subnet.Addr().Is4() {
			return fmt.Errorf("network %s: subnet %s is not an IPv4 prefix", n.ID, n.Subnet)
		}
		if n.Ingress {
			ingress++
		}
	}
	if ingress > 1 {
		return fmt.Errorf("%d ingress networks, want at most one", ingress)
	}
	for i, v := range s.VIPs {
		if !v.Addr.Is4() {
			return fmt.Errorf("VIP %s is not an IPv4 address", v.Addr)
		}
		if i > 0 && s.VIPs[i-1].Addr == v.Addr {
			return fmt.Errorf("VIP %s is given twice", v.Addr)
		}
		for _, b := range v.Backends {
			if !b.Is4() {
				return fmt.Errorf("VIP %s: backend %s is not an IPv4 address", v.Addr, b)
			}
		}
	}
	return nil
}

// syncNetworkRoutes routes every subnet of s to the Device (the tasks of
// other nodes; this node's win by their /32s), or makes it unreachable when
// there is no Device, and removes the routes of networks s no longer has.
func (p *Plane) syncNetworkRoutes(s State) error {
	want := map[netip.Prefix]netlink.Route{}
	var device netlink.Link
	if s.Device != "" {
		var err error
		if device, err = p.host.LinkByName(s.Device); err != nil {
			return fmt.Errorf("find device %s: %w", s.Device, err)
		}
	}
	for _, n := range s.Networks {
		r := netlink.Route{Dst: ipNet(n.Subnet), Protocol: protoNetwork}
		if device != nil {
			r.LinkIndex, r.Scope = device.Attrs().Index, netlink.SCOPE_LINK
		} else {
			r.Type = unix.RTN_UNREACHABLE
		}
		want[n.Subnet] = r
	}
	have, err := dump.All(func() ([]netlink.Route, error) {
		return p.host.RouteListFiltered(netlink.FAMILY_V4,
			&netlink.Route{Protocol: protoNetwork, Table: unix.RT_TABLE_MAIN},
			netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return fmt.Errorf("list network routes: %w", err)
	}
	for _, r := range have {
		dst, ok := prefixOf(r)
		if _, keep := want[dst]; ok && keep {
			continue
		}
		if err := p.host.RouteDel(&r); err != nil {
			return fmt.Errorf("remove route %s: %w", r.Dst, err)
		}
	}
	for dst, r := range want {
		if err := p.host.RouteReplace(&r); err != nil {
			return fmt.Errorf("route %s: %w", dst, err)
		}
	}
	return nil
}

func prefixOf(r netlink.Route) (netip.Prefix, bool) {
	if r.Dst == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(r.Dst.IP)
	ones, _ := r.Dst.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), ok
}

// forgetRemovedBackends drops the conntrack entries of connections to a VIP
// that went to a backend the VIP no longer has: their next packet is balanced
// afresh and refused there, instead of going on to an address that left.
// Best effort: the conntrack netlink interface may be missing.
func (p *Plane) forgetRemovedBackends(old, cur State) {
	now := map[netip.Addr][]netip.Addr{}
	for _, v := range cur.VIPs {
		now[v.Addr] = v.Backends
	}
	for _, v := range old.VIPs {
		for _, b := range v.Backends {
			if slices.Contains(now[v.Addr], b) {
				continue
			}
			f := &netlink.ConntrackFilter{}
			if err := f.AddIP(netlink.ConntrackOrigDstIP, v.Addr.AsSlice()); err != nil {
				continue
			}
			if err := f.AddIP(netlink.ConntrackReplySrcIP, b.AsSlice()); err != nil {
				continue
			}
			if _, err := p.host.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f); err != nil {
				p.log.Debug("forget connections of a removed backend", "vip", v.Addr, "backend", b, "err", err)
			}
		}
	}
}
