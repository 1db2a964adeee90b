package cluster

import (
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/dispatcher"
	"github.com/shoal-project/shoal/cluster/scheduler"
	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/taskstate"
)

// Metrics is told what the control plane does as it does it: the store's
// commits, the scheduler's placements and the dispatcher's heartbeats. What can
// be read at any moment instead (tasks by state, Raft indexes) is in Stats.
type Metrics interface {
	store.Metrics
	scheduler.Metrics
	dispatcher.Metrics
}

// Stats is this node's view of the swarm at one moment, read for metrics. A
// manager reads it from its replica of the store, so every manager reports the
// whole swarm; dashboards take the leader's.
type Stats struct {
	// Manager is whether this node keeps the store; on a worker, or outside
	// a swarm, the other fields are zero.
	Manager bool
	Raft    store.RaftStats
	// Tasks counts the swarm's tasks by their current state.
	Tasks map[swarm.TaskState]int
	// PendingTasks counts the tasks that wait for a node.
	PendingTasks int
	// Nodes counts the swarm's nodes by their status.
	Nodes map[swarm.NodeState]int
}

// Stats reads the node's view of the swarm. It costs one read of every task and
// node, made when metrics are scraped, not as the swarm changes.
func (c *Cluster) Stats() Stats {
	c.mu.RLock()
	st, locked := c.store, c.locked
	c.mu.RUnlock()
	if st == nil || locked {
		return Stats{}
	}
	s := Stats{Manager: true, Raft: st.Stats(), Tasks: map[swarm.TaskState]int{}, Nodes: map[swarm.NodeState]int{}}
	_ = st.View(func(tx store.ReadTx) error {
		tasks, err := tx.Tasks()
		if err != nil {
			return err
		}
		for _, t := range tasks {
			s.Tasks[t.Status.State]++
			if t.Status.State == swarm.TaskStatePending && taskstate.Wanted(t.DesiredState) {
				s.PendingTasks++
			}
		}
		nodes, err := tx.Nodes()
		if err != nil {
			return err
		}
		for _, n := range nodes {
			s.Nodes[n.Status.State]++
		}
		return nil
	})
	return s
}

// PeerTraffic is what this node's WireGuard interface has exchanged with one
// other node of the mesh.
type PeerTraffic struct {
	NodeID                      string
	ReceiveBytes, TransmitBytes int64
	LastHandshake               time.Time
}

// MeshTraffic is the data plane's traffic with each other node (none while
// the node has no mesh interface).
func (c *Cluster) MeshTraffic() []PeerTraffic {
	c.mu.RLock()
	m := c.mesh
	c.mu.RUnlock()
	if m == nil {
		return nil
	}
	return m.traffic()
}
