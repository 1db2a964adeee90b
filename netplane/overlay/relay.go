package overlay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"

	"github.com/shoal-project/shoal/netplane/dump"
	"github.com/shoal-project/shoal/netplane/namespace"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The relay carries connections to a published port from this node to a task
// on another node with the client's own source address. WireGuard cannot:
// its cryptokey routing drops a packet whose inner source (the outside
// client) is not in the sending peer's AllowedIPs, and routes a reply by its
// destination (the client), which no peer holds. So the client's packet is
// encapsulated from this node's mesh address to the task node's, inside
// WireGuard, and the task node sends the replies back the same way, to the
// node that made the DNAT, by a connection mark and policy routing.
//
// The encapsulation is VXLAN because it is the one tunnel device every kernel
// that runs Docker's overlay has (IPIP, GRE and FOU are often left out, as on
// the machine this was built on): one device per node, no learning, a static
// forwarding entry and a permanent neighbour per peer at a MAC made from its
// mesh address, routed as layer 3 (no bridge, no ARP).
const (
	// RelayDevice names the node's VXLAN device.
	RelayDevice = "shoal-relay"
	// RelayPort is its UDP port. Its packets go between mesh addresses only,
	// inside WireGuard; the input chain drops any that come another way.
	RelayPort = 4790
	relayVNI  = 4790
	// relayOverhead is VXLAN's: outer IPv4, UDP, VXLAN and inner Ethernet.
	relayOverhead = 50
)

// Marks and routing tables of the relay: a tag in the top 12 bits and a
// node's mesh address less the mesh range's prefix below, so a mark names
// the peer node; a peer's table has the number of its mark.
const (
	// markIngress: a packet of a relayed connection on the node that took it
	// (the published port's); its table routes the ingress subnet to the peer
	// that runs the task.
	markIngress uint32 = 0x5e1 << 20
	// markTask: a packet of a relayed connection on the task's node; its
	// table routes everything (the client) back to the node that relayed it.
	markTask    uint32 = 0x5e2 << 20
	markTagMask        = uint32(0xfff) << 20
	// Rule priorities: a packet of the published port's node takes its
	// peer's table; one the task's node sends from the ingress network (a
	// task's reply) takes its peer's. Packets arriving at the task's node
	// from the relay carry their mark too, for the reverse path check, whose
	// lookup is from the task's address; routed to the task, from the client,
	// they find it in main.
	prefIngress = 10900
	prefTask    = 10901
	// protoRelay marks the relay's routes.
	protoRelay netlink.RouteProtocol = 85
	// sandboxTable routes what a task sends from its ingress address back
	// through its ingress interface, inside the task's sandbox.
	sandboxTable = 0x5e3 << 20
	prefSandbox  = 10902
)

// Relay says which connections the routing mesh relays with the client's own
// address. Without one (nil) every connection a published port sends to
// another node is masqueraded to this node's mesh address.
type Relay struct {
	// Self is this node's mesh address; Peers, the other nodes'. Every node
	// of the swarm needs the relay once any service uses it: the task's node
	// answers through it.
	Self  netip.Addr
	Peers []netip.Addr
	// Backends are the ingress addresses of tasks on other nodes whose
	// service keeps its clients' addresses, each with its node's mesh address.
	Backends map[netip.Addr]netip.Addr
}

// relayMark is the mark (and table) of tag for the peer at mesh address a.
func (rs ruleset) relayMark(tag uint32, a netip.Addr) uint32 {
	return relayMark(rs.mesh, tag, a)
}

func relayMark(mesh netip.Prefix, tag uint32, a netip.Addr) uint32 {
	b := a.As4()
	host := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	return tag | host&^(^uint32(0)<<(32-mesh.Bits()))
}

// relayMAC is the relay device's hardware address on the node at mesh
// address a: locally administered, unicast, the address in its last 4 bytes.
func relayMAC(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x02, 0x5e, b[0], b[1], b[2], b[3]}
}

func validateRelay(mesh netip.Prefix, s State) error {
	r := s.Relay
	if r == nil {
		return nil
	}
	if mesh.Bits() < 12 {
		return fmt.Errorf("relay: mesh range %s is wider than /12", mesh)
	}
	if !mesh.Contains(r.Self) {
		return fmt.Errorf("relay: own address %s is not in the mesh range %s", r.Self, mesh)
	}
	for _, p := range r.Peers {
		if !mesh.Contains(p) || p == r.Self {
			return fmt.Errorf("relay: peer %s is not another address of the mesh range %s", p, mesh)
		}
	}
	for b, n := range r.Backends {
		if !b.Is4() || !slices.Contains(r.Peers, n) {
			return fmt.Errorf("relay: backend %s is on %s, not a peer", b, n)
		}
	}
	return nil
}

// relayActive tells whether s has a relay to run: one asked for, and a mesh.
func relayActive(s State) bool { return s.Relay != nil && s.Device != "" }

