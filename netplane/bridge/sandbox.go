package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// containerIfname is the name of the sandbox's end of its veth pair.
const containerIfname = "eth0"

// Sandbox is one container's network namespace on the bridge.
type Sandbox struct {
	ID        string
	NetNSPath string       // path to join with setns / libcontainer namespace path
	IP        netip.Addr   // the sandbox's address on eth0
	Prefix    netip.Prefix // subnet
	Gateway   netip.Addr   // the bridge's address, the sandbox's default route
	MAC       net.HardwareAddr
}

// CreateSandbox makes a named netns for id with lo up, a veth pair (host side attached
// to the bridge, container side named eth0), an address and default route.
// Idempotent: an existing sandbox for id is returned as is.
func (n *Network) CreateSandbox(ctx context.Context, id string) (Sandbox, error) {
	if err := validateID(id); err != nil {
		return Sandbox{}, fmt.Errorf("create sandbox %s: %w", id, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return Sandbox{}, fmt.Errorf("create sandbox %s: %w", id, errClosed())
	}
	if sb, ok := n.st.Sandboxes[id]; ok {
		return n.toSandbox(id, sb), nil
	}
	if err := ctx.Err(); err != nil {
		return Sandbox{}, fmt.Errorf("create sandbox %s: %w", id, err)
	}
	cursor := n.st.LastIP
	ip, err := n.st.allocateIP()
	if err != nil {
		return Sandbox{}, fmt.Errorf("create sandbox %s: %w", id, err)
	}
	sb := &sandboxState{
		NetNSPath: filepath.Join(n.cfg.NetNSDir, id),
		IP:        ip,
		MAC:       macFor(ip).String(),
		HostVeth:  hostVethName(n.cfg.BridgeName, id),
	}
	// Leftovers of a create that crashed half way would make the kernel refuse.
	if err := n.teardownSandbox(sb); err != nil {
		n.st.LastIP = cursor
		return Sandbox{}, fmt.Errorf("create sandbox %s: clean up leftovers: %w", id, err)
	}
	if err := n.setupSandbox(sb); err != nil {
		n.st.LastIP = cursor
		if cerr := n.teardownSandbox(sb); cerr != nil {
			n.log.Warn("roll back sandbox", "sandbox", id, "err", cerr)
		}
		return Sandbox{}, fmt.Errorf("create sandbox %s: %w", id, err)
	}
	n.st.Sandboxes[id] = sb
	if err := n.st.save(n.statePath); err != nil {
		delete(n.st.Sandboxes, id)
		if cerr := n.teardownSandbox(sb); cerr != nil {
			n.log.Warn("roll back sandbox", "sandbox", id, "err", cerr)
		}
		return Sandbox{}, fmt.Errorf("create sandbox %s: %w", id, err)
	}
	n.log.Debug("sandbox created", "sandbox", id, "ip", ip)
	return n.toSandbox(id, sb), nil
}

// Sandbox returns the sandbox for id, if there is one.
func (n *Network) Sandbox(id string) (Sandbox, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	sb, ok := n.st.Sandboxes[id]
	if !ok {
		return Sandbox{}, false
	}
	return n.toSandbox(id, sb), true
}

// SandboxIDs lists the IDs of every sandbox, sorted.
func (n *Network) SandboxIDs() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	ids := make([]string, 0, len(n.st.Sandboxes))
	for id := range n.st.Sandboxes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// RemoveSandbox removes ports, veth, the netns mount and the address allocation.
// Idempotent.
func (n *Network) RemoveSandbox(ctx context.Context, id string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return fmt.Errorf("remove sandbox %s: %w", id, errClosed())
	}
	sb, ok := n.st.Sandboxes[id]
	if !ok {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("remove sandbox %s: %w", id, err)
	}
	if len(sb.Ports) > 0 {
		ports := sb.Ports
		sb.Ports = nil
		if err := n.applyNAT(); err != nil {
			sb.Ports = ports
			return fmt.Errorf("remove sandbox %s: unpublish ports: %w", id, err)
		}
	}
	if err := n.teardownSandbox(sb); err != nil {
		return errors.Join(fmt.Errorf("remove sandbox %s: %w", id, err), n.st.save(n.statePath))
	}
	delete(n.st.Sandboxes, id)
	if err := n.st.save(n.statePath); err != nil {
		return fmt.Errorf("remove sandbox %s: %w", id, err)
	}
	n.forgetConnections(sb.IP)
	n.log.Debug("sandbox removed", "sandbox", id, "ip", sb.IP)
	return nil
}

