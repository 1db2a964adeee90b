package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/shoal-project/shoal/netplane/dump"
	"github.com/shoal-project/shoal/netplane/namespace"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Defaults applied by New to a zero Config field.
const (
	DefaultBridgeName = "shoal0"
	DefaultTableName  = "shoal"
)

// DefaultSubnet is the bridge subnet used when Config.Subnet is not set.
var DefaultSubnet = netip.MustParsePrefix("172.30.0.0/16")

// Config says where a Network keeps its state and which kernel objects it owns.
type Config struct {
	StateDir   string       // persistent: allocations survive daemon restart (JSON file, atomic writes)
	NetNSDir   string       // where named netns bind mounts live, e.g. /run/shoal/netns
	BridgeName string       // default "shoal0"
	Subnet     netip.Prefix // default 172.30.0.0/16; gateway = first address, on the bridge
	TableName  string       // nftables table name, default "shoal"
	Logger     *slog.Logger
}

// Network is one node-local bridge network and its sandboxes. It is safe for
// concurrent use.
type Network struct {
	cfg       Config
	log       *slog.Logger
	statePath string
	gateway   netip.Addr

	hostNS netns.NsHandle  // the namespace the bridge lives in
	host   *netlink.Handle // netlink bound to hostNS
	nft    *nftables.Conn  // nftables bound to hostNS

	mu     sync.Mutex
	st     *state
	closed bool
}

// New creates (or adopts, after a daemon restart) the bridge, its address, the nftables
// table with masquerade for the subnet, enables ip_forward, and loads allocations.
//
// The network lives in the network namespace of the calling thread; a caller that is
// not in the host's namespace must lock its OS thread before calling New.
func New(ctx context.Context, cfg Config) (*Network, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, fmt.Errorf("create bridge network: %w", err)
	}
	for _, dir := range []string{cfg.StateDir, cfg.NetNSDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create bridge network: %w", err)
		}
	}
	n := &Network{
		cfg:       cfg,
		log:       cfg.Logger.With("bridge", cfg.BridgeName),
		statePath: filepath.Join(cfg.StateDir, cfg.BridgeName+".json"),
		gateway:   gatewayOf(cfg.Subnet),
		hostNS:    netns.None(),
	}
	if err := n.open(); err != nil {
		n.release()
		return nil, fmt.Errorf("create bridge network %s: %w", cfg.BridgeName, err)
	}
	if err := n.adopt(ctx); err != nil {
		n.release()
		return nil, fmt.Errorf("create bridge network %s: %w", cfg.BridgeName, err)
	}
	return n, nil
}

