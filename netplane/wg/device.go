// Package wg gives a node its WireGuard interface: the data plane that joins the
// nodes of a swarm, always encrypted. The kernel's WireGuard is used where the
// kernel has it; elsewhere (edge kernels, this project's CI) the embedded
// userspace implementation (wireguard-go) runs on a TUN device inside the
// daemon. Either way the interface is configured through wgctrl, which reaches
// the userspace device through its UAPI socket in /var/run/wireguard.
//
// A Device lives in the network namespace of the thread that opens it (the
// node's own), and is the only thing in this package that touches the host.
package wg

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/shoal-project/shoal/netplane/dump"
	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// DefaultPort is WireGuard's UDP port, as Docker's overlay has 4789 for VXLAN.
const DefaultPort = 51820

// DefaultMTU leaves room for WireGuard's 60 bytes (IPv4) or 80 (IPv6) in a
// 1500-byte underlay frame.
const DefaultMTU = 1420

// Overhead is what WireGuard adds to a packet over an IPv4 or IPv6 underlay.
const (
	Overhead4 = 60
	Overhead6 = 80
)

// MTUFor is the largest overlay packet that fits unfragmented in one underlay
// packet of the interface that holds addr (1440 for Ethernet's 1500 over
// IPv4, 1420 over IPv6, 1432 over PPPoE's 1492, less over a cellular or VPN
// link), never below IPv6's minimum 1280. DefaultMTU when no interface holds
// addr.
func MTUFor(addr netip.Addr) int {
	links, err := dump.All(func() ([]netlink.Link, error) { return netlink.LinkList() })
	if err != nil {
		return DefaultMTU
	}
	for _, l := range links {
		addrs, err := dump.All(func() ([]netlink.Addr, error) { return netlink.AddrList(l, netlink.FAMILY_ALL) })
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr.Unmap() {
				overhead := Overhead4
				if addr.Unmap().Is6() {
					overhead = Overhead6
				}
				return max(l.Attrs().MTU-overhead, 1280)
			}
		}
	}
	return DefaultMTU
}

// Config is what a node's interface is opened with.
type Config struct {
	// Name is the interface's name (15 bytes at most); it also names the
	// userspace device's UAPI socket, so nodes that share a filesystem (a
	// lab) need names of their own.
	Name string
	// Key is the node's private key.
	Key wgtypes.Key
	// Port is the UDP port it listens on; zero means DefaultPort.
	Port int
	// Address is the node's address on the overlay, with the prefix of the
	// overlay's range.
	Address netip.Prefix
	// MTU of the interface; zero means DefaultMTU.
	MTU    int
	Logger *slog.Logger
}

// Peer is another node as this one sees it.
type Peer struct {
	Key      wgtypes.Key
	Endpoint netip.AddrPort
	// AllowedIPs are the overlay addresses routed to the peer: its own and
	// its tasks'.
	AllowedIPs []netip.Prefix
}

// Device is a node's WireGuard interface.
type Device struct {
	name      string
	userspace *device.Device // nil for a kernel device
	uapi      net.Listener
	client    *wgctrl.Client
	log       *slog.Logger

	mu     sync.Mutex    // one configuration change at a time
	closed chan struct{} // closed by Close: ends a rotation's watch
}

// Open creates the interface in the calling thread's network namespace: a
// kernel WireGuard link when the kernel has one, else a userspace device on a
// TUN. It sets the key and port, assigns the address and brings the link up.
// Callers that run several namespaces in one process lock the thread first.
func Open(cfg Config) (*Device, error) {
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Device{name: cfg.Name, log: cfg.Logger, closed: make(chan struct{})}
	if err := d.create(cfg); err != nil {
		return nil, err
	}
	client, err := wgctrl.New()
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("wireguard %s: open wgctrl: %w", cfg.Name, err)
	}
	d.client = client
	if err := d.address(cfg.Address); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// create makes the link: kernel first, userspace when the kernel refuses.
