package agent

import (
	"slices"
	"strings"
	"sync"

	"github.com/shoal-project/shoal/cluster/session"
)

// localNetworks are the overlay networks a task of this node has been on, for
// as long as they exist: what the node shows in its own `docker network ls`
// without a store to read (a worker), as dockerd's worker knows a swarm
// network from the first task of it that attaches there until the network is
// removed.
type localNetworks struct {
	mu   sync.Mutex
	byID map[string]session.OverlayNetwork
}

// follow takes a new overlay view: the networks of nodeID's tasks are added,
// networks gone from the view dropped, the others refreshed.
func (l *localNetworks) follow(nodeID string, v *session.Overlay) {
	if v == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byID == nil {
		l.byID = map[string]session.OverlayNetwork{}
	}
	used := map[string]bool{}
	for _, t := range v.Tasks {
		if t.NodeID == nodeID {
			for id := range t.Addrs {
				used[id] = true
			}
		}
	}
	kept := map[string]session.OverlayNetwork{}
	for _, n := range v.Networks {
		if _, seen := l.byID[n.ID]; seen || used[n.ID] {
			kept[n.ID] = n
		}
	}
	l.byID = kept
}

// Networks are the overlay networks this node's tasks have been on, by name.
func (a *Agent) Networks() []session.OverlayNetwork {
	a.networks.mu.Lock()
	defer a.networks.mu.Unlock()
	out := make([]session.OverlayNetwork, 0, len(a.networks.byID))
	for _, n := range a.networks.byID {
		out = append(out, n)
	}
	slices.SortFunc(out, func(x, y session.OverlayNetwork) int { return strings.Compare(x.Name, y.Name) })
	return out
}