func withDefaults(cfg Config) (Config, error) {
	if cfg.StateDir == "" || cfg.NetNSDir == "" {
		return cfg, errInvalid("StateDir and NetNSDir are required")
	}
	if cfg.BridgeName == "" {
		cfg.BridgeName = DefaultBridgeName
	}
	if len(cfg.BridgeName) > 15 {
		return cfg, errInvalid("bridge name %q is longer than 15 characters", cfg.BridgeName)
	}
	if cfg.TableName == "" {
		cfg.TableName = DefaultTableName
	}
	if !cfg.Subnet.IsValid() {
		cfg.Subnet = DefaultSubnet
	}
	if !cfg.Subnet.Addr().Is4() || cfg.Subnet.Bits() < 8 || cfg.Subnet.Bits() > 30 {
		return cfg, errInvalid("subnet %s: want an IPv4 prefix from /8 to /30", cfg.Subnet)
	}
	cfg.Subnet = cfg.Subnet.Masked()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

// open binds the netlink and nftables handles to the caller's namespace.
func (n *Network) open() error {
	var err error
	if n.hostNS, err = netns.Get(); err != nil {
		return fmt.Errorf("get host netns: %w", err)
	}
	if n.host, err = netlink.NewHandleAt(n.hostNS); err != nil {
		return fmt.Errorf("open netlink: %w", err)
	}
	if n.nft, err = nftables.New(nftables.WithNetNSFd(int(n.hostNS))); err != nil {
		return fmt.Errorf("open nftables: %w", err)
	}
	return nil
}

// adopt brings the kernel in line with the saved state: bridge, sysctls, sandboxes
// that still exist, and the nftables table.
func (n *Network) adopt(ctx context.Context) error {
	st, err := loadState(n.statePath)
	if err != nil {
		return err
	}
	if st.Subnet.IsValid() && st.Subnet != n.cfg.Subnet && len(st.Sandboxes) > 0 {
		return errInvalid("subnet %s differs from %s used by %d existing sandboxes",
			n.cfg.Subnet, st.Subnet, len(st.Sandboxes))
	}
	st.Subnet = n.cfg.Subnet
	n.st = st
	if err := n.ensureBridge(); err != nil {
		return err
	}
	if err := n.enableForwarding(); err != nil {
		return err
	}
	for id, sb := range st.Sandboxes {
		if err := ctx.Err(); err != nil {
			return err
		}
		if isNetNSMount(sb.NetNSPath) {
			continue
		}
		// The namespace is gone (a host reboot empties /run): nothing to adopt.
		n.log.Info("dropping sandbox whose netns is gone", "sandbox", id, "netns", sb.NetNSPath)
		if err := n.teardownSandbox(sb); err != nil {
			return fmt.Errorf("clean up sandbox %s: %w", id, err)
		}
		delete(st.Sandboxes, id)
	}
	if err := n.dropUnrecorded(); err != nil {
		return err
	}
	if err := n.applyNAT(); err != nil {
		return err
	}
	if err := st.save(n.statePath); err != nil {
		return err
	}
	n.log.Info("bridge network ready", "subnet", n.cfg.Subnet, "sandboxes", len(st.Sandboxes))
	return nil
}

// dropUnrecorded removes the network namespaces (and their veths) that a
// sandbox creation cut short by a crash made before it recorded them.
func (n *Network) dropUnrecorded() error {
	entries, err := os.ReadDir(n.cfg.NetNSDir)
	if err != nil {
		return fmt.Errorf("list network namespaces: %w", err)
	}
	for _, e := range entries {
		id := e.Name()
		if _, ok := n.st.Sandboxes[id]; ok || validateID(id) != nil {
			continue
		}
		n.log.Info("dropping network namespace of an unrecorded sandbox", "sandbox", id)
		sb := &sandboxState{NetNSPath: filepath.Join(n.cfg.NetNSDir, id), HostVeth: hostVethName(n.cfg.BridgeName, id)}
		if err := n.teardownSandbox(sb); err != nil {
			return fmt.Errorf("clean up unrecorded sandbox %s: %w", id, err)
		}
	}
	return nil
}

// ensureBridge creates the bridge unless it exists, and gives it exactly the gateway
// address.
func (n *Network) ensureBridge() error {
	name := n.cfg.BridgeName
	link, err := n.host.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
		if err := n.host.LinkAdd(br); err != nil {
			return fmt.Errorf("add bridge: %w", err)
		}
		if link, err = n.host.LinkByName(name); err != nil {
			return fmt.Errorf("find new bridge: %w", err)
		}
		n.log.Info("created bridge")
	case err != nil:
		return fmt.Errorf("find bridge: %w", err)
	case link.Type() != "bridge":
		return errInvalid("link %s exists and is a %s, not a bridge", name, link.Type())
	}

	want := &netlink.Addr{IPNet: &net.IPNet{
		IP:   n.gateway.AsSlice(),
		Mask: net.CIDRMask(n.cfg.Subnet.Bits(), 32),
	}}
	addrs, err := dump.All(func() ([]netlink.Addr, error) { return n.host.AddrList(link, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("list bridge addresses: %w", err)
	}
	for _, a := range addrs {
		if !a.IPNet.IP.Equal(want.IP) || a.IPNet.Mask.String() != want.Mask.String() {
			if err := n.host.AddrDel(link, &a); err != nil {
				return fmt.Errorf("remove stale bridge address %s: %w", a.IPNet, err)
			}
		}
	}
	if err := n.host.AddrReplace(link, want); err != nil {
		return fmt.Errorf("set bridge address: %w", err)
	}
	if err := n.host.LinkSetUp(link); err != nil {
		return fmt.Errorf("set bridge up: %w", err)
	}
	return nil
}

// enableForwarding turns on IPv4 forwarding and lets DNATed loopback traffic leave
// through the bridge. /proc/sys/net belongs to the namespace of the opening thread,
// so the files are written from a thread in the host namespace.
func (n *Network) enableForwarding() error {
	return namespace.Run(n.hostNS, func() error {
		for _, p := range []string{
			"/proc/sys/net/ipv4/ip_forward",
			"/proc/sys/net/ipv4/conf/" + n.cfg.BridgeName + "/route_localnet",
		} {
			if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
				return fmt.Errorf("enable %s: %w", p, err)
			}
		}
		return nil
	})
}

// applyNAT rewrites the nftables table from the current state. Callers hold n.mu.
func (n *Network) applyNAT() error {
	rs := natRuleset{table: n.cfg.TableName, bridge: n.cfg.BridgeName, subnet: n.cfg.Subnet}
	for _, sb := range n.st.Sandboxes {
		for _, p := range sb.Ports {
			rs.ports = append(rs.ports, publishedPort{PortMapping: p, IP: sb.IP})
		}
	}
	rs.balanced = n.st.balancedPorts()
	return rs.apply(n.nft)
}

// Close releases in-memory resources; it leaves the bridge, nft table and sandboxes in
// place so containers keep their network across a daemon restart (live restore).
func (n *Network) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	n.release()
	return nil
}

func (n *Network) release() {
	if n.host != nil {
		n.host.Close()
	}
	if n.hostNS.IsOpen() {
		n.hostNS.Close()
	}
}

// Teardown removes the bridge, the nft table and every sandbox (used by tests and
// `swarm leave`). The Network is closed afterwards.
func (n *Network) Teardown(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return fmt.Errorf("tear down bridge network %s: %w", n.cfg.BridgeName, errClosed())
	}
	var errs []error
	for id, sb := range n.st.Sandboxes {
		if err := n.teardownSandbox(sb); err != nil {
			errs = append(errs, fmt.Errorf("remove sandbox %s: %w", id, err))
			continue
		}
		delete(n.st.Sandboxes, id)
	}
	if err := deleteTable(n.nft, n.cfg.TableName); err != nil {
		errs = append(errs, err)
	}
	if link, err := n.host.LinkByName(n.cfg.BridgeName); err == nil {
		if err := n.host.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("delete bridge: %w", err))
		}
	}
	if len(errs) == 0 {
		if err := os.Remove(n.statePath); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove state: %w", err))
		}
	} else if err := n.st.save(n.statePath); err != nil {
		errs = append(errs, err)
	}
	n.closed = true
	n.release()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tear down bridge network %s: %w", n.cfg.BridgeName, err)
	}
	n.log.Info("bridge network removed")
	return nil
}