func (d *Device) create(cfg Config) error {
	link := &netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: cfg.Name, MTU: cfg.MTU}}
	kernelErr := netlink.LinkAdd(link)
	if kernelErr == nil {
		c, err := wgctrl.New()
		if err != nil {
			return fmt.Errorf("wireguard %s: open wgctrl: %w", cfg.Name, err)
		}
		defer c.Close()
		if err := c.ConfigureDevice(cfg.Name, keyConfig(cfg)); err != nil {
			_ = netlink.LinkDel(link)
			return fmt.Errorf("wireguard %s: configure: %w", cfg.Name, err)
		}
		d.log.Info("wireguard: kernel device", "name", cfg.Name)
		return nil
	}
	d.log.Info("wireguard: no kernel WireGuard, running the userspace device", "name", cfg.Name, "kernel", kernelErr)
	return d.createUserspace(cfg)
}

// createUserspace runs wireguard-go on a TUN, with its UAPI socket for wgctrl.
// The key and port are set here, on the opening thread: the port's sockets
// are opened in that thread's namespace when the device comes up.
func (d *Device) createUserspace(cfg Config) error {
	t, err := tun.CreateTUN(cfg.Name, cfg.MTU)
	if err != nil {
		return fmt.Errorf("wireguard %s: create TUN: %w", cfg.Name, err)
	}
	logger := &device.Logger{
		Verbosef: func(format string, args ...any) { d.log.Debug(fmt.Sprintf(format, args...), "component", "wireguard") },
		Errorf:   func(format string, args ...any) { d.log.Warn(fmt.Sprintf(format, args...), "component", "wireguard") },
	}
	dev := device.NewDevice(t, conn.NewDefaultBind(), logger)
	d.userspace = dev
	if err := dev.IpcSet(fmt.Sprintf("private_key=%s\nlisten_port=%d\n", hexKey(cfg.Key), cfg.Port)); err != nil {
		d.Close()
		return fmt.Errorf("wireguard %s: set key and port: %w", cfg.Name, err)
	}
	if err := dev.Up(); err != nil {
		d.Close()
		return fmt.Errorf("wireguard %s: up: %w", cfg.Name, err)
	}
	file, err := ipc.UAPIOpen(cfg.Name)
	if err != nil {
		d.Close()
		return fmt.Errorf("wireguard %s: open UAPI socket: %w", cfg.Name, err)
	}
	uapi, err := ipc.UAPIListen(cfg.Name, file)
	if err != nil {
		file.Close()
		d.Close()
		return fmt.Errorf("wireguard %s: listen on the UAPI socket: %w", cfg.Name, err)
	}
	d.uapi = uapi
	go func() {
		for {
			c, err := uapi.Accept()
			if err != nil {
				return
			}
			go dev.IpcHandle(c)
		}
	}()
	return nil
}

// address assigns the node's overlay address and brings the link up.
func (d *Device) address(p netip.Prefix) error {
	link, err := netlink.LinkByName(d.name)
	if err != nil {
		return fmt.Errorf("wireguard %s: find link: %w", d.name, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("wireguard %s: address %s: %w", d.name, p, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("wireguard %s: up: %w", d.name, err)
	}
	return nil
}

// SetPeers makes peers the interface's whole peer list, through wgctrl. Peers
// that stay are updated in place, keeping their sessions (a replace of the
// whole list would make every peer handshake again and drop packets meanwhile).
// Of two nodes that learn of each other, only one starts the handshake at once;
// see watch.
func (d *Device) SetPeers(peers []Peer) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	since := time.Now()
	cur, err := d.client.Device(d.name)
	if err != nil {
		return fmt.Errorf("wireguard %s: read peers: %w", d.name, err)
	}
	if err := d.client.ConfigureDevice(d.name, peersConfig(cur.PublicKey, cur.Peers, peers)); err != nil {
		return fmt.Errorf("wireguard %s: set peers: %w", d.name, err)
	}
	had := map[wgtypes.Key]bool{}
	for _, p := range cur.Peers {
		had[p.PublicKey] = true
	}
	var added []wgtypes.Key
	for _, p := range peers {
		if !had[p.Key] {
			added = append(added, p.Key)
		}
	}
	d.watch(since, cur.PublicKey, added)
	return nil
}

// keyConfig is what a new kernel interface is given: its key and port (the
// userspace device takes the same through its UAPI when it is made).
func keyConfig(cfg Config) wgtypes.Config {
	key, port := cfg.Key, cfg.Port
	return wgtypes.Config{PrivateKey: &key, ListenPort: &port}
}

// peersConfig makes peers the whole list of an interface with key self that
// has cur: those that went are removed, the others set in place (never
// ReplacePeers, which would end every session). A new peer gets its keepalive,
// which sends one at once and so starts a handshake, only from the side that
// leads the pair; the other side turns it on later (watch). A peer that stays
// keeps the keepalive it has.
func peersConfig(self wgtypes.Key, cur []wgtypes.Peer, peers []Peer) wgtypes.Config {
	cfg := wgtypes.Config{}
	keep := map[wgtypes.Key]bool{}
	for _, p := range peers {
		keep[p.Key] = true
	}
	had := map[wgtypes.Key]bool{}
	for _, p := range cur {
		had[p.PublicKey] = true
		if !keep[p.PublicKey] {
			cfg.Peers = append(cfg.Peers, wgtypes.PeerConfig{PublicKey: p.PublicKey, Remove: true})
		}
	}
	keepalive := KeepaliveInterval
	for _, p := range peers {
		pc := wgtypes.PeerConfig{PublicKey: p.Key, ReplaceAllowedIPs: true}
		if !had[p.Key] && leads(self, p.Key) {
			pc.PersistentKeepaliveInterval = &keepalive
		}
		if p.Endpoint.IsValid() {
			pc.Endpoint = net.UDPAddrFromAddrPort(p.Endpoint)
		}
		for _, a := range p.AllowedIPs {
			pc.AllowedIPs = append(pc.AllowedIPs, net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())})
		}
		cfg.Peers = append(cfg.Peers, pc)
	}
	return cfg
}

