package overlay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/shoal-project/shoal/netplane/dump"
	"github.com/shoal-project/shoal/netplane/namespace"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultMTU is the MTU an Attachment without one gets: WireGuard's over a
// 1500-byte underlay, so a task's packets fit the mesh unfragmented.
const DefaultMTU = 1420

// hostEndPrefix starts the name of every host end, so that the nftables rules
// match them all with one wildcard and a restarted daemon finds them.
const hostEndPrefix = "sov"

// Attachment is a task sandbox's place on one overlay network.
type Attachment struct {
	NetworkID string
	// Subnet is the network's; the task's address gets its prefix length.
	Subnet netip.Prefix
	// Gateway is the network's gateway address (never a task's): the host
	// end, as the task sees it.
	Gateway netip.Addr
	// Addr is the task's address, in Subnet.
	Addr netip.Addr
	// IfName names the interface inside the sandbox: eth1, eth2, ...
	IfName string
	// MTU of both ends; zero means DefaultMTU.
	MTU int
	// Routes are further prefixes the task reaches through the gateway, such
	// as the mesh range for the ingress network.
	Routes []netip.Prefix
	// SourceRouted sends whatever the task sends from Addr through this
	// interface, whatever the destination (a table and a rule in the
	// sandbox): its replies to clients the routing mesh relays with their own
	// address, which its default route would send elsewhere.
	SourceRouted bool
}

// Endpoint is an attached sandbox interface.
type Endpoint struct {
	// HostIfName is the host end's name, derived from the sandbox and network.
	HostIfName string
	IfName     string
	// MAC is the sandbox end's hardware address.
	MAC       net.HardwareAddr
	Addr      netip.Addr
	NetworkID string
}

