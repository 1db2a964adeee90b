package dispatcher

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/session"
	"github.com/shoal-project/shoal/cluster/store"
)

// MeshRange is where nodes get their addresses on the WireGuard mesh: one per
// node, given when it first opens a session with a key, and kept.
var MeshRange = netip.MustParsePrefix("10.254.0.0/16")

// recordPeer keeps what other nodes need to reach this one in its store-only
// peer object: the control address, the mesh key and endpoint, and a mesh
// address once it has a key.
func recordPeer(tx store.Tx, nodeID string, hello session.Hello) error {
	p, err := tx.Peer(nodeID)
	create := store.IsNotFound(err)
	switch {
	case create:
		p = &store.Peer{ID: nodeID}
	case err != nil:
		return err
	}
	was := *p
	p.ControlAddr, p.MeshKey, p.MeshEndpoint = hello.ControlAddr, hello.MeshKey, hello.MeshEndpoint
	if cl, err := tx.Cluster(); err == nil && cl.DataPathPort != 0 && p.MeshEndpoint != "" {
		// The swarm's data path port (swarm init --data-path-port) is every
		// node's: the node opens its interface on the port its entry shows.
		if ap, err := netip.ParseAddrPort(p.MeshEndpoint); err == nil {
			p.MeshEndpoint = netip.AddrPortFrom(ap.Addr(), uint16(cl.DataPathPort)).String()
		}
	}
	if p.MeshKey != "" && p.MeshAddr == "" {
		if p.MeshAddr, err = freeMeshAddr(tx); err != nil {
			return err
		}
	}
	switch {
	case create:
		return tx.CreatePeer(p)
	case was.ControlAddr != p.ControlAddr || was.MeshKey != p.MeshKey || was.MeshEndpoint != p.MeshEndpoint || was.MeshAddr != p.MeshAddr:
		return tx.UpdatePeer(p)
	}
	return nil
}

// freeMeshAddr is the lowest address of MeshRange no peer holds.
func freeMeshAddr(tx store.ReadTx) (string, error) {
	peers, err := tx.Peers()
	if err != nil {
		return "", err
	}
	held := map[string]bool{}
	for _, p := range peers {
		held[p.MeshAddr] = true
	}
	for a := MeshRange.Addr().Next(); MeshRange.Contains(a.Next()); a = a.Next() {
		if !held[a.String()] {
			return a.String(), nil
		}
	}
	return "", fmt.Errorf("no mesh address left in %s", MeshRange)
}

// mesh is every ready node with a mesh key and address, in node ID order.
func (d *Dispatcher) mesh() []session.MeshPeer {
	var out []session.MeshPeer
	_ = d.store.View(func(tx store.ReadTx) error {
		var err error
		out, err = meshOf(tx)
		return err
	})
	return out
}

// meshOf reads the mesh from tx.
func meshOf(tx store.ReadTx) ([]session.MeshPeer, error) {
	var out []session.MeshPeer
	peers, err := tx.Peers()
	for _, p := range peers {
		if p.MeshKey == "" || p.MeshAddr == "" {
			continue
		}
		if n, err := tx.Node(p.ID); err == nil && n.Status.State == swarm.NodeStateReady {
			out = append(out, session.MeshPeer{NodeID: p.ID, Key: p.MeshKey, Endpoint: p.MeshEndpoint, Addr: p.MeshAddr})
		}
	}
	slices.SortFunc(out, func(a, b session.MeshPeer) int { return strings.Compare(a.NodeID, b.NodeID) })
	return out, err
}
