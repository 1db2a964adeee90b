package cluster

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/raft"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/ca"
	"github.com/shoal-project/shoal/cluster/store"
)

// managerCounts counts the swarm's managers by reachability, as this manager sees
// them.
func managerCounts(tx store.ReadTx) (reachable, unreachable int) {
	nodes, _ := tx.Nodes()
	for _, n := range nodes {
		if n.Spec.Role != swarm.NodeRoleManager || n.ManagerStatus == nil {
			continue
		}
		if n.ManagerStatus.Reachability == swarm.ReachabilityUnreachable {
			unreachable++
		} else {
			reachable++
		}
	}
	return reachable, unreachable
}

// losesQuorum reports whether removing one reachable manager leaves too few for
// a Raft quorum.
func losesQuorum(reachable, unreachable int) bool { return reachable-2 <= unreachable }

// leaveRefusal is Docker's refusal of a manager's leave without --force.
func leaveRefusal(tx store.ReadTx) error {
	msg := "You are attempting to leave the swarm on a node that is participating as a manager. "
	reachable, unreachable := managerCounts(tx)
	if losesQuorum(reachable, unreachable) {
		if reachable <= 1 && unreachable == 0 {
			return unavailableError{msgLeaveLast}
		}
		msg += fmt.Sprintf("Removing this node leaves %v managers out of %v. Without a Raft quorum your swarm will be inaccessible. ", reachable-1, reachable+unreachable)
	}
	msg += "The only way to restore a swarm that has lost consensus is to reinitialize it with `--force-new-cluster`. Use `--force` to suppress this message."
	return unavailableError{msg}
}

// Leave takes the node out of its swarm. A manager leaves only with force
// (Docker's rule): a manager of several leaves Raft first; the last one erases
// the swarm. The node's task containers are removed.
func (c *Cluster) Leave(ctx context.Context, force bool) error {
	c.mu.Lock()
	if c.node == nil {
		c.mu.Unlock()
		return unavailableError{msgNotInSwarm}
	}
	if c.busy {
		c.mu.Unlock()
		return unavailableError{"another swarm operation is under way on this node"}
	}
	if c.locked && !force {
		c.mu.Unlock()
		return unavailableError{msgLeaveLocked}
	}
	s, st, creds := c.store, c.node, c.creds
	if s != nil && !force {
		var refusal error
		_ = s.View(func(tx store.ReadTx) error {
			refusal = leaveRefusal(tx)
			return nil
		})
		c.mu.Unlock()
		return refusal
	}
	c.busy = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.busy = false
		c.mu.Unlock()
	}()
	if s != nil {
		if members, err := s.Members(); err == nil && len(members) > 1 {
			// Leave Raft so the others' quorum does not count this manager.
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := callLeader(lctx, creds.HTTPClient(false), managerAddrs(members, st.NodeID), "/raft/leave", nil, nil)
			cancel()
			if err != nil {
				c.log.Warn("leave raft before leaving the swarm", "err", err)
			}
		}
	}
	// Stop and close without c.mu (see detach); c.busy keeps other swarm
	// operations off meanwhile.
	c.mu.Lock()
	stop := c.detach()
	ag, port, m := c.agent, c.port, c.mesh
	c.mesh = nil
	c.mu.Unlock()
	stop()
	if ag != nil {
		ag.RemoveTasks(ctx)
	}
	if m != nil {
		m.close()
	}
	if port != nil {
		port.Close()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s != nil {
		if err := s.Destroy(); err != nil {
			return fmt.Errorf("erase swarm state: %w", err)
		}
	}
	for _, path := range []string{c.certDir(), c.raftDir(), c.statePath()} {
		if err := os.RemoveAll(path); err != nil {
			return fmt.Errorf("erase swarm node state: %w", err)
		}
	}
	c.node, c.store, c.creds, c.port, c.lead, c.agent, c.locked = nil, nil, nil, nil, nil, nil, false
	c.forgetLock()
	c.log.Info("left the swarm", "role", st.Role)
	return nil
}

