// Package dispatcher is the manager side of node sessions, run by the leader: it
// streams each node's task assignments out of the store, writes the task states
// nodes report back, and tracks their heartbeats. A node whose session ends and
// does not come back, or that stops sending heartbeats, is marked down, and the
// orchestrator moves its tasks elsewhere. It implements session.Server; the
// nodes reach it in-process (the leader's own agent) or over the control port.
package dispatcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/session"
	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/taskstate"
)

// Liveness rules. A node must send a heartbeat every period (the swarm's
// dispatcher heartbeat period, 5 s by default); it is marked down after
// silenceFactor periods without one, as swarmkit does. A session whose stream
// breaks (the node's daemon died, its connection was reset) gets closeGrace to
// come back, which covers a daemon restart, before the node is marked down.
const (
	silenceFactor    = 3
	closeGrace       = 2 * time.Second
	defaultHeartbeat = 5 * time.Second
)

// Config wires a dispatcher.
type Config struct {
	Store *store.Store
	// Managers returns the control addresses of the swarm's managers, the
	// leader first; sessions pass them on so nodes can follow the leader.
	Managers func() []string
	// CloseGrace is how long a node whose session broke has to open a new one
	// before it is marked down; zero means 2 s.
	CloseGrace time.Duration
	// Metrics is told of each heartbeat; nil is told nothing.
	Metrics Metrics
	Logger  *slog.Logger
}

// Metrics is told of the nodes' heartbeats.
type Metrics interface {
	// Heartbeat is told of each heartbeat a node sent in its session.
	Heartbeat(nodeID string)
}

// Dispatcher serves node sessions from the store while its Run lasts.
type Dispatcher struct {
	store      *store.Store
	managers   func() []string
	closeGrace time.Duration
	metrics    Metrics
	log        *slog.Logger

	mu      sync.Mutex
	ctx     context.Context // Run's: sessions end with it
	overlay *overlayFeed    // Run's: the overlay view sessions send
	nodes   map[string]*liveness
	stopped bool
}

// liveness is what the dispatcher knows of one node's session.
type liveness struct {
	session string        // the current session's ID; "" before the node opened one
	timer   *time.Timer   // marks the node down when it fires
	cancel  func()        // ends the current session's stream
	ended   chan struct{} // closed when the current session's stream has ended
}

// New returns a dispatcher; it serves once Run has started.
func New(cfg Config) *Dispatcher {
	if cfg.Managers == nil {
		cfg.Managers = func() []string { return nil }
	}
	if cfg.CloseGrace == 0 {
		cfg.CloseGrace = closeGrace
	}
	return &Dispatcher{store: cfg.Store, managers: cfg.Managers, closeGrace: cfg.CloseGrace, metrics: cfg.Metrics, log: cfg.Logger, nodes: map[string]*liveness{}}
}

var _ session.Server = (*Dispatcher)(nil)

// errNotServing is what a session request gets before Run or after it ended:
// leadership moved, and the node must find the new leader.
var errNotServing = session.NotLeaderError{}