// Attach joins the sandbox whose network namespace is at nsPath to a network:
// a veth pair, the sandbox end named a.IfName with a.Addr, the host end
// routing a.Addr/32. Inside, the gateway is a permanent neighbour at the host
// end's MAC and the subnet (and a.Routes) are routed through it, so the task
// never resolves a peer. Spoofed sources are dropped by the table's guard
// (and by the host end's rp_filter, as far as the host's sysctls allow).
//
// Attaching again with the same attachment changes nothing, so a restarted
// daemon re-attaching its tasks keeps their connections; an endpoint of the
// same sandbox and network that differs is replaced.
func (p *Plane) Attach(ctx context.Context, sandboxID, nsPath string, a Attachment) (Endpoint, error) {
	if a.MTU == 0 {
		a.MTU = DefaultMTU
	}
	if err := validateAttachment(sandboxID, a); err != nil {
		return Endpoint{}, fmt.Errorf("attach %s to %s: %w", sandboxID, a.NetworkID, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return Endpoint{}, fmt.Errorf("attach %s to %s: %w", sandboxID, a.NetworkID, errClosed)
	}
	if err := ctx.Err(); err != nil {
		return Endpoint{}, fmt.Errorf("attach %s to %s: %w", sandboxID, a.NetworkID, err)
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return Endpoint{}, fmt.Errorf("attach %s to %s: open netns %s: %w", sandboxID, a.NetworkID, nsPath, err)
	}
	defer ns.Close()
	inside, err := netlink.NewHandleAt(ns)
	if err != nil {
		return Endpoint{}, fmt.Errorf("attach %s to %s: netlink in sandbox: %w", sandboxID, a.NetworkID, err)
	}
	defer inside.Close()

	e := endpointSpec{Attachment: a, hostName: hostEndName(sandboxID, a.NetworkID), alias: endpointAlias(sandboxID, a.NetworkID)}
	ep, err := p.attach(ns, inside, e)
	if err != nil {
		return Endpoint{}, fmt.Errorf("attach %s to %s: %w", sandboxID, a.NetworkID, err)
	}
	return ep, nil
}

// endpointSpec is an attachment with the names derived for it.
type endpointSpec struct {
	Attachment
	hostName string
	alias    string // "<sandbox>/<network>", kept on the host end
}

// attach finds or makes the veth pair of e, then (re)states its addresses,
// neighbours and routes; every step replaces, so a matching endpoint is left
// as it was.
func (p *Plane) attach(ns netns.NsHandle, inside *netlink.Handle, e endpointSpec) (Endpoint, error) {
	hostEnd, peer, err := p.adoptPair(inside, e)
	if err != nil {
		return Endpoint{}, err
	}
	created := hostEnd == nil
	if created {
		if hostEnd, peer, err = p.createPair(ns, inside, e); err != nil {
			return Endpoint{}, err
		}
	} else {
		p.log.Debug("endpoint adopted", "host end", e.hostName, "addr", e.Addr)
	}
	if err := p.configure(inside, hostEnd, peer, e); err != nil {
		// A live endpoint that could not be re-stated is left to carry its
		// connections; only a new one is rolled back.
		if created {
			if derr := p.deleteLink(hostEnd); derr != nil {
				p.log.Warn("roll back endpoint", "host end", e.hostName, "err", derr)
			}
		}
		return Endpoint{}, err
	}
	return Endpoint{
		HostIfName: e.hostName,
		IfName:     e.IfName,
		MAC:        slices.Clone(peer.Attrs().HardwareAddr),
		Addr:       e.Addr,
		NetworkID:  e.NetworkID,
	}, nil
}

// adoptPair returns the existing pair of e when it is what e asks for. A
// host end that differs is deleted (its sandbox end goes with it); so is a
// sandbox interface of that name that is not its peer's.
func (p *Plane) adoptPair(inside *netlink.Handle, e endpointSpec) (hostEnd, peer netlink.Link, err error) {
	hostEnd, err = p.host.LinkByName(e.hostName)
	if err != nil && !isNotFound(err) {
		return nil, nil, fmt.Errorf("find host end %s: %w", e.hostName, err)
	}
	peer, perr := inside.LinkByName(e.IfName)
	if perr != nil && !isNotFound(perr) {
		return nil, nil, fmt.Errorf("find %s in sandbox: %w", e.IfName, perr)
	}
	if hostEnd != nil && peer != nil && pairMatches(inside, hostEnd, peer, e) {
		return hostEnd, peer, nil
	}
	if hostEnd != nil {
		p.log.Info("replacing an endpoint that differs", "host end", e.hostName, "addr", e.Addr)
		if err := p.deleteLink(hostEnd); err != nil {
			return nil, nil, err
		}
	}
	if _, err := inside.LinkByName(e.IfName); err == nil {
		return nil, nil, fmt.Errorf("the sandbox already has an interface %s", e.IfName)
	}
	return nil, nil, nil
}

// pairMatches tells whether hostEnd and peer are one veth pair with the
// names, MTU and address e asks for.
func pairMatches(inside *netlink.Handle, hostEnd, peer netlink.Link, e endpointSpec) bool {
	h, s := hostEnd.Attrs(), peer.Attrs()
	if hostEnd.Type() != "veth" || peer.Type() != "veth" || h.Alias != e.alias ||
		h.ParentIndex != s.Index || s.ParentIndex != h.Index || h.MTU != e.MTU || s.MTU != e.MTU {
		return false
	}
	addrs, err := dump.All(func() ([]netlink.Addr, error) { return inside.AddrList(peer, netlink.FAMILY_V4) })
	if err != nil || len(addrs) != 1 {
		return false
	}
	got, ok := netip.AddrFromSlice(addrs[0].IP)
	ones, _ := addrs[0].Mask.Size()
	return ok && got.Unmap() == e.Addr && ones == e.Subnet.Bits()
}

// createPair makes the veth pair of e with its sandbox end in ns.
func (p *Plane) createPair(ns netns.NsHandle, inside *netlink.Handle, e endpointSpec) (hostEnd, peer netlink.Link, err error) {
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: e.hostName, MTU: e.MTU},
		PeerName:      e.IfName,
		PeerNamespace: netlink.NsFd(int(ns)),
		PeerTxQLen:    -1,
	}
	if err := p.host.LinkAdd(veth); err != nil {
		return nil, nil, fmt.Errorf("add veth %s: %w", e.hostName, err)
	}
	if hostEnd, err = p.host.LinkByName(e.hostName); err != nil {
		return nil, nil, fmt.Errorf("find new host end %s: %w", e.hostName, err)
	}
	// The kernel ignores an alias given at creation. A crash before this
	// leaves a host end that the next Attach replaces, and that the
	// sandbox's namespace takes with it when it goes.
	if err := p.host.LinkSetAlias(hostEnd, e.alias); err != nil {
		_ = p.deleteLink(hostEnd)
		return nil, nil, fmt.Errorf("name the sandbox and network of %s: %w", e.hostName, err)
	}
	if peer, err = inside.LinkByName(e.IfName); err != nil {
		_ = p.deleteLink(hostEnd)
		return nil, nil, fmt.Errorf("find new %s in sandbox: %w", e.IfName, err)
	}
	p.log.Debug("endpoint created", "host end", e.hostName, "addr", e.Addr)
	return hostEnd, peer, nil
}

