package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/session"
	"github.com/shoal-project/shoal/netplane/dns"
	"github.com/shoal-project/shoal/netplane/overlay"
	"github.com/shoal-project/shoal/runtime/container"
)

// Overlay is what the agent needs of the node's overlay data plane
// (*overlay.Plane implements it).
type Overlay interface {
	Attach(ctx context.Context, sandboxID, nsPath string, a overlay.Attachment) (overlay.Endpoint, error)
	Detach(ctx context.Context, sandboxID string) error
	Apply(ctx context.Context, s overlay.State) error
}

// Resolver is what the agent needs of the node's embedded DNS server
// (*dns.Server implements it).
type Resolver interface {
	Serve(ctx context.Context, sandboxID, nsPath string, networks []string) error
	Stop(sandboxID string) error
	Table() *dns.Table
}

// embeddedDNS is where a task container on an overlay network asks names.
var embeddedDNS = netip.MustParseAddr("127.0.0.11")

// mtuOption is Docker's driver option for a network's MTU.
const mtuOption = "com.docker.network.driver.mtu"

// attachOverlay gives a task's sandbox an interface on each overlay network
// it holds an address in (eth1, eth2, ... in the order of its attachments) and
// starts the embedded DNS in it; it returns the endpoints for the container's
// inspect. A task without attachments, or a node without an overlay plane,
// gets nothing.
func (a *Agent) attachOverlay(ctx context.Context, t *swarm.Task, nsPath string) ([]container.NetworkEndpoint, error) {
	if a.cfg.Overlay == nil || len(t.NetworksAttachments) == 0 {
		return nil, nil
	}
	aliases := map[string][]string{}
	for _, na := range t.Spec.Networks {
		aliases[na.Target] = na.Aliases
	}
	var eps []container.NetworkEndpoint
	var networks []string
	mtu := 0
	if a.cfg.OverlayMTU != nil {
		mtu = a.cfg.OverlayMTU()
	}
	for i, na := range t.NetworksAttachments {
		att, err := attachmentOf(na, i+1, mtu)
		if err != nil {
			return nil, err
		}
		ep, err := a.cfg.Overlay.Attach(ctx, t.ID, nsPath, att)
		if err != nil {
			return nil, fmt.Errorf("attach to network %s: %w", na.Network.Spec.Name, err)
		}
		eps = append(eps, container.NetworkEndpoint{
			Name: na.Network.Spec.Name, NetworkID: na.Network.ID,
			Address: netip.PrefixFrom(att.Addr, att.Subnet.Bits()), Gateway: att.Gateway,
			MAC: ep.MAC.String(), Aliases: aliases[na.Network.ID],
		})
		networks = append(networks, na.Network.ID)
	}
	if a.cfg.DNS != nil {
		// A sandbox served before (the task restarted in it, or the daemon
		// restarted) gets fresh sockets: the old ones may be gone.
		if err := a.cfg.DNS.Stop(t.ID); err != nil && !errors.Is(err, dns.ErrUnknownSandbox) {
			a.log.Debug("stop embedded DNS", "task", t.ID, "err", err)
		}
		if err := a.cfg.DNS.Serve(ctx, t.ID, nsPath, networks); err != nil {
			return nil, fmt.Errorf("start the embedded DNS: %w", err)
		}
	}
	return eps, nil
}

// attachmentOf is what the data plane needs of a task's attachment n, its
// interface sized mtu (the mesh's; 0 for the data plane's default) unless
// the network sets its own.
func attachmentOf(na swarm.NetworkAttachment, n, mtu int) (overlay.Attachment, error) {
	nw := na.Network
	if len(na.Addresses) == 0 || nw.IPAMOptions == nil || len(nw.IPAMOptions.Configs) == 0 {
		return overlay.Attachment{}, fmt.Errorf("network %s: the task has no address in it", nw.Spec.Name)
	}
	cfg := nw.IPAMOptions.Configs[0]
	att := overlay.Attachment{
		NetworkID: nw.ID, Subnet: cfg.Subnet, Gateway: cfg.Gateway,
		Addr: na.Addresses[0].Addr(), IfName: "eth" + strconv.Itoa(n), MTU: mtu,
	}
	if d := nw.Spec.DriverConfiguration; d != nil {
		if v, ok := d.Options[mtuOption]; ok {
			mtu, err := strconv.Atoi(v)
			if err != nil || mtu < 576 || mtu > 9000 {
				return overlay.Attachment{}, fmt.Errorf("network %s: %s=%q: an MTU from 576 to 9000", nw.Spec.Name, mtuOption, v)
			}
			att.MTU = mtu
		}
	}
	if nw.Spec.Ingress {
		// Connections the routing mesh brings from other nodes come from their
		// mesh addresses: answer them through the same interface.
		att.Routes = []netip.Prefix{overlay.DefaultMeshRange}
		// Clients the routing mesh relays from other nodes keep their own
		// addresses (a service's choice): the task answers them through
		// this interface too, not its default route.
		att.SourceRouted = true
	}
	return att, nil
}