// syncRelay makes the relay device, its peers' forwarding entries and
// neighbours, the routing tables and the rules match s, or removes them all
// when s has no relay.
func (p *Plane) syncRelay(s State) error {
	if !relayActive(s) {
		return p.removeRelay()
	}
	r := s.Relay
	wgDev, err := p.host.LinkByName(s.Device)
	if err != nil {
		return fmt.Errorf("find device %s: %w", s.Device, err)
	}
	dev, err := p.relayLink(r.Self, wgDev.Attrs().MTU-relayOverhead)
	if err != nil {
		return err
	}
	idx := dev.Attrs().Index
	if err := p.syncRelayNeighbours(idx, r.Peers); err != nil {
		return err
	}
	var ingress netip.Prefix
	for _, n := range s.Networks {
		if n.Ingress {
			ingress = n.Subnet
		}
	}
	if !ingress.IsValid() {
		return fmt.Errorf("relay: no ingress network")
	}
	if err := p.syncRelayRoutes(idx, r.Peers, ingress); err != nil {
		return err
	}
	return p.syncRelayRules(r.Peers, ingress)
}

// relayLink finds the relay device as it should be, or makes it again.
func (p *Plane) relayLink(self netip.Addr, mtu int) (netlink.Link, error) {
	mac := relayMAC(self)
	l, err := p.host.LinkByName(RelayDevice)
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("find %s: %w", RelayDevice, err)
	}
	if l != nil {
		v, ok := l.(*netlink.Vxlan)
		if !ok || v.VxlanId != relayVNI || v.Port != RelayPort || !v.SrcAddr.Equal(self.AsSlice()) ||
			v.HardwareAddr.String() != mac.String() {
			if err := p.host.LinkDel(l); err != nil {
				return nil, fmt.Errorf("replace %s: %w", RelayDevice, err)
			}
			l = nil
		}
	}
	if l == nil {
		v := &netlink.Vxlan{
			LinkAttrs: netlink.LinkAttrs{Name: RelayDevice, MTU: mtu, HardwareAddr: mac},
			VxlanId:   relayVNI, SrcAddr: self.AsSlice(), Port: RelayPort, Learning: false,
		}
		if err := p.host.LinkAdd(v); err != nil {
			return nil, fmt.Errorf("add %s: %w", RelayDevice, err)
		}
		if l, err = p.host.LinkByName(RelayDevice); err != nil {
			return nil, fmt.Errorf("find new %s: %w", RelayDevice, err)
		}
		p.log.Info("client-source relay ready", "device", RelayDevice, "mtu", mtu)
	}
	if l.Attrs().MTU != mtu {
		if err := p.host.LinkSetMTU(l, mtu); err != nil {
			return nil, fmt.Errorf("MTU of %s: %w", RelayDevice, err)
		}
	}
	// Packets arrive here with the client's source, routed back through
	// this device only under their mark: the reverse path check must see
	// the mark, and no loose or strict setting of its own.
	if err := namespace.Run(p.hostNS, func() error {
		for name, v := range map[string]string{"rp_filter": "0", "src_valid_mark": "1"} {
			path := "/proc/sys/net/ipv4/conf/" + RelayDevice + "/" + name
			if err := os.WriteFile(path, []byte(v+"\n"), 0o644); err != nil {
				return fmt.Errorf("set %s: %w", path, err)
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := p.host.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("set %s up: %w", RelayDevice, err)
	}
	return l, nil
}

// syncRelayNeighbours gives every peer a forwarding entry (its MAC at its
// mesh address) and a permanent neighbour (its mesh address at its MAC).
func (p *Plane) syncRelayNeighbours(idx int, peers []netip.Addr) error {
	want := map[string]netip.Addr{}
	for _, a := range peers {
		want[relayMAC(a).String()] = a
	}
	for _, fam := range []int{unix.AF_BRIDGE, unix.AF_INET} {
		have, err := dump.All(func() ([]netlink.Neigh, error) { return p.host.NeighList(idx, fam) })
		if err != nil {
			return fmt.Errorf("list neighbours of %s: %w", RelayDevice, err)
		}
		for _, n := range have {
			if a, ok := want[n.HardwareAddr.String()]; ok && n.IP.Equal(a.AsSlice()) {
				continue
			}
			if fam == unix.AF_BRIDGE && n.Flags&netlink.NTF_SELF == 0 {
				continue
			}
			if err := p.host.NeighDel(&n); err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("remove neighbour %s of %s: %w", n.HardwareAddr, RelayDevice, err)
			}
		}
	}
	for _, a := range peers {
		mac := relayMAC(a)
		if err := p.host.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE,
			State: netlink.NUD_PERMANENT | netlink.NUD_NOARP, Flags: netlink.NTF_SELF,
			IP: a.AsSlice(), HardwareAddr: mac}); err != nil {
			return fmt.Errorf("forwarding entry of %s on %s: %w", a, RelayDevice, err)
		}
		if err := p.host.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_INET,
			State: netlink.NUD_PERMANENT, IP: a.AsSlice(), HardwareAddr: mac}); err != nil {
			return fmt.Errorf("neighbour %s on %s: %w", a, RelayDevice, err)
		}
	}
	return nil
}