// configure states everything of e on both ends. Every call replaces, so on
// a configured pair it changes nothing.
func (p *Plane) configure(inside *netlink.Handle, hostEnd, peer netlink.Link, e endpointSpec) error {
	if err := p.setRPFilter(e.hostName); err != nil {
		return err
	}
	if err := p.host.LinkSetUp(hostEnd); err != nil {
		return fmt.Errorf("set %s up: %w", e.hostName, err)
	}
	if err := p.host.NeighSet(&netlink.Neigh{
		LinkIndex: hostEnd.Attrs().Index, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
		IP: e.Addr.AsSlice(), HardwareAddr: peer.Attrs().HardwareAddr,
	}); err != nil {
		return fmt.Errorf("neighbour %s on %s: %w", e.Addr, e.hostName, err)
	}
	if err := p.host.RouteReplace(&netlink.Route{
		LinkIndex: hostEnd.Attrs().Index, Dst: ipNet(netip.PrefixFrom(e.Addr, 32)),
		Scope: netlink.SCOPE_LINK, Protocol: protoEndpoint,
	}); err != nil {
		return fmt.Errorf("route %s to %s: %w", e.Addr, e.hostName, err)
	}
	return configureInside(inside, hostEnd, peer, e)
}

// configureInside gives the sandbox end its address, brings it up and routes
// the subnet and e.Routes through the gateway, a permanent neighbour.
func configureInside(inside *netlink.Handle, hostEnd, peer netlink.Link, e endpointSpec) error {
	idx := peer.Attrs().Index
	// No prefix route: the kernel's "subnet dev ethN" would make the task
	// resolve its peers, which are behind the host end.
	addr := &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(e.Addr, e.Subnet.Bits())), Flags: unix.IFA_F_NOPREFIXROUTE}
	if err := inside.AddrReplace(peer, addr); err != nil {
		return fmt.Errorf("address %s on %s: %w", addr.IPNet, e.IfName, err)
	}
	if err := inside.LinkSetUp(peer); err != nil {
		return fmt.Errorf("set %s up: %w", e.IfName, err)
	}
	if err := inside.NeighSet(&netlink.Neigh{
		LinkIndex: idx, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
		IP: e.Gateway.AsSlice(), HardwareAddr: hostEnd.Attrs().HardwareAddr,
	}); err != nil {
		return fmt.Errorf("neighbour %s on %s: %w", e.Gateway, e.IfName, err)
	}
	for _, dst := range append([]netip.Prefix{e.Subnet}, e.Routes...) {
		if err := inside.RouteReplace(&netlink.Route{
			LinkIndex: idx, Dst: ipNet(dst.Masked()), Gw: e.Gateway.AsSlice(), Flags: int(netlink.FLAG_ONLINK),
		}); err != nil {
			return fmt.Errorf("route %s via %s on %s: %w", dst, e.Gateway, e.IfName, err)
		}
	}
	if e.SourceRouted {
		return sourceRoute(inside, idx, e)
	}
	return nil
}

