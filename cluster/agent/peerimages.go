package agent

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/shoal-project/shoal/runtime/image"
)

// Images without a registry: a node that must run a task whose image it lacks
// asks the other nodes of the swarm (their control ports serve their images,
// verified by digest) before it asks a registry. `docker load` on one node is
// enough for the whole swarm, and an edge site whose uplink is down still
// spreads images over its LAN.

// PeerImages is what the agent needs of the node's image store for fetching
// from peers.
type PeerImages interface {
	PullFromPeer(ctx context.Context, ref string, peer image.Peer) (image.Image, error)
}

// peerProbeTimeout bounds asking the peers who has an image.
const peerProbeTimeout = 3 * time.Second

// peerList holds the control addresses of the swarm's other ready nodes, as
// the latest session named them.
type peerList struct {
	mu    sync.Mutex
	addrs []string
}

func (p *peerList) set(addrs []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.addrs = slices.Clone(addrs)
}

func (p *peerList) get() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.addrs)
}

// errNoPeerHasImage says no peer could give the image.
var errNoPeerHasImage = errors.New("no peer node has the image")

// pullFromPeers fetches ref from the first peer that says it has it.
func (a *Agent) pullFromPeers(ctx context.Context, ref string) error {
	pi, ok := a.cfg.Images.(PeerImages)
	addrs := a.peers.get()
	if !ok || a.cfg.PeerTransport == nil || len(addrs) == 0 {
		return errNoPeerHasImage
	}
	peer := a.findPeer(ctx, ref, addrs)
	if peer == nil {
		return errNoPeerHasImage
	}
	if _, err := pi.PullFromPeer(ctx, ref, *peer); err != nil {
		return err
	}
	a.log.Info("image fetched from a peer node", "image", ref, "peer", peer.Addr)
	return nil
}

// findPeer asks every peer at once whether it has ref, and returns the first
// that does.
func (a *Agent) findPeer(ctx context.Context, ref string, addrs []string) *image.Peer {
	ctx, cancel := context.WithTimeout(ctx, peerProbeTimeout)
	defer cancel()
	found := make(chan *image.Peer, len(addrs))
	for _, addr := range addrs {
		go func(p image.Peer) {
			if ok, err := image.PeerHas(ctx, ref, p); err == nil && ok {
				found <- &p
				return
			}
			found <- nil
		}(image.Peer{Addr: addr, Transport: a.cfg.PeerTransport})
	}
	for range addrs {
		if p := <-found; p != nil {
			return p
		}
	}
	return nil
}