// setupSandbox creates the kernel objects of sb. Sandbox-side configuration goes
// through a netlink handle bound to the new namespace, so no goroutine joins it.
func (n *Network) setupSandbox(sb *sandboxState) error {
	if err := createNamedNetNS(sb.NetNSPath); err != nil {
		return err
	}
	ns, err := netns.GetFromPath(sb.NetNSPath)
	if err != nil {
		return fmt.Errorf("open netns: %w", err)
	}
	defer ns.Close()

	br, err := n.host.LinkByName(n.cfg.BridgeName)
	if err != nil {
		return fmt.Errorf("find bridge: %w", err)
	}
	mac, err := net.ParseMAC(sb.MAC)
	if err != nil {
		return fmt.Errorf("parse MAC: %w", err)
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: sb.HostVeth, MasterIndex: br.Attrs().Index, MTU: br.Attrs().MTU},
		PeerName:         containerIfname,
		PeerHardwareAddr: mac,
		PeerNamespace:    netlink.NsFd(int(ns)),
	}
	if err := n.host.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth: %w", err)
	}
	hostEnd, err := n.host.LinkByName(sb.HostVeth)
	if err != nil {
		return fmt.Errorf("find veth: %w", err)
	}
	// Hairpin lets a sandbox reach its own published ports through the host.
	if err := n.host.LinkSetHairpin(hostEnd, true); err != nil {
		return fmt.Errorf("set hairpin on veth: %w", err)
	}
	if err := n.host.LinkSetUp(hostEnd); err != nil {
		return fmt.Errorf("set veth up: %w", err)
	}
	return n.configureInside(ns, sb.IP)
}

// configureInside brings lo and eth0 up in ns, with ip and a default route.
func (n *Network) configureInside(ns netns.NsHandle, ip netip.Addr) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("open netlink in sandbox: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	eth, err := h.LinkByName(containerIfname)
	if err != nil {
		return fmt.Errorf("find %s: %w", containerIfname, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(n.cfg.Subnet.Bits(), 32)}}
	if err := h.AddrAdd(eth, addr); err != nil {
		return fmt.Errorf("add address %s: %w", addr.IPNet, err)
	}
	if err := h.LinkSetUp(eth); err != nil {
		return fmt.Errorf("set %s up: %w", containerIfname, err)
	}
	route := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: n.gateway.AsSlice()}
	if err := h.RouteAdd(route); err != nil {
		return fmt.Errorf("add default route via %s: %w", n.gateway, err)
	}
	return nil
}

// teardownSandbox removes the kernel objects of sb; missing ones are not an error.
func (n *Network) teardownSandbox(sb *sandboxState) error {
	link, err := n.host.LinkByName(sb.HostVeth)
	var notFound netlink.LinkNotFoundError
	switch {
	case err == nil:
		// Deleting one end of a veth pair deletes the other.
		if err := n.host.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("delete veth: %w", err)
		}
	case !errors.As(err, &notFound):
		return fmt.Errorf("find veth: %w", err)
	}
	return removeNamedNetNS(sb.NetNSPath)
}

// forgetConnections drops conntrack entries of a removed sandbox, so a UDP flow to a
// published port is not still NATed to an address that is gone. Best effort: the
// conntrack netlink interface may be missing.
func (n *Network) forgetConnections(ip netip.Addr) {
	filter := &netlink.ConntrackFilter{}
	if err := filter.AddIP(netlink.ConntrackReplyAnyIP, ip.AsSlice()); err != nil {
		return
	}
	if _, err := n.host.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, filter); err != nil {
		n.log.Debug("flush conntrack entries", "ip", ip, "err", err)
	}
}

func (n *Network) toSandbox(id string, sb *sandboxState) Sandbox {
	mac, _ := net.ParseMAC(sb.MAC)
	return Sandbox{
		ID:        id,
		NetNSPath: sb.NetNSPath,
		IP:        sb.IP,
		Prefix:    n.cfg.Subnet,
		Gateway:   n.gateway,
		MAC:       mac,
	}
}

// hostVethName names the host end of a sandbox's veth pair. It is derived from the
// bridge and sandbox so that a restarted daemon finds it again, and fits IFNAMSIZ.
func hostVethName(bridge, id string) string {
	sum := sha256.Sum256([]byte(bridge + "/" + id))
	return "veth" + hex.EncodeToString(sum[:])[:11]
}

// validateID accepts ids that are safe as a file name under NetNSDir.
func validateID(id string) error {
	if id == "" || id == "." || id == ".." || len(id) > 128 ||
		strings.ContainsAny(id, "/\x00") {
		return errInvalid("invalid sandbox id %q", id)
	}
	return nil
}

// Isolate cuts a sandbox off the bridge: its eth0 goes down, and with it the
// default route and the bridge subnet's. A task whose only networks are
// internal overlay networks has no way out, as Docker leaves such a container
// without its gateway bridge.
func (n *Network) Isolate(ctx context.Context, id string) error {
	n.mu.Lock()
	sb, ok := n.st.Sandboxes[id]
	n.mu.Unlock()
	if !ok {
		return errNoSuchSandbox(id)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("isolate sandbox %s: %w", id, err)
	}
	ns, err := netns.GetFromPath(sb.NetNSPath)
	if err != nil {
		return fmt.Errorf("isolate sandbox %s: open its netns: %w", id, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("isolate sandbox %s: open netlink: %w", id, err)
	}
	defer h.Close()
	eth, err := h.LinkByName(containerIfname)
	if err != nil {
		return fmt.Errorf("isolate sandbox %s: find %s: %w", id, containerIfname, err)
	}
	if err := h.LinkSetDown(eth); err != nil {
		return fmt.Errorf("isolate sandbox %s: set %s down: %w", id, containerIfname, err)
	}
	return nil
}
