package cluster

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/ca"
	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/transport"
)

// Joining, as the join protocol of the control port speaks it (the only one
// without a client certificate):
//
//	joiner                                  manager
//	GET  /join/ca                 ───────▶  the root CA certificate (PEM)
//	     checks its digest against the token; from here on, TLS accepts only
//	     a manager that root signs
//	POST /join {token, CSR, hello} ──────▶  token checked against the swarm's;
//	                                        node object created; certificate
//	                                        issued for the role the token grants
//	     ◀─── {node ID, certificate, managers}
//
// A joining manager then opens its store and asks the leader (over the RPC
// protocol, with its new certificate) to make it a Raft voter.

// joinRequest is what a joining node sends.
type joinRequest struct {
	Token        string
	CSR          []byte
	Hello        nodeHello
	Availability swarm.NodeAvailability `json:",omitempty"`
}

// nodeHello is what a joining node says of itself.
type nodeHello struct {
	Description   swarm.NodeDescription
	AdvertiseAddr string // host:port of its control port
}

// joinReply is what the manager answers.
type joinReply struct {
	NodeID    string
	ClusterID string
	Role      string
	CertPEM   []byte
	RootPEM   []byte
	Managers  []string
}

const maxJoinRequest = 1 << 20

// msgBadToken is Docker's answer to a join token the swarm does not know.
const msgBadToken = "rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster"

// joinHandler serves the join protocol on a manager.
func (c *Cluster) joinHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /join/ca", func(w http.ResponseWriter, r *http.Request) {
		// The roots the swarm trusts (two while its root rotates): the
		// joiner keeps the one its token names.
		var bundle []byte
		err := c.view(func(tx store.ReadTx) error {
			root, err := swarmRoot(tx)
			if err == nil {
				bundle = trustBundle(root)
			}
			return err
		})
		if err != nil {
			writeRPCError(w, http.StatusServiceUnavailable, err)
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(bundle)
	})
	mux.HandleFunc("POST /join", c.serveJoin)
	return mux
}

func (c *Cluster) serveJoin(w http.ResponseWriter, r *http.Request) {
	var req joinRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, maxJoinRequest)).Decode(&req); err != nil {
		writeRPCError(w, http.StatusBadRequest, fmt.Errorf("read join request: %w", err))
		return
	}
	reply, err := c.admit(r.Context(), req)
	if err != nil {
		status := http.StatusInternalServerError
		var iv interface{ InvalidParameter() bool }
		if errors.As(err, &iv) {
			status = http.StatusBadRequest
		}
		writeRPCError(w, status, err)
		return
	}
	writeJSON(w, reply)
}

