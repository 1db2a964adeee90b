package cluster

import (
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/shoal-project/shoal/cluster/dispatcher"
	"github.com/shoal-project/shoal/cluster/session"
	"github.com/shoal-project/shoal/netplane/wg"
)

// mesh is this node's place on the swarm's WireGuard mesh: a key made when
// the node starts (kept in memory only: a restarted node says its new key in
// its next session), and the interface, opened once the mesh has another node
// and given every other node as a peer, each reached at its mesh address.
type mesh struct {
	nodeID string
	key    wgtypes.Key
	log    *slog.Logger

	mu     sync.Mutex
	dev    *wg.Device
	failed string // the last error opening or configuring, logged once
	nodes  []session.MeshPeer
	// tasks are the overlay addresses each node's tasks hold (node ID ->
	// addresses), routed to that node's peer entry.
	tasks map[string][]netip.Prefix
}

func newMesh(nodeID string, log *slog.Logger) (*mesh, error) {
	key, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		return nil, fmt.Errorf("mesh key: %w", err)
	}
	return &mesh{nodeID: nodeID, key: key, log: log}, nil
}

// interfaceName names the node's interface from its ID, so that nodes sharing
// a filesystem (a lab) have UAPI sockets of their own.
func (m *mesh) interfaceName() string {
	id := m.nodeID
	if len(id) > 9 {
		id = id[:9]
	}
	return "shoal-" + id
}

// hello is the key and endpoint the node tells its manager.
func (m *mesh) hello(host string) (key, endpoint string) {
	return m.key.PublicKey().String(), net.JoinHostPort(host, strconv.Itoa(wg.DefaultPort))
}

// follow makes the interface match the mesh: opened once another node is
// there, its peers the other nodes.
func (m *mesh) follow(nodes []session.MeshPeer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nodes = nodes
	m.sync()
}

// followOverlay routes each task address of the overlay view to the node
// that holds it.
func (m *mesh) followOverlay(v *session.Overlay) {
	tasks := map[string][]netip.Prefix{}
	for _, t := range v.Tasks {
		for _, a := range t.Addrs {
			tasks[t.NodeID] = append(tasks[t.NodeID], netip.PrefixFrom(a, a.BitLen()))
		}
	}
	for _, addrs := range tasks {
		slices.SortFunc(addrs, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if maps.EqualFunc(tasks, m.tasks, slices.Equal) {
		return
	}
	m.tasks = tasks
	m.sync()
}

// device names the node's interface, "" while it is not open.
func (m *mesh) device() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dev == nil {
		return ""
	}
	return m.interfaceName()
}

// sync applies the mesh and task addresses; m.mu is held.
func (m *mesh) sync() {
	if err := m.apply(m.nodes); err != nil {
		if msg := err.Error(); msg != m.failed {
			m.log.Warn("mesh: the node's WireGuard interface", "err", err)
			m.failed = msg
		}
		return
	}
	m.failed = ""
}

func (m *mesh) apply(nodes []session.MeshPeer) error {
	var self netip.Addr
	var peers []wg.Peer
	for _, n := range nodes {
		addr, err := netip.ParseAddr(n.Addr)
		if err != nil {
			return fmt.Errorf("node %s: mesh address %q: %w", n.NodeID, n.Addr, err)
		}
		if n.NodeID == m.nodeID {
			self = addr
			continue
		}
		key, err := wgtypes.ParseKey(n.Key)
		if err != nil {
			return fmt.Errorf("node %s: mesh key: %w", n.NodeID, err)
		}
		endpoint, err := netip.ParseAddrPort(n.Endpoint)
		if err != nil {
			return fmt.Errorf("node %s: mesh endpoint %q: %w", n.NodeID, n.Endpoint, err)
		}
		allowed := append([]netip.Prefix{netip.PrefixFrom(addr, addr.BitLen())}, m.tasks[n.NodeID]...)
		peers = append(peers, wg.Peer{Key: key, Endpoint: endpoint, AllowedIPs: allowed})
	}
	if m.dev == nil {
		if !self.IsValid() || len(peers) == 0 {
			return nil // alone, or not given an address yet
		}
		dev, err := wg.Open(wg.Config{Name: m.interfaceName(), Key: m.key, Address: netip.PrefixFrom(self, dispatcher.MeshRange.Bits()), Logger: m.log})
		if err != nil {
			return err
		}
		m.dev = dev
		m.log.Info("mesh: WireGuard interface up", "name", m.interfaceName(), "addr", self, "userspace", dev.Userspace())
	}
	return m.dev.SetPeers(peers)
}

// close removes the interface.
func (m *mesh) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dev != nil {
		if err := m.dev.Close(); err != nil {
			m.log.Warn("mesh: close the WireGuard interface", "err", err)
		}
		m.dev = nil
	}
}
