package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/ca"
	"github.com/shoal-project/shoal/cluster/session"
	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/transport"
)

// The control port's RPC protocol is HTTP over mutual TLS; the peer is named by
// its certificate. Sessions (package session), forwarded writes and read
// barriers, and Raft membership requests are served here.

// maxProposal bounds a forwarded batch.
const maxProposal = 16 << 20

// rpcHandler serves the RPC protocol of the control port.
func (c *Cluster) rpcHandler() http.Handler {
	mux := http.NewServeMux()
	sessions := session.Handler(c.sessionServer, func(r *http.Request) (string, error) {
		id, err := peerIdentity(r)
		return id.NodeID, err
	})
	mux.Handle("/session/", sessions)
	mux.HandleFunc("POST /store/propose", c.managerOnly(c.serveProposal))
	mux.HandleFunc("POST /store/readindex", c.managerOnly(c.serveReadIndex))
	mux.HandleFunc("POST /raft/join", c.managerOnly(c.serveRaftJoin))
	mux.HandleFunc("POST /raft/leave", c.managerOnly(c.serveRaftLeave))
	mux.HandleFunc("POST /node/certificate", c.serveCertificate)
	mux.HandleFunc("GET /logs", c.serveLogs)
	if c.cfg.PeerImages != nil {
		// Any node of the swarm may fetch images (the control port already
		// checked its certificate); the store verifies what it serves.
		mux.Handle("/v2/", c.cfg.PeerImages)
	}
	return mux
}

// peerIdentity names the node at the other end of a control port request.
func peerIdentity(r *http.Request) (ca.Identity, error) { return transport.Peer(r) }

// managerOnly lets only managers' requests through to h, on a manager.
func (c *Cluster) managerOnly(h func(http.ResponseWriter, *http.Request, *store.Store)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := peerIdentity(r)
		if err != nil || !id.IsManager() {
			writeRPCError(w, http.StatusForbidden, errors.New("only managers may ask this"))
			return
		}
		c.mu.RLock()
		s := c.store
		c.mu.RUnlock()
		if s == nil {
			writeRPCError(w, http.StatusMisdirectedRequest, store.ErrNotLeader)
			return
		}
		h(w, r, s)
	}
}

// leadership is the manager's leadership supervisor (nil on workers).
func (c *Cluster) leadership() *leadership {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.lead
}

// sessionServer is the session server of this node: its dispatcher while it
// leads.
func (c *Cluster) sessionServer() (session.Server, error) {
	if lead := c.leadership(); lead != nil {
		return lead.sessionServer()
	}
	// A worker (a demoted manager, say) points at the managers it knows.
	c.mu.RLock()
	ag := c.agent
	c.mu.RUnlock()
	var managers []string
	if ag != nil {
		managers = ag.follower.Managers()
	}
	return nil, session.NotLeaderError{Managers: managers}
}

// authorize refuses control port peers the swarm no longer knows: a removed
// node's certificate is good for nothing from then on. A manager whose store
// has not caught up yet (it is joining) cannot tell, and lets them in.
func (c *Cluster) authorize(proto string, peer ca.Identity) error {
	c.mu.RLock()
	s := c.store
	c.mu.RUnlock()
	if s == nil {
		return nil
	}
	return s.View(func(tx store.ReadTx) error {
		if _, err := tx.Cluster(); err != nil {
			return nil
		}
		if _, err := tx.Node(peer.NodeID); store.IsNotFound(err) {
			return fmt.Errorf("node %s is not part of this swarm", peer.NodeID)
		}
		return nil
	})
}

// rpcError is the body of an RPC error answer.
type rpcError struct {
	Message string
	Code    string `json:",omitempty"`
	Leader  string `json:",omitempty"`
}

func writeRPCError(w http.ResponseWriter, status int, err error) {
	body := rpcError{Message: err.Error(), Code: store.ErrorCode(err)}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// writeStoreError answers a store error; "not the leader" names the leader.
func writeStoreError(w http.ResponseWriter, s *store.Store, err error) {
	status := http.StatusInternalServerError
	if errors.Is(err, store.ErrNotLeader) {
		body := rpcError{Message: err.Error(), Code: store.ErrorCode(err)}
		_, addr := s.Leader()
		body.Leader = string(addr)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMisdirectedRequest)
		_ = json.NewEncoder(w).Encode(body)
		return
	}
	if store.ErrorCode(err) != "" {
		status = http.StatusConflict
	}
	writeRPCError(w, status, err)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

type indexReply struct{ Index uint64 }

func (c *Cluster) serveProposal(w http.ResponseWriter, r *http.Request, s *store.Store) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxProposal+1))
	if err != nil {
		writeRPCError(w, http.StatusBadRequest, err)
		return
	}
	if len(data) > maxProposal {
		writeRPCError(w, http.StatusRequestEntityTooLarge, errors.New("proposal too large"))
		return
	}
	index, err := s.Propose(r.Context(), data)
	if err != nil {
		writeStoreError(w, s, err)
		return
	}
	writeJSON(w, indexReply{Index: index})
}

func (c *Cluster) serveReadIndex(w http.ResponseWriter, r *http.Request, s *store.Store) {
	index, err := s.ReadIndex(r.Context())
	if err != nil {
		writeStoreError(w, s, err)
		return
	}
	writeJSON(w, indexReply{Index: index})
}

