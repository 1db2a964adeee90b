// Package cluster is shoal's control plane: the swarm a node belongs to. On a
// manager it keeps the Raft-replicated store and, while it leads, runs the
// manager loops (orchestrator, scheduler, dispatcher); on every node it runs the
// worker agent, which holds a session with the leader. Nodes reach each other
// on the mutual-TLS control port. The Engine API calls it to init, join and
// leave swarms and to read and change nodes, services and tasks; it drives the
// node's runtime and network only through the agent.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/renameio/v2"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/agent"
	"github.com/shoal-project/shoal/cluster/autolock"
	"github.com/shoal-project/shoal/cluster/ca"
	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/transport"
)

// Config wires the control plane.
type Config struct {
	// Root is where the swarm state lives (<data-root>/swarm).
	Root          string
	Hostname      string
	EngineVersion string
	// EngineLabels are the daemon's --label values (engine.labels.*).
	EngineLabels map[string]string
	// Resources are the node's generic resources (--node-generic-resource).
	Resources []swarm.GenericResource
	// DefaultAdvertiseAddr is what init and join advertise when the request
	// names no address (--swarm-default-advertise-addr): an IP or an interface.
	DefaultAdvertiseAddr string
	// Containers, Images and Network are the node's runtime and network; only
	// the agent drives them.
	Containers agent.Containers
	Images     agent.Images
	Network    agent.Network
	// Overlay is the node's overlay data plane and DNS its embedded DNS
	// server; nil: tasks run on the node bridge only (tests).
	Overlay agent.Overlay
	DNS     agent.Resolver
	// MeshKeyRotation is how often the node replaces its WireGuard key; zero
	// never while the daemon runs (a restart always makes a new one).
	MeshKeyRotation time.Duration
	// PeerImages serves this node's images to the other nodes (under /v2/ on
	// the control port); nil serves none.
	PeerImages http.Handler
	// Metrics is told of Raft commits, placements and heartbeats; nil is
	// told nothing.
	Metrics Metrics
	Logger  *slog.Logger
}

// Cluster is this node's view of its swarm.
type Cluster struct {
	cfg Config
	log *slog.Logger

	mu       sync.RWMutex
	node     *nodeState             // nil: not in a swarm
	creds    *transport.Credentials // the node's TLS identity
	port     *transport.Listener    // the control port
	store    *store.Store           // nil on workers
	lead     *leadership            // nil on workers
	replayed chan struct{}          // closed once the store has replayed its log (nil: nothing to replay)
	ctx      context.Context        // the running node's: ends with stop
	cancel   context.CancelFunc
	loops    sync.WaitGroup
	// leadStop ends the leadership supervisor and waits for it.
	leadStop func()
	agent    *agentState
	busy     bool  // an init, join or leave is under way
	mesh     *mesh // the node's WireGuard interface on the swarm's mesh
	renewing bool  // a certificate renewal for a new root is under way
	locked   bool  // a manager of an autolocked swarm, waiting for its unlock key
	// outOfRaft: the node's own object, as the managers keep it, says it is
	// a worker the leader has taken out of Raft (no manager status).
	outOfRaft bool

	// lockMu orders the writes of the node's keys (autolock, renewals);
	// lockKey is the unlock key this manager's keys are wrapped by (nil:
	// the KEK is on disk).
	lockMu  sync.Mutex
	lockKey autolock.Key

	// engineLabels are the daemon's labels, which SIGHUP may replace.
	engineLabels atomic.Pointer[map[string]string]
}

// nodeState is what the node keeps of its membership outside the store.
type nodeState struct {
	NodeID        string
	ClusterID     string `json:",omitempty"`
	Role          string `json:",omitempty"` // ca.ManagerRole or ca.WorkerRole; "" (older state): manager
	AdvertiseAddr string // host:port of the control port
	ListenAddr    string
	DataPathAddr  string
	// Managers are the control addresses of the managers, as last heard.
	Managers []string `json:",omitempty"`
}

func (st *nodeState) manager() bool { return st.Role != ca.WorkerRole }