// usesEmbeddedDNS reports whether a task's container asks the embedded DNS:
// it joins an overlay network and its service names no nameservers of its own.
func (a *Agent) usesEmbeddedDNS(t *swarm.Task) bool {
	if a.cfg.DNS == nil || a.cfg.Overlay == nil || len(t.NetworksAttachments) == 0 {
		return false
	}
	cs := t.Spec.ContainerSpec
	return cs == nil || cs.DNSConfig == nil || len(cs.DNSConfig.Nameservers) == 0
}

// detachOverlay undoes attachOverlay for a task whose sandbox goes.
func (a *Agent) detachOverlay(ctx context.Context, taskID string) {
	if a.cfg.DNS != nil {
		if err := a.cfg.DNS.Stop(taskID); err != nil && !errors.Is(err, dns.ErrUnknownSandbox) {
			a.log.Debug("stop embedded DNS", "task", taskID, "err", err)
		}
	}
	if a.cfg.Overlay != nil {
		if err := a.cfg.Overlay.Detach(ctx, taskID); err != nil {
			a.log.Warn("detach a task from its overlay networks", "task", taskID, "err", err)
		}
	}
}

// applyOverlay makes the node's data plane, names and routing mesh match the
// last overlay view.
func (a *Agent) applyOverlay(ctx context.Context) {
	v := a.view
	if v == nil {
		return
	}
	if a.cfg.Overlay != nil {
		device := ""
		if a.cfg.MeshDevice != nil {
			device = a.cfg.MeshDevice()
		}
		if err := a.cfg.Overlay.Apply(ctx, planeState(v, device, a.cfg.NodeID)); err != nil {
			a.log.Warn("apply the overlay networks", "err", err)
		}
	}
	if a.cfg.DNS != nil {
		a.cfg.DNS.Table().Replace(records(v))
	}
	published := map[string]bool{}
	for _, s := range v.Services {
		if len(s.Ports) > 0 {
			published[s.ID] = true
		}
	}
	for id := range a.ingress {
		published[id] = true
	}
	for id := range published {
		a.refreshIngress(ctx, id)
	}
}

// planeState is the data plane a view asks for: every network, each VIP
// balanced over its service's running tasks on that network, and the relay
// when a service keeps its clients' addresses.
func planeState(v *session.Overlay, device, nodeID string) overlay.State {
	s := overlay.State{Device: device}
	for _, n := range v.Networks {
		if n.Subnet.IsValid() {
			s.Networks = append(s.Networks, overlay.Network{ID: n.ID, Subnet: n.Subnet, Ingress: n.Ingress, Internal: n.Internal})
		}
	}
	backends := runningAddrs(v)
	for _, svc := range v.Services {
		for netID, vip := range svc.VIPs {
			s.VIPs = append(s.VIPs, overlay.VIP{Addr: vip, Backends: backends[svc.ID][netID]})
		}
	}
	slices.SortFunc(s.VIPs, func(x, y overlay.VIP) int { return x.Addr.Compare(y.Addr) })
	s.Relay = relayOf(v, nodeID)
	return s
}