// syncRelayRoutes gives every peer two tables: its markIngress one routes the
// ingress subnet to it, its markTask one everything.
func (p *Plane) syncRelayRoutes(idx int, peers []netip.Addr, ingress netip.Prefix) error {
	type key struct {
		table int
		dst   netip.Prefix
	}
	want := map[key]netlink.Route{}
	for _, a := range peers {
		route := func(tag uint32, dst netip.Prefix) {
			t := int(relayMark(p.cfg.MeshRange, tag, a))
			want[key{t, dst}] = netlink.Route{LinkIndex: idx, Dst: ipNet(dst), Gw: a.AsSlice(),
				Flags: int(netlink.FLAG_ONLINK), Table: t, Protocol: protoRelay}
		}
		if ingress.IsValid() {
			route(markIngress, ingress)
		}
		route(markTask, netip.MustParsePrefix("0.0.0.0/0"))
	}
	have, err := p.relayRoutes()
	if err != nil {
		return err
	}
	for _, r := range have {
		dst, ok := prefixOf(r)
		if !ok {
			dst = netip.MustParsePrefix("0.0.0.0/0")
		}
		if w, keep := want[key{r.Table, dst}]; keep && r.LinkIndex == idx && r.Gw.Equal(w.Gw) {
			continue
		}
		if err := p.host.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("remove relay route %s table %d: %w", dst, r.Table, err)
		}
	}
	for k, r := range want {
		if err := p.host.RouteReplace(&r); err != nil {
			return fmt.Errorf("relay route %s table %d: %w", k.dst, k.table, err)
		}
	}
	return nil
}

func (p *Plane) relayRoutes() ([]netlink.Route, error) {
	have, err := dump.All(func() ([]netlink.Route, error) {
		return p.host.RouteListFiltered(netlink.FAMILY_V4,
			&netlink.Route{Protocol: protoRelay, Table: unix.RT_TABLE_UNSPEC},
			netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, fmt.Errorf("list relay routes: %w", err)
	}
	return have, nil
}

// syncRelayRules makes the policy rules: a peer's markIngress to its table,
// and its markTask from the ingress subnet to its table.
func (p *Plane) syncRelayRules(peers []netip.Addr, ingress netip.Prefix) error {
	full := ^uint32(0)
	var want []netlink.Rule
	for _, a := range peers {
		for _, tag := range []uint32{markIngress, markTask} {
			m := relayMark(p.cfg.MeshRange, tag, a)
			r := *netlink.NewRule()
			r.Family, r.Priority, r.Mark, r.Mask, r.Table = unix.AF_INET, prefIngress, m, &full, int(m)
			if tag == markTask {
				r.Priority, r.Src = prefTask, ipNet(ingress)
			}
			want = append(want, r)
		}
	}
	have, err := p.relayRules()
	if err != nil {
		return err
	}
	same := func(a, b netlink.Rule) bool {
		return a.Priority == b.Priority && a.Mark == b.Mark && a.Table == b.Table &&
			a.Mask != nil && b.Mask != nil && *a.Mask == *b.Mask && a.Src.String() == b.Src.String()
	}
	for _, r := range have {
		if slices.ContainsFunc(want, func(w netlink.Rule) bool { return same(w, r) }) {
			continue
		}
		if err := p.host.RuleDel(&r); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove relay rule %s: %w", r, err)
		}
	}
	for _, w := range want {
		if slices.ContainsFunc(have, func(r netlink.Rule) bool { return same(w, r) }) {
			continue
		}
		if err := p.host.RuleAdd(&w); err != nil {
			return fmt.Errorf("add relay rule %s: %w", w, err)
		}
	}
	return nil
}

// relayRules are the policy rules at the relay's priorities.
func (p *Plane) relayRules() ([]netlink.Rule, error) {
	all, err := dump.All(func() ([]netlink.Rule, error) { return p.host.RuleList(netlink.FAMILY_V4) })
	if err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	var out []netlink.Rule
	for _, r := range all {
		if r.Priority >= prefIngress && r.Priority <= prefTask {
			out = append(out, r)
		}
	}
	return out, nil
}

// removeRelay deletes the device (its neighbours and routes go with it), and
// the rules and any route left in the relay's tables.
func (p *Plane) removeRelay() error {
	var errs []error
	if l, err := p.host.LinkByName(RelayDevice); err == nil {
		if err := p.host.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("delete %s: %w", RelayDevice, err))
		}
	} else if !isNotFound(err) {
		errs = append(errs, fmt.Errorf("find %s: %w", RelayDevice, err))
	}
	rules, err := p.relayRules()
	if err != nil {
		errs = append(errs, err)
	}
	for _, r := range rules {
		if err := p.host.RuleDel(&r); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove relay rule %s: %w", r, err))
		}
	}
	routes, err := p.relayRoutes()
	if err != nil {
		errs = append(errs, err)
	}
	for _, r := range routes {
		if err := p.host.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("remove relay route: %w", err))
		}
	}
	return errors.Join(errs...)
}
