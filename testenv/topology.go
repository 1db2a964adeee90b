package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The lab's network: a switch namespace holds the bridge, and one port (a veth
// named after the node) per node; the veth's other end is the node's eth0. The
// host's namespace, and so its firewall, never sees any of it.
const (
	bridgeName = "br0"
	nodeIface  = "eth0"
	labPrefix  = 24 // 10.99.0.0/24
)

// SwitchNS is the path of the lab's switch namespace, which holds its bridge and
// partition rules.
func (l *Lab) SwitchNS() string { return filepath.Join(l.Dir, "switch.netns") }

// build makes the switch and plugs every node into it.
func (l *Lab) build() error {
	if err := pinNewNamespaces(l.SwitchNS(), "", ""); err != nil {
		return fmt.Errorf("create switch namespace: %w", err)
	}
	sw, err := handleAt(l.SwitchNS())
	if err != nil {
		return fmt.Errorf("create switch: %w", err)
	}
	defer sw.Close()
	if err := sw.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeName}}); err != nil {
		return fmt.Errorf("create bridge: %w", err)
	}
	br, err := sw.LinkByName(bridgeName)
	if err != nil {
		return fmt.Errorf("create bridge: %w", err)
	}
	if err := sw.LinkSetUp(br); err != nil {
		return fmt.Errorf("bring bridge up: %w", err)
	}
	for _, m := range l.machines {
		if err := plug(sw, br.Attrs().Index, m); err != nil {
			return err
		}
	}
	return nil
}

// plug makes the node's namespaces and cables its eth0 to a port of the bridge.
func plug(sw *netlink.Handle, bridge int, m *Machine) error {
	if err := os.MkdirAll(m.Dir, 0o755); err != nil {
		return fmt.Errorf("create node %s: %w", m.Name, err)
	}
	if err := pinNewNamespaces(m.netNS, m.utsNS, m.Name); err != nil {
		return fmt.Errorf("create namespaces for %s: %w", m.Name, err)
	}
	ns, err := netns.GetFromPath(m.netNS)
	if err != nil {
		return fmt.Errorf("open netns of %s: %w", m.Name, err)
	}
	defer ns.Close()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: m.Name, MasterIndex: bridge},
		PeerName:      nodeIface,
		PeerNamespace: netlink.NsFd(ns),
	}
	if err := sw.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth for %s: %w", m.Name, err)
	}
	if err := sw.LinkSetUp(veth); err != nil {
		return fmt.Errorf("bring up switch port of %s: %w", m.Name, err)
	}
	return m.configureNetNS()
}

// configureNetNS brings lo and eth0 up and gives eth0 the node's address.
func (m *Machine) configureNetNS() error {
	h, err := handleAt(m.netNS)
	if err != nil {
		return fmt.Errorf("configure %s: %w", m.Name, err)
	}
	defer h.Close()
	for _, name := range []string{"lo", nodeIface} {
		link, err := h.LinkByName(name)
		if err != nil {
			return fmt.Errorf("configure %s: %s: %w", m.Name, name, err)
		}
		if name == nodeIface {
			addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(m.addr), Mask: net.CIDRMask(labPrefix, 32)}}
			if err := h.AddrReplace(link, addr); err != nil {
				return fmt.Errorf("configure %s: address %s: %w", m.Name, m.addr, err)
			}
		}
		if err := h.LinkSetUp(link); err != nil {
			return fmt.Errorf("configure %s: bring %s up: %w", m.Name, name, err)
		}
	}
	return nil
}

// cleanNetNS removes what a daemon made in the node's network namespace (its
// bridge, container veths, nftables rules) and sets the lab's part up again.
func (m *Machine) cleanNetNS(ctx context.Context) error {
	h, err := handleAt(m.netNS)
	if err != nil {
		return fmt.Errorf("clean netns of %s: %w", m.Name, err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return fmt.Errorf("clean netns of %s: %w", m.Name, err)
	}
	for _, link := range links {
		if name := link.Attrs().Name; name != "lo" && name != nodeIface {
			// A container's veth may be gone already, with its namespace.
			if err := h.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
				return fmt.Errorf("clean netns of %s: delete %s: %w", m.Name, name, err)
			}
		}
	}
	if out, err := m.Command(ctx, "nft", "flush", "ruleset").CombinedOutput(); err != nil {
		return fmt.Errorf("clean netns of %s: nft flush ruleset: %w: %s", m.Name, err, out)
	}
	return m.configureNetNS()
}

// handleAt is a netlink handle working in the network namespace pinned at path.
func handleAt(path string) (*netlink.Handle, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", path, err)
	}
	return h, nil
}