// Run serves sessions until ctx is done (leadership lost), then ends them all.
// Nodes that were ready when it starts get a grace period to open a session
// with this manager before they are marked down.
func (d *Dispatcher) Run(ctx context.Context) error {
	feed := newOverlayFeed()
	d.mu.Lock()
	d.ctx = ctx
	d.overlay = feed
	d.mu.Unlock()
	feedDone := make(chan struct{})
	go func() {
		defer close(feedDone)
		feed.run(ctx, d.store, d.log)
	}()
	defer func() { <-feedDone }()
	var ready []string
	err := d.store.View(func(tx store.ReadTx) error {
		nodes, err := tx.Nodes()
		for _, n := range nodes {
			if n.Status.State != swarm.NodeStateDown {
				ready = append(ready, n.ID)
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	grace := silenceFactor * d.period()
	d.mu.Lock()
	for _, id := range ready {
		if _, ok := d.nodes[id]; !ok {
			l := &liveness{}
			l.timer = time.AfterFunc(grace, func() { d.expire(id, "") })
			d.nodes[id] = l
		}
	}
	d.mu.Unlock()
	<-ctx.Done()
	d.mu.Lock()
	d.stopped = true
	for id, l := range d.nodes {
		l.timer.Stop()
		if l.cancel != nil {
			l.cancel()
		}
		delete(d.nodes, id)
	}
	d.mu.Unlock()
	return nil
}

// period is the swarm's heartbeat period.
func (d *Dispatcher) period() time.Duration {
	p := defaultHeartbeat
	_ = d.store.View(func(tx store.ReadTx) error {
		if cl, err := tx.Cluster(); err == nil && cl.Spec.Dispatcher.HeartbeatPeriod > 0 {
			p = cl.Spec.Dispatcher.HeartbeatPeriod
		}
		return nil
	})
	return p
}

// running returns Run's context, or an error when the dispatcher does not serve.
func (d *Dispatcher) running() (context.Context, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx == nil || d.stopped {
		return nil, errNotServing
	}
	return d.ctx, nil
}

// Open starts a session for nodeID: the node is marked ready with what it says
// of itself, and its assignments stream until ctx or the dispatcher ends, or a
// newer session of the same node replaces this one.
func (d *Dispatcher) Open(ctx context.Context, nodeID string, hello session.Hello) (string, <-chan session.Message, error) {
	runCtx, err := d.running()
	if err != nil {
		return "", nil, err
	}
	if err := d.markReady(ctx, nodeID, hello); err != nil {
		return "", nil, err
	}
	id := newSessionID()
	sctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(runCtx, cancel)
	ended := make(chan struct{})
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		cancel()
		return "", nil, errNotServing
	}
	l := d.nodes[nodeID]
	if l == nil {
		l = &liveness{}
		d.nodes[nodeID] = l
	} else {
		l.timer.Stop()
		if l.cancel != nil {
			l.cancel() // a node has one session: the newest
		}
	}
	period := d.period()
	l.session, l.cancel, l.ended = id, cancel, ended
	l.timer = time.AfterFunc(silenceFactor*period, func() { d.expire(nodeID, id) })
	d.mu.Unlock()

	msgs, err := d.stream(sctx, nodeID, id, period)
	if err != nil {
		cancel()
		stop()
		return "", nil, err
	}
	out := make(chan session.Message)
	go func() {
		defer close(ended)
		defer close(out)
		defer stop()
		defer d.streamEnded(nodeID, id)
		for m := range msgs {
			select {
			case out <- m:
			case <-sctx.Done():
				return
			}
		}
	}()
	d.log.Debug("session opened", "node", nodeID, "session", id)
	return id, out, nil
}

func newSessionID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// streamEnded gives a node whose current session's stream ended a short grace
// to open a new one.
func (d *Dispatcher) streamEnded(nodeID, sessionID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.nodes[nodeID]
	if l == nil || l.session != sessionID || d.stopped {
		return
	}
	l.timer.Stop()
	l.cancel = nil
	l.timer = time.AfterFunc(d.closeGrace, func() { d.expire(nodeID, sessionID) })
}

// Heartbeat records that a node is alive.
func (d *Dispatcher) Heartbeat(ctx context.Context, nodeID, sessionID string) error {
	if _, err := d.running(); err != nil {
		return err
	}
	period := d.period()
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.nodes[nodeID]
	if l == nil || l.session == "" || l.session != sessionID {
		return session.ErrInvalidSession
	}
	if l.cancel == nil {
		return session.ErrInvalidSession // its stream ended: the node must open a new session
	}
	l.timer.Reset(silenceFactor * period)
	if d.metrics != nil {
		d.metrics.Heartbeat(nodeID)
	}
	return nil
}

// expire marks a node down when sessionID is still its session (or it never
// opened one since this dispatcher started).
func (d *Dispatcher) expire(nodeID, sessionID string) {
	d.mu.Lock()
	l := d.nodes[nodeID]
	if l == nil || l.session != sessionID || d.stopped {
		d.mu.Unlock()
		return
	}
	if l.cancel != nil {
		l.cancel()
	}
	delete(d.nodes, nodeID)
	ctx := d.ctx
	d.mu.Unlock()
	d.log.Info("node down: heartbeat failure", "node", nodeID)
	if err := d.markDown(ctx, nodeID); err != nil && ctx.Err() == nil {
		d.log.Warn("mark node down", "node", nodeID, "err", err)
	}
}

// markReady records that a node opened a session: ready, at its address, with
// its description and control address.
func (d *Dispatcher) markReady(ctx context.Context, nodeID string, hello session.Hello) error {
	return d.retry(ctx, func(tx store.Tx) error {
		n, err := tx.Node(nodeID)
		if store.IsNotFound(err) {
			return session.UnknownNodeError{NodeID: nodeID}
		}
		if err != nil {
			return err
		}
		desc := hello.Description
		if desc.TLSInfo.TrustRoot == "" {
			desc.TLSInfo = n.Description.TLSInfo
		}
		changed := n.Status.State != swarm.NodeStateReady || n.Status.Addr != hello.Addr || n.Status.Message != ""
		if !changed {
			changed = !sameDescription(n.Description, desc)
		}
		if changed {
			n.Description = desc
			n.Status = swarm.NodeStatus{State: swarm.NodeStateReady, Addr: hello.Addr}
			if err := tx.UpdateNode(n); err != nil {
				return err
			}
		}
		if hello.ControlAddr == "" {
			return nil
		}
		return recordPeer(tx, nodeID, hello)
	})
}

// markDown records that a node stopped answering.
func (d *Dispatcher) markDown(ctx context.Context, nodeID string) error {
	return d.retry(ctx, func(tx store.Tx) error {
		n, err := tx.Node(nodeID)
		if store.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if n.Status.State == swarm.NodeStateDown {
			return nil
		}
		n.Status.State, n.Status.Message = swarm.NodeStateDown, "heartbeat failure"
		return tx.UpdateNode(n)
	})
}

// retry runs a store update, again while it is refused as out of sequence.
func (d *Dispatcher) retry(ctx context.Context, fn func(tx store.Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = d.store.Update(ctx, fn); !errors.Is(err, store.ErrOutOfSequence) {
			return err
		}
	}
	return err
}

// current reports whether sessionID is nodeID's session.
func (d *Dispatcher) current(nodeID, sessionID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.nodes[nodeID]
	return l != nil && l.session != "" && l.session == sessionID
}

// UpdateTaskStatus writes the states a node observed, in one store update. A
// report that would move a task backwards, or that is about a task not on the
// reporting node, is ignored.
func (d *Dispatcher) UpdateTaskStatus(ctx context.Context, nodeID, sessionID string, updates []session.StatusUpdate) error {
	if _, err := d.running(); err != nil {
		return err
	}
	if !d.current(nodeID, sessionID) {
		return session.ErrInvalidSession
	}
	return d.retry(ctx, func(tx store.Tx) error {
		for _, u := range updates {
			t, err := tx.Task(u.TaskID)
			if err != nil {
				if store.IsNotFound(err) {
					continue
				}
				return err
			}
			if t.NodeID != nodeID || !taskstate.Less(t.Status.State, u.Status.State) {
				continue
			}
			t.Status = u.Status
			if err := tx.UpdateTask(t); err != nil {
				return err
			}
		}
		return nil
	})
}
