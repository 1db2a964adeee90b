package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"reflect"
	"slices"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/ca"
	"github.com/shoal-project/shoal/cluster/session"
	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/transport"
)

// A node's certificate names its role; a node gets a new one when its role
// changes (promote, demote) and before its current one expires. Any manager
// issues it, for the role the node's object has now.

// certRequest asks for a new certificate for the caller.
type certRequest struct{ CSR []byte }

// certReply is a new certificate and the root it chains to.
type certReply struct {
	CertPEM []byte
	RootPEM []byte
	Role    string
}

// serveCertificate issues the calling node a certificate for its current role.
// A node promoted to manager is given its manager address on the way.
func (c *Cluster) serveCertificate(w http.ResponseWriter, r *http.Request) {
	peer, err := peerIdentity(r)
	if err != nil {
		writeRPCError(w, http.StatusForbidden, err)
		return
	}
	var req certRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, maxJoinRequest)).Decode(&req); err != nil {
		writeRPCError(w, http.StatusBadRequest, err)
		return
	}
	s, _, err := c.active()
	if err != nil {
		writeRPCError(w, http.StatusMisdirectedRequest, err)
		return
	}
	var reply certReply
	err = retryUpdate(r.Context(), s, func(tx store.Tx) error {
		n, err := tx.Node(peer.NodeID)
		if err != nil {
			return err
		}
		cl, err := tx.Cluster()
		if err != nil {
			return err
		}
		role := ca.WorkerRole
		if n.Spec.Role == swarm.NodeRoleManager {
			role = ca.ManagerRole
			if n.ManagerStatus == nil {
				p, err := tx.Peer(n.ID)
				if err != nil {
					return fmt.Errorf("node %s has no control address yet: %w", n.ID, err)
				}
				n.ManagerStatus = &swarm.ManagerStatus{Reachability: swarm.ReachabilityUnknown, Addr: p.ControlAddr}
				if err := tx.UpdateNode(n); err != nil {
					return err
				}
			}
		}
		r, err := swarmRoot(tx)
		if err != nil {
			return err
		}
		cert, err := signer(r).Issue(req.CSR, ca.Identity{NodeID: n.ID, Role: role, ClusterID: cl.ID}, time.Now(), cl.Spec.CAConfig.NodeCertExpiry)
		if err != nil {
			return errInvalidf("%v", err)
		}
		reply = certReply{CertPEM: cert, RootPEM: trustBundle(r), Role: role}
		// What the node holds from now on, for `docker node ls` and for the
		// end of a root rotation.
		if info, err := tlsInfoOf(r.CertPEM); err == nil && !reflect.DeepEqual(n.Description.TLSInfo, info) {
			n.Description.TLSInfo = info
			return tx.UpdateNode(n)
		}
		return nil
	})
	if err != nil {
		writeStoreError(w, s, err)
		return
	}
	writeJSON(w, reply)
}

// renewCertificate gets this node a new key and certificate from a manager,
// keeps them, and makes them the node's credentials.
func (c *Cluster) renewCertificate(ctx context.Context) (ca.NodeFiles, error) {
	c.mu.RLock()
	creds, ag := c.creds, c.agent
	c.mu.RUnlock()
	if creds == nil || ag == nil {
		return ca.NodeFiles{}, unavailableError{msgNotInSwarm}
	}
	key, keyPEM, err := ca.NewNodeKey()
	if err != nil {
		return ca.NodeFiles{}, err
	}
	csr, err := ca.NewCSR(key)
	if err != nil {
		return ca.NodeFiles{}, err
	}
	body, _ := json.Marshal(certRequest{CSR: csr})
	var reply certReply
	if err := callLeader(ctx, creds.HTTPClient(false), ag.follower.Managers(), "/node/certificate", body, &reply); err != nil {
		return ca.NodeFiles{}, fmt.Errorf("renew the node certificate: %w", err)
	}
	files := ca.NodeFiles{CertPEM: reply.CertPEM, KeyPEM: keyPEM, RootPEM: reply.RootPEM}
	if err := c.saveCredentials(creds, files); err != nil {
		return ca.NodeFiles{}, err
	}
	return files, nil
}

// renewAt is when a certificate valid from notBefore to notAfter is renewed: at
// a random point between half and four fifths of its life since it was issued
// (ca.ClockSkew after notBefore), so that the nodes of a swarm do not all ask
// at once.
func renewAt(notBefore, notAfter time.Time) time.Time {
	issued := notBefore.Add(ca.ClockSkew)
	if !issued.Before(notAfter) {
		issued = notBefore
	}
	life := notAfter.Sub(issued)
	return issued.Add(life/2 + time.Duration(rand.Int64N(int64(life*3/10)+1)))
}

// keepCertificate renews the node's certificate before it expires, until ctx
// is done.
func (c *Cluster) keepCertificate(ctx context.Context, creds *transport.Credentials) {
	for {
		leaf := creds.Leaf()
		wait := time.Until(renewAt(leaf.NotBefore, leaf.NotAfter))
		if err := pauseFor(ctx, wait); err != nil {
			return
		}
		if _, err := c.renewCertificate(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			retry := renewRetry(time.Until(creds.NotAfter()))
			c.log.Warn("renew the node certificate; trying again", "in", retry, "err", err)
			if err := pauseFor(ctx, retry); err != nil {
				return
			}
			continue
		}
		c.log.Info("node certificate renewed", "expires", creds.NotAfter().Format(time.RFC3339))
	}
}