// New opens the control plane. A node that was in a swarm rejoins it: its
// control port, store (on a manager) and agent start again.
func New(ctx context.Context, cfg Config) (*Cluster, error) {
	c := &Cluster{cfg: cfg, log: cfg.Logger}
	c.engineLabels.Store(&cfg.EngineLabels)
	if c.log == nil {
		c.log = slog.Default()
	}
	st, err := readNodeState(c.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	if st.Role == "" {
		st.Role = ca.ManagerRole
	}
	if undo, err := c.resume(ctx, st, nil); err != nil {
		undo()
		if !errors.Is(err, errLocked) {
			return nil, err
		}
		c.node, c.locked = st, true
		c.log.Warn("swarm is locked: this manager waits for `docker swarm unlock`", "node", st.NodeID)
	}
	return c, nil
}

// resume starts the parts of a node that was in a swarm when its daemon
// stopped; key is the unlock key of a locked manager (nil at boot). A manager
// whose keys are wrapped by an unlock key answers errLocked without one, and
// invalidUnlockKey with the wrong one, before its control port opens. On
// failure the caller runs undo once it holds no lock (it may close the port,
// which waits for handshakes that take c.mu).
func (c *Cluster) resume(ctx context.Context, st *nodeState, key autolock.Key) (undo func(), err error) {
	undo = func() {}
	files, err := ca.LoadNodeFiles(c.certDir())
	if errors.Is(err, os.ErrNotExist) && st.manager() {
		// A swarm made before nodes had certificates: issue this manager's.
		files, err = c.upgradeCertificates(ctx, st)
	}
	if err != nil {
		return undo, err
	}
	if files, err = c.openNodeKey(files, key); err != nil {
		return undo, err
	}
	if st.manager() {
		if err := lockError(store.CheckKEK(c.raftDir(), key.KEK()), key); err != nil {
			return undo, err
		}
	}
	creds, err := transport.NewCredentials(files)
	if err != nil {
		return undo, err
	}
	if st.ClusterID == "" {
		st.ClusterID = creds.Identity().ClusterID
	}
	port, err := c.listen(st, creds)
	if err != nil {
		return undo, err
	}
	c.node, c.creds, c.port = st, creds, port
	if st.manager() {
		s, err := c.openStore(ctx, st, creds, port, key)
		if err = lockError(err, key); err != nil {
			c.node, c.creds, c.port = nil, nil, nil
			return func() { port.Close() }, err
		}
		c.lockMu.Lock()
		c.lockKey = key
		c.lockMu.Unlock()
		c.store = s
		c.replayed = make(chan struct{})
		go func(replayed chan struct{}) {
			// The API answers at once; what reads the swarm waits (a bounded
			// time) until the store has replayed its log, so that the first
			// `docker service ls` after a restart does not show an empty swarm.
			defer close(replayed)
			wctx, cancel := context.WithTimeout(context.Background(), replayTimeout)
			defer cancel()
			if err := s.WaitApplied(wctx); err != nil {
				c.log.Warn("swarm state not replayed yet; serving meanwhile", "err", err)
			}
		}(c.replayed)
	}
	c.start()
	return undo, nil
}

// replayTimeout bounds how long a restarted node's API waits for its swarm state.
const replayTimeout = 15 * time.Second

func (c *Cluster) statePath() string { return filepath.Join(c.cfg.Root, "state.json") }
func (c *Cluster) certDir() string   { return filepath.Join(c.cfg.Root, "certificates") }
func (c *Cluster) raftDir() string   { return filepath.Join(c.cfg.Root, "raft") }

func readNodeState(path string) (*nodeState, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st nodeState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("read swarm node state %s: %w", path, err)
	}
	return &st, nil
}

func writeNodeState(path string, st *nodeState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write swarm node state: %w", err)
	}
	return nil
}

// saveManagers keeps the managers' addresses a session named, so that a
// restarted node finds the swarm again.
func (c *Cluster) saveManagers(list []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.node == nil {
		return
	}
	st := *c.node
	st.Managers = list
	if err := writeNodeState(c.statePath(), &st); err != nil {
		c.log.Warn("keep the managers' addresses", "err", err)
		return
	}
	c.node = &st
}

// listen opens the control port with the node's credentials and serves it.
func (c *Cluster) listen(st *nodeState, creds *transport.Credentials) (*transport.Listener, error) {
	port, err := transport.Listen(transport.Config{
		ListenAddr:    st.ListenAddr,
		AdvertiseAddr: st.AdvertiseAddr,
		Credentials:   creds,
		Authorize:     c.authorize,
		Logger:        c.log.With("component", "controlport"),
	})
	if err != nil {
		return nil, errUnavailablef("could not listen on the swarm control port: %v", err)
	}
	// Every node serves joins: a worker answers them as Docker's does ("not a
	// manager") until it is promoted.
	port.Serve(c.rpcHandler(), c.joinHandler())
	return port, nil
}

// openStore opens a manager's store, its Raft traffic on the control port.
func (c *Cluster) openStore(ctx context.Context, st *nodeState, creds *transport.Credentials, port *transport.Listener, key autolock.Key) (*store.Store, error) {
	cfg := c.storeConfig(st, creds, port)
	cfg.KEK = key.KEK()
	s, err := store.Open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open swarm store: %w", err)
	}
	return s, nil
}

// Raft timings across managers: a leader that dies is replaced in about a
// second; a loaded machine's pauses stay well below the heartbeat timeout.
const (
	raftHeartbeatTimeout = 400 * time.Millisecond
	raftElectionTimeout  = 400 * time.Millisecond
	raftLeaderLease      = 400 * time.Millisecond
)

func (c *Cluster) storeConfig(st *nodeState, creds *transport.Credentials, port *transport.Listener) store.Config {
	return store.Config{
		Dir:                c.raftDir(),
		NodeID:             st.NodeID,
		Transport:          store.NetworkTransport(port.Raft(), c.log.With("component", "raft")),
		Forward:            forwarder{client: creds.HTTPClient(false)},
		HeartbeatTimeout:   raftHeartbeatTimeout,
		ElectionTimeout:    raftElectionTimeout,
		LeaderLeaseTimeout: raftLeaderLease,
		Metrics:            c.cfg.Metrics,
		Logger:             c.log.With("component", "store"),
	}
}