// KeepaliveInterval is how often a peer is sent a keepalive when nothing else
// went to it: it keeps NAT mappings open on the way (edge nodes are often
// behind one), and turning it on sends one at once, which starts a handshake
// without waiting for traffic.
const KeepaliveInterval = 25 * time.Second

// SetKey replaces the interface's private key (a rotation). The sessions of
// the old key end with it; the node starts a handshake at once with the peers
// whose pair it leads with its new key, and the others start one as they learn
// the key (see watch), so traffic waits for one round trip.
func (d *Device) SetKey(k wgtypes.Key) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	since := time.Now()
	if err := d.client.ConfigureDevice(d.name, wgtypes.Config{PrivateKey: &k}); err != nil {
		return fmt.Errorf("wireguard %s: set key: %w", d.name, err)
	}
	cur, err := d.client.Device(d.name)
	if err != nil {
		return fmt.Errorf("wireguard %s: read peers: %w", d.name, err)
	}
	for _, cfg := range handshakeConfigs(cur.PublicKey, cur.Peers) {
		if err := d.client.ConfigureDevice(d.name, cfg); err != nil {
			return fmt.Errorf("wireguard %s: start handshakes: %w", d.name, err)
		}
	}
	var all []wgtypes.Key
	for _, p := range cur.Peers {
		all = append(all, p.PublicKey)
	}
	d.watch(since, cur.PublicKey, all)
	return nil
}

// Stats reads the interface's peers as wgctrl reports them: handshakes and bytes.
func (d *Device) Stats() ([]wgtypes.Peer, error) {
	dev, err := d.client.Device(d.name)
	if err != nil {
		return nil, fmt.Errorf("wireguard %s: read: %w", d.name, err)
	}
	return dev.Peers, nil
}

// Userspace tells whether the interface is the embedded userspace device.
func (d *Device) Userspace() bool { return d.userspace != nil }

// Close removes the interface and its UAPI socket.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.closed:
	default:
		close(d.closed)
	}
	var errs []error
	if d.client != nil {
		errs = append(errs, d.client.Close())
	}
	if d.uapi != nil {
		errs = append(errs, d.uapi.Close())
	}
	if d.userspace != nil {
		d.userspace.Close() // closes the TUN, which removes the link
		return errors.Join(errs...)
	}
	if link, err := netlink.LinkByName(d.name); err == nil {
		errs = append(errs, netlink.LinkDel(link))
	}
	return errors.Join(errs...)
}

func hexKey(k wgtypes.Key) string { return fmt.Sprintf("%x", k[:]) }