// renewRetry is how long to wait before asking again for a certificate that
// has left to live: a minute, or sooner when it expires within four minutes,
// but never more often than once a second.
func renewRetry(left time.Duration) time.Duration {
	return min(time.Minute, max(time.Second, left/4))
}

func pauseFor(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// onNode follows the node's own object as the managers keep it: a role that
// differs from the node's own is a promotion or a demotion to carry out.
func (c *Cluster) onNode(n *swarm.Node) {
	c.mu.Lock()
	c.outOfRaft = n.Spec.Role == swarm.NodeRoleWorker && n.ManagerStatus == nil
	if c.node == nil || c.busy {
		c.mu.Unlock()
		return
	}
	isManager := c.store != nil
	wantManager := n.Spec.Role == swarm.NodeRoleManager
	if isManager == wantManager {
		c.mu.Unlock()
		return
	}
	c.busy = true
	c.mu.Unlock()
	go func() {
		defer func() {
			c.mu.Lock()
			c.busy = false
			c.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var err error
		if wantManager {
			err = c.promote(ctx)
		} else {
			err = c.demote(ctx)
		}
		if err != nil {
			c.log.Warn("change of role", "manager", wantManager, "err", err)
		}
	}()
}

// promote makes this worker a manager: a manager certificate, a store that
// joins Raft, and the leadership supervisor.
func (c *Cluster) promote(ctx context.Context) error {
	files, err := c.renewCertificate(ctx)
	if err != nil {
		return err
	}
	c.mu.RLock()
	st, creds, port, ag := *c.node, c.creds, c.port, c.agent
	c.mu.RUnlock()
	if files.CertPEM == nil || creds.Identity().Role != ca.ManagerRole {
		return fmt.Errorf("promotion: the managers issued a %s certificate", creds.Identity().Role)
	}
	_ = os.RemoveAll(c.raftDir())
	s, err := c.openStore(ctx, &st, creds, port, nil)
	if err != nil {
		return err
	}
	if err := joinRaft(ctx, s, creds, ag.follower.Managers()); err != nil {
		_ = s.Destroy()
		return err
	}
	st.Role = ca.ManagerRole
	if err := writeNodeState(c.statePath(), &st); err != nil {
		_ = s.Destroy()
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.node, c.store = &st, s
	if c.ctx != nil {
		c.startLeadership()
	}
	c.log.Info("promoted to manager", "node", st.NodeID)
	return nil
}

// demote makes this manager a worker: once the leader has taken it out of Raft,
// its store is closed and erased, and it gets a worker certificate.
func (c *Cluster) demote(ctx context.Context) error {
	c.mu.RLock()
	s, self := c.store, c.node.NodeID
	c.mu.RUnlock()
	if s != nil {
		// Until Raft has let this member go, the others may need its vote to
		// agree on exactly that.
		if err := waitRemoved(ctx, s, self, c.takenOutOfRaft); err != nil {
			return err
		}
	}
	c.mu.Lock()
	st := *c.node
	s = c.store
	stop := c.stopLeadership()
	c.store = nil
	st.Role = ca.WorkerRole
	c.node = &st
	c.mu.Unlock()
	stop()
	if s != nil {
		if err := s.Destroy(); err != nil {
			c.log.Warn("erase the store of a demoted manager", "err", err)
		}
	}
	// A worker's key is never sealed (Docker's rule); the next renewal
	// writes it plain.
	c.forgetLock()
	if err := writeNodeState(c.statePath(), &st); err != nil {
		return err
	}
	if _, err := c.renewCertificate(ctx); err != nil {
		return err
	}
	c.log.Info("demoted to worker", "node", st.NodeID)
	return nil
}

// waitRemoved waits until this member's Raft configuration no longer has it,
// or removed says the managers know it is out.
func waitRemoved(ctx context.Context, s *store.Store, self string, removed func() bool) error {
	for {
		members, err := s.Members()
		if err == nil && !slices.ContainsFunc(members, func(m store.Member) bool { return m.ID == self }) {
			return nil
		}
		if removed() {
			return nil
		}
		if err := pauseFor(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("wait to be taken out of raft: %w", err)
		}
	}
}

// takenOutOfRaft reports whether the managers say the leader has taken this
// node out of Raft. A demoted manager's own store may never say so: the
// leader can remove it before it has replicated its own demotion, and from
// then on it is sent nothing (it only keeps calling elections nobody answers).
func (c *Cluster) takenOutOfRaft() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.outOfRaft
}

// onCA renews the node's certificate when the swarm's root has moved on from
// what the node holds: a rotation began (a certificate of the new root), or
// ended (trust the new root alone).
func (c *Cluster) onCA(st *session.CAState) {
	c.mu.Lock()
	creds := c.creds
	if creds == nil || c.renewing || c.busy {
		c.mu.Unlock()
		return
	}
	files, info := creds.Files(), creds.TLSInfo()
	if bytes.Equal(files.RootPEM, st.TrustRoots) && bytes.Equal(info.CertIssuerPublicKey, st.IssuerKey) {
		c.mu.Unlock()
		return
	}
	c.renewing = true
	c.mu.Unlock()
	go func() {
		defer func() {
			c.mu.Lock()
			c.renewing = false
			c.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := c.renewCertificate(ctx); err != nil {
			c.log.Warn("renew the node certificate for the swarm's new root", "err", err)
			return
		}
		c.log.Info("node certificate renewed for the swarm's root CA")
	}()
}
