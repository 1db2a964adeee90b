package cluster

import (
	"context"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/store"
)

// reconcileMembers keeps Raft's membership in step with the node objects, on
// the leader: a manager demoted to worker, or removed, stops being a voter.
// Promotion goes the other way round: the promoted node gets a manager
// certificate, opens its store, and asks to be added (joinRaft).
func (l *leadership) reconcileMembers(ctx context.Context) error {
	events, err := l.store.ViewAndWatch(ctx, func(store.ReadTx) error { return nil }, store.KindNode)
	if err != nil {
		return err
	}
	for {
		l.dropDemoted(ctx)
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-events:
			if !ok {
				return nil
			}
			for drained := false; !drained; {
				select {
				case <-events:
				default:
					drained = true
				}
			}
		}
	}
}

// dropDemoted removes from Raft the voters whose node is gone or a worker now.
func (l *leadership) dropDemoted(ctx context.Context) {
	members, err := l.store.Members()
	if err != nil {
		return
	}
	roles := map[string]swarm.NodeRole{}
	var stale []string // workers still shown as managers
	voters := map[string]bool{}
	for _, m := range members {
		voters[m.ID] = true
	}
	_ = l.store.View(func(tx store.ReadTx) error {
		nodes, err := tx.Nodes()
		for _, n := range nodes {
			roles[n.ID] = n.Spec.Role
			if n.Spec.Role == swarm.NodeRoleWorker && n.ManagerStatus != nil && !voters[n.ID] {
				stale = append(stale, n.ID)
			}
		}
		return err
	})
	for _, m := range members {
		if roles[m.ID] == swarm.NodeRoleManager {
			continue
		}
		// A demoted leader removes itself too: Raft commits the change with
		// the current members' quorum and then steps down. (Handing over
		// first would leave two members that can never agree to drop the
		// second, once it is gone.)
		l.log.Info("removing a demoted or removed manager from raft", "node", m.ID)
		if err := l.store.RemoveServer(ctx, m.ID); err != nil {
			l.log.Warn("remove manager from raft", "node", m.ID, "err", err)
			continue
		}
		stale = append(stale, m.ID)
	}
	for _, id := range stale {
		err := retryUpdate(ctx, l.store, func(tx store.Tx) error {
			n, err := tx.Node(id)
			if err != nil || n.ManagerStatus == nil {
				return nil
			}
			n.ManagerStatus = nil
			return tx.UpdateNode(n)
		})
		if err != nil {
			l.log.Warn("record demotion", "node", id, "err", err)
		}
	}
}