// managerAddrs are the control addresses of the voters other than self.
func managerAddrs(members []store.Member, self string) []string {
	var out []string
	for _, m := range members {
		if m.ID != self {
			out = append(out, string(m.Addr))
		}
	}
	return out
}

// forceNewCluster makes this manager the only member of its swarm's Raft,
// keeping the swarm's state: the way back from a lost quorum. Callers hold no
// lock.
func (c *Cluster) forceNewCluster(ctx context.Context) (string, error) {
	c.mu.Lock()
	st, creds, port := c.node, c.creds, c.port
	if c.store == nil {
		c.mu.Unlock()
		return "", unavailableError{msgNotManager}
	}
	if c.busy {
		c.mu.Unlock()
		return "", unavailableError{"another swarm operation is under way on this node"}
	}
	c.busy = true
	stop := c.detach()
	c.mu.Unlock()
	stop() // without c.mu: see detach
	c.mu.Lock()
	defer func() {
		c.busy = false
		c.mu.Unlock()
	}()
	if err := c.store.Close(); err != nil {
		c.log.Warn("close the store before recovery", "err", err)
	}
	c.store = nil
	c.lockMu.Lock()
	key := c.lockKey
	c.lockMu.Unlock()
	cfg := c.storeConfig(st, creds, port)
	if key != nil {
		cfg.KEK = key.KEK()
	}
	if err := store.Recover(cfg, raft.ServerAddress(st.AdvertiseAddr)); err != nil {
		return "", err
	}
	s, err := c.openStore(ctx, st, creds, port, key)
	if err != nil {
		return "", err
	}
	c.store = s
	if err := waitLeader(ctx, s); err != nil {
		return "", fmt.Errorf("elect swarm leader: %w", err)
	}
	err = retryUpdate(ctx, s, func(tx store.Tx) error {
		nodes, err := tx.Nodes()
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if n.ID == st.NodeID || n.ManagerStatus == nil || n.ManagerStatus.Reachability == swarm.ReachabilityUnreachable {
				continue
			}
			n.ManagerStatus.Reachability = swarm.ReachabilityUnreachable
			if err := tx.UpdateNode(n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		c.log.Warn("mark the former managers unreachable", "err", err)
	}
	c.start()
	c.log.Info("swarm recovered as a new cluster of one manager", "node", st.NodeID)
	return st.NodeID, nil
}

// upgradeCertificates issues this manager its certificate when its swarm was
// made before nodes had them, and moves its Raft address to the control port.
func (c *Cluster) upgradeCertificates(ctx context.Context, st *nodeState) (ca.NodeFiles, error) {
	cfg := store.Config{Dir: c.raftDir(), NodeID: st.NodeID, Logger: c.log.With("component", "store")}
	s, err := store.Open(ctx, cfg)
	if err != nil {
		return ca.NodeFiles{}, fmt.Errorf("open swarm store: %w", err)
	}
	var (
		cl   *swarm.Swarm
		root *store.RootCA
	)
	err = func() error {
		defer s.Close()
		if err := waitLeader(ctx, s); err != nil {
			return err
		}
		return s.View(func(tx store.ReadTx) error {
			var err error
			if cl, err = tx.Cluster(); err != nil {
				return err
			}
			root, err = swarmRoot(tx)
			return err
		})
	}()
	if err != nil {
		return ca.NodeFiles{}, fmt.Errorf("read the swarm's root CA: %w", err)
	}
	if err := store.Recover(cfg, raft.ServerAddress(st.AdvertiseAddr)); err != nil {
		return ca.NodeFiles{}, err
	}
	files, err := issueOwn(signer(root), ca.Identity{NodeID: st.NodeID, Role: ca.ManagerRole, ClusterID: cl.ID}, time.Now(), cl.Spec.CAConfig.NodeCertExpiry)
	if err != nil {
		return ca.NodeFiles{}, err
	}
	if err := files.Save(c.certDir()); err != nil {
		return ca.NodeFiles{}, err
	}
	st.ClusterID = cl.ID
	if err := writeNodeState(c.statePath(), st); err != nil {
		return ca.NodeFiles{}, err
	}
	c.log.Info("issued this manager's certificate (swarm made by an older shoal)", "node", st.NodeID)
	return files, nil
}