// serveRaftJoin adds the calling manager to Raft, at the address its node
// object names, on the leader.
func (c *Cluster) serveRaftJoin(w http.ResponseWriter, r *http.Request, s *store.Store) {
	id, _ := peerIdentity(r)
	if !s.IsLeader() {
		writeStoreError(w, s, store.ErrNotLeader)
		return
	}
	var addr string
	err := s.View(func(tx store.ReadTx) error {
		n, err := tx.Node(id.NodeID)
		if err != nil {
			return err
		}
		if n.ManagerStatus == nil || n.ManagerStatus.Addr == "" {
			return fmt.Errorf("node %s is not a manager", id.NodeID)
		}
		addr = n.ManagerStatus.Addr
		return nil
	})
	if err != nil {
		writeRPCError(w, http.StatusForbidden, err)
		return
	}
	if err := s.AddVoter(r.Context(), id.NodeID, raft.ServerAddress(addr)); err != nil {
		writeStoreError(w, s, err)
		return
	}
	if lead := c.leadership(); lead != nil {
		lead.setReachability(r.Context(), id.NodeID, swarm.ReachabilityReachable)
	}
	w.WriteHeader(http.StatusNoContent)
}

// serveRaftLeave takes the calling manager out of Raft (it leaves the swarm),
// on the leader.
func (c *Cluster) serveRaftLeave(w http.ResponseWriter, r *http.Request, s *store.Store) {
	id, _ := peerIdentity(r)
	if !s.IsLeader() {
		writeStoreError(w, s, store.ErrNotLeader)
		return
	}
	if err := s.RemoveServer(r.Context(), id.NodeID); err != nil {
		writeStoreError(w, s, err)
		return
	}
	err := retryUpdate(r.Context(), s, func(tx store.Tx) error {
		n, err := tx.Node(id.NodeID)
		if err != nil || n.ManagerStatus == nil {
			return nil
		}
		n.ManagerStatus.Reachability = swarm.ReachabilityUnreachable
		return tx.UpdateNode(n)
	})
	if err != nil {
		c.log.Warn("record a manager's leave", "node", id.NodeID, "err", err)
	}
	w.WriteHeader(http.StatusNoContent)
}

// readIndexTimeout bounds a read barrier asked of the leader.
const readIndexTimeout = 2 * time.Second

// forwarder is the store's Forwarder over the control port.
type forwarder struct{ client *http.Client }

func (f forwarder) Propose(ctx context.Context, leader raft.ServerAddress, batch []byte) (uint64, error) {
	var reply indexReply
	err := callRPC(ctx, f.client, string(leader), "/store/propose", batch, &reply)
	return reply.Index, err
}

func (f forwarder) ReadIndex(ctx context.Context, leader raft.ServerAddress) (uint64, error) {
	// A leader answers a read barrier in a round trip or two; one that does
	// not within this is gone (crashed, partitioned) as far as readers care.
	ctx, cancel := context.WithTimeout(ctx, readIndexTimeout)
	defer cancel()
	var reply indexReply
	err := callRPC(ctx, f.client, string(leader), "/store/readindex", nil, &reply)
	var te transportError
	if errors.As(err, &te) {
		// Asking again is harmless: any failure to get an answer counts as
		// a leader that cannot be reached.
		return 0, fmt.Errorf("%w: %w", store.ErrLeaderUnreachable, err)
	}
	return reply.Index, err
}

// transportError is a request that got no answer: undelivered when the
// connection could not even be opened.
type transportError struct {
	addr        string
	err         error
	undelivered bool
}

func (e transportError) Error() string     { return fmt.Sprintf("reach manager %s: %v", e.addr, e.err) }
func (e transportError) Unavailable() bool { return true }

// Unwrap lets an undelivered request read as ErrLeaderUnreachable: the store
// may send it again to the next leader.
func (e transportError) Unwrap() []error {
	if e.undelivered {
		return []error{e.err, store.ErrLeaderUnreachable}
	}
	return []error{e.err}
}

// notLeaderError is a "not the leader" answer, naming the leader if known.
type notLeaderError struct{ leader string }

func (e notLeaderError) Error() string     { return store.ErrNotLeader.Error() }
func (e notLeaderError) Unwrap() error     { return store.ErrNotLeader }
func (e notLeaderError) Unavailable() bool { return true }

// callRPC posts body to path on the control port at addr and decodes the
// answer into out (if any). Store errors come back as the errors they were.
func callRPC(ctx context.Context, client *http.Client, addr, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		var op *net.OpError
		return transportError{addr: addr, err: err, undelivered: errors.As(err, &op) && op.Op == "dial"}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		if out == nil || resp.StatusCode == http.StatusNoContent {
			return nil
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
			return fmt.Errorf("read answer of %s%s: %w", addr, path, err)
		}
		return nil
	}
	var e rpcError
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(data, &e) != nil || e.Message == "" {
		e.Message = fmt.Sprintf("%s%s: %s: %s", addr, path, resp.Status, strings.TrimSpace(string(data)))
	}
	if resp.StatusCode == http.StatusMisdirectedRequest {
		return notLeaderError{leader: e.Leader}
	}
	return store.ErrorFromCode(e.Code, e.Message)
}

// callLeader is callRPC to whichever of the managers leads: it starts with the
// first and follows "not the leader" answers.
func callLeader(ctx context.Context, client *http.Client, managers []string, path string, body []byte, out any) error {
	tried := map[string]bool{}
	queue := append([]string(nil), managers...)
	var last error = unavailableError{"no manager known"}
	for len(queue) > 0 {
		addr := queue[0]
		queue = queue[1:]
		if tried[addr] {
			continue
		}
		tried[addr] = true
		err := callRPC(ctx, client, addr, path, body, out)
		if err == nil {
			return nil
		}
		last = err
		var nl notLeaderError
		if errors.As(err, &nl) {
			if nl.leader != "" && !tried[nl.leader] {
				queue = append([]string{nl.leader}, queue...)
			}
			continue
		}
		var un interface{ Unavailable() bool }
		if !errors.As(err, &un) {
			return err
		}
	}
	return last
}
