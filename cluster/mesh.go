package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

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
	log    *slog.Logger
	// mtu fits the overlay's packets in the underlay's (set by underlay).
	mtu int

	mu  sync.Mutex
	key wgtypes.Key
	// next is the key the node said in its last hello and takes once the
	// swarm's mesh shows it (a rotation); nil between rotations.
	next   *wgtypes.Key
	dev    *wg.Device
	failed string // the last error opening or configuring, logged once
	nodes  []session.MeshPeer
	// tasks are the overlay addresses each node's tasks hold (node ID ->
	// addresses), routed to that node's peer entry.
	tasks map[string][]netip.Prefix
}

// underlay sizes the mesh for the interface that holds the node's data path
// address: its MTU less WireGuard's overhead.
func (m *mesh) underlay(host string) {
	mtu := wg.DefaultMTU
	if a, err := netip.ParseAddr(host); err == nil {
		mtu = wg.MTUFor(a)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mtu = mtu
}

// MTU is the largest packet the mesh carries whole.
func (m *mesh) MTU() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mtu == 0 {
		return wg.DefaultMTU
	}
	return m.mtu
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

// DefaultMeshKeyRotation is how often a node replaces its WireGuard key.
const DefaultMeshKeyRotation = 12 * time.Hour

// hello is the key and endpoint the node tells its manager: the next key
// while a rotation is under way.
func (m *mesh) hello(host string) (key, endpoint string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := m.key
	if m.next != nil {
		k = *m.next
	}
	return k.PublicKey().String(), net.JoinHostPort(host, strconv.Itoa(wg.DefaultPort))
}

// rotateKeys replaces the node's key every period until ctx is done: it makes
// the next key and has announce say it (a new session's hello); every node
// then learns it from the swarm's mesh at about the same moment, this one
// included, which is when it takes it (see take).
func (m *mesh) rotateKeys(ctx context.Context, period time.Duration, announce func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		k, err := wgtypes.GeneratePrivateKey()
		if err != nil {
			m.log.Warn("mesh: make the next key", "err", err)
			continue
		}
		m.mu.Lock()
		m.next = &k
		m.mu.Unlock()
		announce()
	}
}

// take makes the next key the node's when the mesh shows it as this node's;
// m.mu is held.
func (m *mesh) take(self session.MeshPeer) {
	if m.next == nil || self.Key != m.next.PublicKey().String() {
		return
	}
	if m.dev != nil {
		if err := m.dev.SetKey(*m.next); err != nil {
			m.log.Warn("mesh: take the next key", "err", err)
			return
		}
	}
	m.key, m.next = *m.next, nil
	m.log.Info("mesh: key rotated")
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
	port := wg.DefaultPort
	var peers []wg.Peer
	for _, n := range nodes {
		addr, err := netip.ParseAddr(n.Addr)
		if err != nil {
			return fmt.Errorf("node %s: mesh address %q: %w", n.NodeID, n.Addr, err)
		}
		if n.NodeID == m.nodeID {
			self = addr
			if ap, err := netip.ParseAddrPort(n.Endpoint); err == nil && ap.Port() != 0 {
				port = int(ap.Port())
			}
			m.take(n)
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
		dev, err := wg.Open(wg.Config{Name: m.interfaceName(), Key: m.key, Port: port, MTU: m.mtu, Address: netip.PrefixFrom(self, dispatcher.MeshRange.Bits()), Logger: m.log})
		if err != nil {
			return err
		}
		m.dev = dev
		// A published port asked at 127.0.0.1 may be balanced to a task on
		// another node: such packets leave through this interface (and are
		// masqueraded to the mesh address) only if it routes loopback sources.
		if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+m.interfaceName()+"/route_localnet", []byte("1"), 0o644); err != nil {
			m.log.Warn("mesh: route loopback sources through the interface", "err", err)
		}
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

// traffic reads the interface's counters for each peer, named by node.
func (m *mesh) traffic() []PeerTraffic {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dev == nil {
		return nil
	}
	peers, err := m.dev.Stats()
	if err != nil {
		return nil
	}
	byKey := map[string]string{}
	for _, n := range m.nodes {
		byKey[n.Key] = n.NodeID
	}
	out := make([]PeerTraffic, 0, len(peers))
	for _, p := range peers {
		id := byKey[p.PublicKey.String()]
		if id == "" {
			continue // a peer the mesh no longer lists
		}
		out = append(out, PeerTraffic{NodeID: id, ReceiveBytes: p.ReceiveBytes, TransmitBytes: p.TransmitBytes, LastHandshake: p.LastHandshakeTime})
	}
	return out
}