// admit checks a join request's token and makes the joiner a node of the swarm.
func (c *Cluster) admit(ctx context.Context, req joinRequest) (joinReply, error) {
	s, _, err := c.active()
	if err != nil {
		return joinReply{}, err
	}
	if err := s.Sync(ctx); err != nil {
		return joinReply{}, err
	}
	if _, err := net.ResolveTCPAddr("tcp", req.Hello.AdvertiseAddr); err != nil {
		return joinReply{}, errInvalidf("invalid advertise address %q", req.Hello.AdvertiseAddr)
	}
	switch req.Availability {
	case "":
		req.Availability = swarm.NodeAvailabilityActive
	case swarm.NodeAvailabilityActive, swarm.NodeAvailabilityPause, swarm.NodeAvailabilityDrain:
	default:
		return joinReply{}, errInvalidf("invalid availability %q", req.Availability)
	}
	var (
		cl   *swarm.Swarm
		root *store.RootCA
		role string
	)
	err = s.View(func(tx store.ReadTx) error {
		var err error
		if cl, err = tx.Cluster(); err != nil {
			return err
		}
		if root, err = swarmRoot(tx); err != nil {
			return err
		}
		switch {
		case tokenMatches(req.Token, cl.JoinTokens.Manager):
			role = ca.ManagerRole
		case tokenMatches(req.Token, cl.JoinTokens.Worker):
			role = ca.WorkerRole
		default:
			return errInvalidf("%s", msgBadToken)
		}
		return nil
	})
	if err != nil {
		return joinReply{}, err
	}
	nodeID := store.NewID()
	now := time.Now().UTC()
	cert, err := signer(root).Issue(req.CSR, ca.Identity{NodeID: nodeID, Role: role, ClusterID: cl.ID}, now, cl.Spec.CAConfig.NodeCertExpiry)
	if err != nil {
		return joinReply{}, errInvalidf("%v", err)
	}
	node := &swarm.Node{
		ID: nodeID,
		Spec: swarm.NodeSpec{
			Annotations:  swarm.Annotations{Labels: map[string]string{}},
			Role:         swarm.NodeRoleWorker,
			Availability: req.Availability,
		},
		Description: req.Hello.Description,
		Status:      swarm.NodeStatus{State: swarm.NodeStateUnknown, Addr: hostOf(req.Hello.AdvertiseAddr)},
	}
	if info, err := tlsInfoOf(root.CertPEM); err == nil {
		node.Description.TLSInfo = info
	}
	if role == ca.ManagerRole {
		node.Spec.Role = swarm.NodeRoleManager
		node.ManagerStatus = &swarm.ManagerStatus{Reachability: swarm.ReachabilityUnknown, Addr: req.Hello.AdvertiseAddr}
	}
	err = s.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateNode(node); err != nil {
			return err
		}
		return tx.CreatePeer(&store.Peer{ID: nodeID, ControlAddr: req.Hello.AdvertiseAddr})
	})
	if err != nil {
		return joinReply{}, fmt.Errorf("record the new node: %w", err)
	}
	c.log.Info("node joined", "node", nodeID, "role", role, "addr", req.Hello.AdvertiseAddr)
	reply := joinReply{NodeID: nodeID, ClusterID: cl.ID, Role: role, CertPEM: cert, RootPEM: trustBundle(root)}
	if lead := c.leadership(); lead != nil {
		reply.Managers = lead.managers()
	}
	return reply, nil
}

// tokenMatches compares a join token with the swarm's in constant time.
func tokenMatches(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// Join joins an existing swarm through one of the managers in req.RemoteAddrs.
func (c *Cluster) Join(ctx context.Context, req swarm.JoinRequest) error {
	release, err := c.claim()
	if err != nil {
		return err
	}
	defer release()
	if err := checkListenAddr(req.ListenAddr); err != nil {
		return err
	}
	if req.JoinToken == "" {
		// What a manager's CA answers a node that brings no token.
		return errInvalidf("rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster")
	}
	digest, _, err := ca.ParseJoinToken(req.JoinToken)
	if err != nil {
		return errInvalidf("invalid join token")
	}
	if len(req.RemoteAddrs) == 0 {
		return errInvalidf("at least 1 RemoteAddr is required to join")
	}
	listen, err := listenAddr(req.ListenAddr)
	if err != nil {
		return err
	}
	var last error
	for _, remote := range req.RemoteAddrs {
		remote = withDefaultPort(remote)
		advertise, err := advertiseAddr(cmp.Or(req.AdvertiseAddr, c.cfg.DefaultAdvertiseAddr), listen, remote)
		if err != nil {
			return err
		}
		err = c.joinVia(ctx, remote, digest, req, listen, advertise)
		if err == nil {
			return nil
		}
		last = err
		var iv interface{ InvalidParameter() bool }
		if errors.As(err, &iv) {
			return err
		}
	}
	return last
}

func withDefaultPort(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return net.JoinHostPort(addr, strconv.Itoa(DefaultControlPort))
	}
	return addr
}