// start runs the node's agent, the renewal of its certificate and, on a
// manager, the leadership supervisor. Callers hold c.mu (or own c alone).
func (c *Cluster) start() {
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if c.store != nil {
		c.startLeadership()
	}
	c.startAgent(c.ctx)
	creds := c.creds
	c.loops.Add(1)
	go func() {
		defer c.loops.Done()
		c.keepCertificate(c.ctx, creds)
	}()
}

// startLeadership runs the leadership supervisor of this manager's store, and
// keeps the manager's keys following the swarm's autolock. Callers hold c.mu.
func (c *Cluster) startLeadership() {
	ctx, cancel := context.WithCancel(c.ctx)
	lead := newLeadership(c, c.store)
	done := make(chan struct{})
	s, replayed := c.store, c.replayed
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.followLock(ctx, s, replayed)
		}()
		lead.run(ctx)
		wg.Wait()
	}()
	c.lead = lead
	c.leadStop = func() { cancel(); <-done }
}

// stopLeadership detaches the leadership supervisor and returns the function
// that stops it and waits; callers hold c.mu and call it after releasing it.
func (c *Cluster) stopLeadership() func() {
	stop := c.leadStop
	c.lead, c.leadStop = nil, nil
	if stop == nil {
		return func() {}
	}
	return stop
}

// detach, called with c.mu held, takes the loops, the leadership supervisor and
// the agent off the node, and returns the function that stops them and waits.
// Callers call it after releasing c.mu: the loops take it, and so does a
// peer's TLS handshake on the control port (authorize), which the port's Close
// waits for.
func (c *Cluster) detach() func() {
	cancel := c.cancel
	c.cancel = nil
	stopLead := c.stopLeadership()
	return func() {
		if cancel != nil {
			cancel()
		}
		stopLead()
		c.loops.Wait()
	}
}

// Close stops the control plane; task containers keep running. It holds no
// lock while it waits (see detach): it once did, and a peer connecting while
// the daemon stopped left it hung for good.
func (c *Cluster) Close() error {
	c.mu.Lock()
	stop := c.detach()
	port, s, m := c.port, c.store, c.mesh
	c.mu.Unlock()
	stop()
	if m != nil {
		m.close()
	}
	var errs []error
	if port != nil {
		errs = append(errs, port.Close())
	}
	if s != nil {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// active returns the store and node of the swarm, once the store has replayed
// its log after a restart, or the error Docker gives when the node is not a
// manager.
func (c *Cluster) active() (*store.Store, *nodeState, error) {
	s, node, replayed, err := c.current()
	if err != nil {
		return nil, nil, err
	}
	if replayed != nil {
		select {
		case <-replayed:
		case <-time.After(replayTimeout):
		}
	}
	return s, node, nil
}

// isWorker tells whether the node is in a swarm, unlocked, as a worker.
func (c *Cluster) isWorker() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.node != nil && !c.locked && c.store == nil
}

// current is active without waiting for the replay of the store's log.
func (c *Cluster) current() (*store.Store, *nodeState, chan struct{}, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.node == nil {
		return nil, nil, nil, unavailableError{msgNotManager}
	}
	if c.locked {
		return nil, nil, nil, errLocked
	}
	if c.store == nil {
		return nil, nil, nil, unavailableError{msgWorker}
	}
	return c.store, c.node, c.replayed, nil
}

// errOutOfSequence is Docker's word for a write on a stale version.
const errOutOfSequence = "update out of sequence"

// update runs fn in a store update on the active swarm (forwarded to the
// leader when this manager follows).
func (c *Cluster) update(ctx context.Context, fn func(tx store.Tx) error) error {
	s, _, err := c.active()
	if err != nil {
		return err
	}
	err = s.Update(ctx, fn)
	switch {
	case errors.Is(err, store.ErrOutOfSequence):
		// The client read an old version: it may read again and retry.
		return conflictError{errOutOfSequence}
	case errors.Is(err, store.ErrNotLeader):
		// Leadership was lost under the write (quorum gone, a new election):
		// as far as the client can tell, the swarm has no leader.
		return store.ErrNoLeader
	}
	return err
}

// view runs fn on a snapshot of the active swarm that holds every write the
// leader had acknowledged (reads are consistent on every manager).
func (c *Cluster) view(fn func(tx store.ReadTx) error) error {
	s, _, err := c.active()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	if err := s.Sync(ctx); err != nil {
		return err
	}
	return s.View(fn)
}

// readTimeout bounds the wait of a consistent read for the leader.
const readTimeout = 10 * time.Second

// waitLeader waits briefly for the store to elect its leader (right after start).
func waitLeader(ctx context.Context, s *store.Store) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return s.WaitLeader(ctx)
}