// sourceRoute makes the sandbox route what it sends from e.Addr through the
// gateway: a default route in a table of the interface's own, and a rule.
func sourceRoute(inside *netlink.Handle, idx int, e endpointSpec) error {
	table := sandboxTable | idx
	if err := inside.RouteReplace(&netlink.Route{LinkIndex: idx, Dst: ipNet(netip.MustParsePrefix("0.0.0.0/0")),
		Gw: e.Gateway.AsSlice(), Flags: int(netlink.FLAG_ONLINK), Table: table}); err != nil {
		return fmt.Errorf("default route via %s on %s in table %d: %w", e.Gateway, e.IfName, table, err)
	}
	rules, err := dump.All(func() ([]netlink.Rule, error) { return inside.RuleList(netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("list rules in sandbox: %w", err)
	}
	for _, r := range rules {
		if r.Priority == prefSandbox && r.Table == table && r.Src != nil && r.Src.IP.Equal(e.Addr.AsSlice()) {
			return nil
		}
	}
	r := netlink.NewRule()
	r.Family, r.Priority, r.Table, r.Src = unix.AF_INET, prefSandbox, table, ipNet(netip.PrefixFrom(e.Addr, 32))
	if err := inside.RuleAdd(r); err != nil {
		return fmt.Errorf("rule from %s in sandbox: %w", e.Addr, err)
	}
	return nil
}

// setRPFilter makes the host end drop packets whose source is not routed back
// through it: a task cannot send as another task. The table's guard does the
// same whatever the sysctls say; this is the second line. /proc/sys/net belongs to
// the namespace of the opening thread, hence a thread in the host's.
func (p *Plane) setRPFilter(name string) error {
	path := "/proc/sys/net/ipv4/conf/" + name + "/rp_filter"
	return namespace.Run(p.hostNS, func() error {
		if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("strict reverse path filter on %s: %w", name, err)
		}
		return nil
	})
}

// Detach removes every endpoint of the sandbox. Missing ones are not an error;
// the sandbox's namespace itself belongs to its maker.
func (p *Plane) Detach(ctx context.Context, sandboxID string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("detach %s: %w", sandboxID, errClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("detach %s: %w", sandboxID, err)
	}
	ends, err := p.hostEnds()
	if err != nil {
		return fmt.Errorf("detach %s: %w", sandboxID, err)
	}
	var errs []error
	for _, l := range ends {
		if strings.HasPrefix(l.Attrs().Alias, sandboxID+"/") {
			errs = append(errs, p.deleteLink(l))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("detach %s: %w", sandboxID, err)
	}
	return nil
}

// hostEnds lists the host ends in the Plane's namespace.
func (p *Plane) hostEnds() ([]netlink.Link, error) {
	links, err := dump.All(func() ([]netlink.Link, error) { return p.host.LinkList() })
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var ends []netlink.Link
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, hostEndPrefix) && l.Type() == "veth" {
			ends = append(ends, l)
		}
	}
	return ends, nil
}

// deleteLink deletes a host end; its peer, routes and neighbours go with it.
func (p *Plane) deleteLink(l netlink.Link) error {
	if err := p.host.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s: %w", l.Attrs().Name, err)
	}
	return nil
}

// hostEndName names the host end of a sandbox's endpoint on a network: the
// same for the same pair, so a restarted daemon finds it, within IFNAMSIZ.
func hostEndName(sandboxID, networkID string) string {
	sum := sha256.Sum256([]byte(endpointAlias(sandboxID, networkID)))
	return hostEndPrefix + hex.EncodeToString(sum[:])[:15-len(hostEndPrefix)]
}

func endpointAlias(sandboxID, networkID string) string { return sandboxID + "/" + networkID }

func validateAttachment(sandboxID string, a Attachment) error {
	for what, id := range map[string]string{"sandbox": sandboxID, "network": a.NetworkID} {
		if id == "" || len(id) > 128 || strings.ContainsAny(id, "/\x00") {
			return fmt.Errorf("invalid %s id %q", what, id)
		}
	}
	switch {
	case !a.Subnet.IsValid() || !a.Subnet.Addr().Is4() || a.Subnet.Bits() > 30:
		return fmt.Errorf("subnet %s: want an IPv4 prefix of /30 or wider", a.Subnet)
	case !a.Subnet.Contains(a.Gateway):
		return fmt.Errorf("gateway %s is not in %s", a.Gateway, a.Subnet)
	case !a.Subnet.Contains(a.Addr) || a.Addr == a.Gateway || a.Addr == a.Subnet.Masked().Addr():
		return fmt.Errorf("address %s: want one of %s other than its network and gateway", a.Addr, a.Subnet)
	case a.IfName == "" || len(a.IfName) > 15 || strings.ContainsAny(a.IfName, "/ \x00"):
		return fmt.Errorf("invalid interface name %q", a.IfName)
	case a.MTU < 576 || a.MTU > 65535:
		return fmt.Errorf("MTU %d out of range", a.MTU)
	}
	for _, r := range a.Routes {
		if !r.IsValid() || !r.Addr().Is4() {
			return fmt.Errorf("route %s: want an IPv4 prefix", r)
		}
	}
	return nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