// joinVia joins through the manager at remote.
func (c *Cluster) joinVia(ctx context.Context, remote, digest string, req swarm.JoinRequest, listen, advertise string) error {
	root, err := fetchRoot(ctx, remote, digest)
	if err != nil {
		return err
	}
	key, keyPEM, err := ca.NewNodeKey()
	if err != nil {
		return err
	}
	csr, err := ca.NewCSR(key)
	if err != nil {
		return err
	}
	body, err := json.Marshal(joinRequest{
		Token:        req.JoinToken,
		CSR:          csr,
		Hello:        nodeHello{Description: c.description(), AdvertiseAddr: advertise},
		Availability: req.Availability,
	})
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(root)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+remote+"/join", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := transport.JoinClient(pool).Do(hreq)
	if err != nil {
		return unreachableManager(remote, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e rpcError
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
		if resp.StatusCode == http.StatusBadRequest {
			return errInvalidf("%s", e.Message)
		}
		return errUnavailablef("join the swarm through %s: %s", remote, e.Message)
	}
	var reply joinReply
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&reply); err != nil {
		return fmt.Errorf("read join answer: %w", err)
	}
	if !bytes.Contains(reply.RootPEM, root) {
		return errUnavailablef("join the swarm through %s: the manager answered with another root CA", remote)
	}
	files := ca.NodeFiles{CertPEM: reply.CertPEM, KeyPEM: keyPEM, RootPEM: reply.RootPEM}
	managers := reply.Managers
	if len(managers) == 0 {
		managers = []string{remote}
	}
	st := &nodeState{NodeID: reply.NodeID, ClusterID: reply.ClusterID, Role: reply.Role,
		AdvertiseAddr: advertise, ListenAddr: listen, DataPathAddr: req.DataPathAddr, Managers: managers}
	if err := os.MkdirAll(c.cfg.Root, 0o700); err != nil {
		return fmt.Errorf("create swarm dir: %w", err)
	}
	if reply.Role == ca.ManagerRole {
		err = c.becomeManager(ctx, st, files, func(s *store.Store, creds *transport.Credentials) error {
			return joinRaft(ctx, s, creds, managers)
		})
	} else {
		err = c.becomeWorker(st, files)
	}
	if err != nil {
		return err
	}
	c.log.Info("joined the swarm", "node", st.NodeID, "role", st.Role, "via", remote)
	return nil
}

// fetchRoot fetches the swarm's root CA from remote and checks it against the
// digest of the join token.
func fetchRoot(ctx context.Context, remote, digest string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+remote+"/join/ca", nil)
	if err != nil {
		return nil, err
	}
	resp, err := transport.JoinClient(nil).Do(req)
	if err != nil {
		return nil, unreachableManager(remote, err)
	}
	defer resp.Body.Close()
	bundle, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, unreachableManager(remote, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e rpcError
		if json.Unmarshal(bundle, &e) != nil || e.Message == "" {
			e.Message = resp.Status
		}
		return nil, errUnavailablef("could not join the swarm through %s: %s", remote, e.Message)
	}
	// Only the root the token names is trusted; a second one (a rotation
	// under way) comes with the join's answer, over TLS verified by the first.
	for rest := bundle; ; {
		root := firstPEM(rest)
		if root == nil {
			break
		}
		_, rest, _ = bytes.Cut(rest, []byte("-----END CERTIFICATE-----"))
		if got, err := ca.DigestOf(root); err == nil && subtle.ConstantTimeCompare([]byte(got), []byte(digest)) == 1 {
			return root, nil
		}
	}
	return nil, errInvalidf("error while validating Root CA Certificate: remote CA does not match fingerprint. Expected: %s", digest)
}

func unreachableManager(remote string, err error) error {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return errUnavailablef("could not join the swarm: %s is not a reachable swarm manager (%s)", remote, msg)
}

// joinRaft asks the leader to make this manager a Raft voter, then waits until
// this member's store has caught up with the swarm.
func joinRaft(ctx context.Context, s *store.Store, creds *transport.Credentials, managers []string) error {
	client := creds.HTTPClient(false)
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := callLeader(ctx, client, managers, "/raft/join", nil, nil)
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("join the managers' raft: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := s.Sync(wctx); err != nil {
		return fmt.Errorf("catch up with the swarm: %w", err)
	}
	return nil
}