// relayOf is the routing mesh's relay a view asks of node nodeID: none unless
// a service that publishes ports keeps its clients' addresses (then every
// node needs one, to relay or to answer), with every other node of the mesh
// as a peer and the ingress addresses of such services' running tasks on
// other nodes as the backends it relays to.
func relayOf(v *session.Overlay, nodeID string) *overlay.Relay {
	keep := map[string]bool{}
	for _, svc := range v.Services {
		if svc.KeepClientSource && len(svc.Ports) > 0 {
			keep[svc.ID] = true
		}
	}
	if len(keep) == 0 {
		return nil
	}
	r := &overlay.Relay{Backends: map[netip.Addr]netip.Addr{}}
	nodeAddr := map[string]netip.Addr{}
	for _, p := range v.Mesh {
		a, err := netip.ParseAddr(p.Addr)
		if err != nil || !a.Is4() {
			continue
		}
		nodeAddr[p.NodeID] = a
		if p.NodeID == nodeID {
			r.Self = a
		} else {
			r.Peers = append(r.Peers, a)
		}
	}
	if !r.Self.IsValid() || len(r.Peers) == 0 {
		return nil
	}
	slices.SortFunc(r.Peers, netip.Addr.Compare)
	ingress := ""
	for _, n := range v.Networks {
		if n.Ingress {
			ingress = n.ID
		}
	}
	for _, t := range v.Tasks {
		node, ok := nodeAddr[t.NodeID]
		if !keep[t.ServiceID] || !t.Running || t.NodeID == nodeID || !ok {
			continue
		}
		if addr, ok := t.Addrs[ingress]; ok && ingress != "" {
			r.Backends[addr] = node
		}
	}
	return r
}

// runningAddrs are the addresses of each service's running tasks, by service
// and network, sorted.
func runningAddrs(v *session.Overlay) map[string]map[string][]netip.Addr {
	out := map[string]map[string][]netip.Addr{}
	for _, t := range v.Tasks {
		if !t.Running {
			continue
		}
		byNet := out[t.ServiceID]
		if byNet == nil {
			byNet = map[string][]netip.Addr{}
			out[t.ServiceID] = byNet
		}
		for netID, addr := range t.Addrs {
			byNet[netID] = append(byNet[netID], addr)
		}
	}
	for _, byNet := range out {
		for _, addrs := range byNet {
			slices.SortFunc(addrs, netip.Addr.Compare)
		}
	}
	return out
}

// records are the names each network resolves: a service's name and aliases
// (its VIP, or its running tasks' addresses in dnsrr mode), tasks.<name> and
// tasks.<alias> (its running tasks' addresses, as Docker's; a stack's services
// have their short name as an alias) and each running task's container name.
func records(v *session.Overlay) dns.Records {
	out := dns.Records{}
	add := func(netID, name string, addrs ...netip.Addr) {
		names := out[netID]
		if names == nil {
			names = map[string][]netip.Addr{}
			out[netID] = names
		}
		name = strings.ToLower(name)
		names[name] = append(names[name], addrs...)
	}
	backends := runningAddrs(v)
	serviceName := map[string]string{}
	for _, svc := range v.Services {
		serviceName[svc.ID] = svc.Name
		nets := map[string]bool{}
		for netID := range svc.VIPs {
			nets[netID] = true
		}
		for netID := range svc.Aliases {
			nets[netID] = true
		}
		for netID := range backends[svc.ID] {
			nets[netID] = true
		}
		for netID := range nets {
			target := backends[svc.ID][netID]
			if vip, ok := svc.VIPs[netID]; ok && !svc.DNSRR {
				target = []netip.Addr{vip}
			}
			add(netID, svc.Name, target...)
			add(netID, "tasks."+svc.Name, backends[svc.ID][netID]...)
			for _, alias := range svc.Aliases[netID] {
				add(netID, alias, target...)
				add(netID, "tasks."+alias, backends[svc.ID][netID]...)
			}
		}
	}
	for _, t := range v.Tasks {
		name, ok := serviceName[t.ServiceID]
		if !t.Running || !ok {
			continue
		}
		slot := t.NodeID
		if t.Slot != 0 {
			slot = strconv.Itoa(t.Slot)
		}
		for netID, addr := range t.Addrs {
			add(netID, name+"."+slot+"."+t.ID, addr)
		}
	}
	return out
}

// internalOnly reports whether every network a task joins is internal: it
// then has no way out of the swarm's overlay.
func internalOnly(t *swarm.Task) bool {
	for _, na := range t.NetworksAttachments {
		if !na.Network.Spec.Internal {
			return false
		}
	}
	return len(t.NetworksAttachments) > 0
}
