package cluster

import (
	"context"
	"strings"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/store"
)

// Nodes lists the swarm's nodes.
func (c *Cluster) Nodes(ctx context.Context) ([]swarm.Node, error) {
	var out []swarm.Node
	err := c.view(func(tx store.ReadTx) error {
		nodes, err := tx.Nodes()
		for _, n := range nodes {
			out = append(out, *n)
		}
		return err
	})
	c.markLeader(out)
	return out, err
}

// Node finds a node by ID, unique ID prefix or hostname.
func (c *Cluster) Node(ctx context.Context, ref string) (swarm.Node, error) {
	var out swarm.Node
	err := c.view(func(tx store.ReadTx) error {
		n, err := findNode(tx, ref)
		if err == nil {
			out = *n
		}
		return err
	})
	if err == nil {
		nodes := []swarm.Node{out}
		c.markLeader(nodes)
		out = nodes[0]
	}
	return out, err
}

// markLeader shows which manager leads, as Raft knows it now: leadership is
// not stored, it is what the managers agree on at the moment.
func (c *Cluster) markLeader(nodes []swarm.Node) {
	s, _, _, err := c.current()
	if err != nil {
		return
	}
	leader, _ := s.Leader()
	for i := range nodes {
		ms := nodes[i].ManagerStatus
		if ms == nil {
			continue
		}
		ms.Leader = nodes[i].ID == leader
		if ms.Leader {
			ms.Reachability = swarm.ReachabilityReachable
		}
	}
}

func findNode(tx store.ReadTx, ref string) (*swarm.Node, error) {
	if n, err := tx.Node(ref); err == nil {
		return n, nil
	}
	nodes, err := tx.Nodes()
	if err != nil {
		return nil, err
	}
	var match []*swarm.Node
	for _, n := range nodes {
		if n.Description.Hostname == ref {
			return n, nil
		}
		if strings.HasPrefix(n.ID, ref) {
			match = append(match, n)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return nil, errNotFoundf("node %s not found", ref)
	}
	return nil, errInvalidf("node %s is ambiguous (%d matches found)", ref, len(match))
}

// UpdateNode replaces a node's spec (compare-and-set on version).
func (c *Cluster) UpdateNode(ctx context.Context, ref string, version uint64, spec swarm.NodeSpec) error {
	switch spec.Availability {
	case swarm.NodeAvailabilityActive, swarm.NodeAvailabilityPause, swarm.NodeAvailabilityDrain:
	default:
		return errInvalidf("invalid availability %q: must be one of active, pause, drain", spec.Availability)
	}
	switch spec.Role {
	case swarm.NodeRoleManager, swarm.NodeRoleWorker:
	default:
		return errInvalidf("invalid role %q: must be manager or worker", spec.Role)
	}
	return c.update(ctx, func(tx store.Tx) error {
		n, err := findNode(tx, ref)
		if err != nil {
			return err
		}
		if n.Version.Index != version {
			return store.ErrOutOfSequence
		}
		if n.Spec.Role == swarm.NodeRoleManager && spec.Role == swarm.NodeRoleWorker {
			if managers(tx) <= 1 {
				return errInvalidf("rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm")
			}
			if !canRemoveManager(tx, n) {
				return errInvalidf("rpc error: code = FailedPrecondition desc = can't remove member from the raft: this would result in a loss of quorum")
			}
		}
		if spec.Labels == nil {
			spec.Labels = map[string]string{}
		}
		n.Spec = spec
		return tx.UpdateNode(n)
	})
}

func managers(tx store.ReadTx) int {
	nodes, _ := tx.Nodes()
	count := 0
	for _, n := range nodes {
		if n.Spec.Role == swarm.NodeRoleManager {
			count++
		}
	}
	return count
}

// RemoveNode removes a node from the swarm. A manager must be demoted first.
func (c *Cluster) RemoveNode(ctx context.Context, ref string, force bool) error {
	s, _, err := c.active()
	if err != nil {
		return err
	}
	voters := map[string]bool{}
	if members, err := s.Members(); err == nil {
		for _, m := range members {
			voters[m.ID] = true
		}
	}
	return c.update(ctx, func(tx store.Tx) error {
		n, err := findNode(tx, ref)
		if err != nil {
			return err
		}
		if n.Spec.Role == swarm.NodeRoleManager && voters[n.ID] {
			return errInvalidf("rpc error: code = FailedPrecondition desc = node %s is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal", n.ID)
		}
		if n.Status.State == swarm.NodeStateReady && !force {
			return errInvalidf("rpc error: code = FailedPrecondition desc = node %s is not down and can't be removed", n.ID)
		}
		if _, err := tx.Peer(n.ID); err == nil {
			if err := tx.DeletePeer(n.ID); err != nil {
				return err
			}
		}
		return tx.DeleteNode(n.ID)
	})
}

// canRemoveManager reports whether the managers left once n is no longer one
// still make a Raft quorum among them (swarmkit's rule for a demotion).
func canRemoveManager(tx store.ReadTx, n *swarm.Node) bool {
	reachable, unreachable := managerCounts(tx)
	if n.ManagerStatus == nil || n.ManagerStatus.Reachability == swarm.ReachabilityUnreachable {
		unreachable--
	} else {
		reachable--
	}
	return 2*reachable > reachable+unreachable
}
