// Package cluster is shoal's control plane: the swarm a node belongs to, kept in a
// Raft-replicated store, with the manager loops (orchestrator, scheduler,
// dispatcher) and the node's worker agent. The Engine API calls it to init and
// leave swarms and to read and change nodes, services and tasks; it drives the
// node's runtime and network only through the agent.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/renameio/v2"

	"github.com/shoal-project/shoal/cluster/agent"
	"github.com/shoal-project/shoal/cluster/dispatcher"
	"github.com/shoal-project/shoal/cluster/orchestrator"
	"github.com/shoal-project/shoal/cluster/scheduler"
	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/runtime/container"
)

// Runtime is what the control plane needs of the node's container runtime: the
// agent's needs, and task logs.
type Runtime interface {
	agent.Containers
	Logs(ctx context.Context, idOrName string, opts container.LogOptions) (<-chan container.LogEntry, error)
}

// Config wires the control plane.
type Config struct {
	// Root is where the swarm state lives (<data-root>/swarm).
	Root          string
	Hostname      string
	EngineVersion string
	Containers    Runtime
	Images        agent.Images
	Network       agent.Network
	Logger        *slog.Logger
}

// Cluster is this node's view of its swarm.
type Cluster struct {
	cfg Config
	log *slog.Logger

	mu       sync.RWMutex
	node     *nodeState    // nil: not in a swarm
	store    *store.Store  // nil: not in a swarm
	replayed chan struct{} // closed once the store has replayed its log (nil: nothing to replay)
	cancel   context.CancelFunc
	loops    sync.WaitGroup
}

// nodeState is what the node keeps of its membership outside the store.
type nodeState struct {
	NodeID        string
	AdvertiseAddr string // host:port of the control port
	ListenAddr    string
	DataPathAddr  string
}

// New opens the control plane. A node that was in a swarm rejoins it (its store,
// loops and agent start again).
func New(ctx context.Context, cfg Config) (*Cluster, error) {
	c := &Cluster{cfg: cfg, log: cfg.Logger}
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
	s, err := c.openStore(ctx, st.NodeID)
	if err != nil {
		return nil, err
	}
	c.node, c.store = st, s
	c.replayed = make(chan struct{})
	c.start()
	// The API answers at once; what reads the swarm waits (a bounded time) until
	// the store has replayed its log, so that the first `docker service ls` after
	// a restart does not show an empty swarm.
	go func(replayed chan struct{}) {
		defer close(replayed)
		wctx, cancel := context.WithTimeout(context.Background(), replayTimeout)
		defer cancel()
		if err := s.WaitApplied(wctx); err != nil {
			c.log.Warn("swarm state not replayed yet; serving meanwhile", "err", err)
		}
	}(c.replayed)
	return c, nil
}

// replayTimeout bounds how long a restarted node's API waits for its swarm state.
const replayTimeout = 15 * time.Second

func (c *Cluster) statePath() string { return filepath.Join(c.cfg.Root, "state.json") }

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

func (c *Cluster) openStore(ctx context.Context, nodeID string) (*store.Store, error) {
	s, err := store.Open(ctx, store.Config{
		Dir:    filepath.Join(c.cfg.Root, "raft"),
		NodeID: nodeID,
		Logger: c.log.With("component", "store"),
	})
	if err != nil {
		return nil, fmt.Errorf("open swarm store: %w", err)
	}
	return s, nil
}

// start runs the manager loops and the agent. Callers hold no lock.
func (c *Cluster) start() {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	s, nodeID := c.store, c.node.NodeID
	run := func(name string, f func(context.Context) error) {
		c.loops.Add(1)
		go func() {
			defer c.loops.Done()
			if err := s.WaitLeader(ctx); err != nil {
				return
			}
			if err := f(ctx); err != nil && ctx.Err() == nil {
				c.log.Error("control loop stopped", "loop", name, "err", err)
			}
		}()
	}
	run("orchestrator", orchestrator.New(s, c.log.With("component", "orchestrator")).Run)
	run("scheduler", scheduler.NewLoop(s, c.log.With("component", "scheduler")).Run)
	run("node", func(ctx context.Context) error { return c.refreshNode(ctx, nodeID) })
	ag := agent.New(agent.Config{
		NodeID:     nodeID,
		Dispatcher: dispatcher.New(s, c.log.With("component", "dispatcher")),
		Containers: c.cfg.Containers,
		Images:     c.cfg.Images,
		Network:    c.cfg.Network,
		Logger:     c.log.With("component", "agent"),
	})
	run("agent", ag.Run)
}

// stop ends the loops and the agent and waits for them.
func (c *Cluster) stop() {
	if c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
	c.loops.Wait()
}

// Close stops the control plane; task containers keep running.
func (c *Cluster) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stop()
	if c.store != nil {
		return c.store.Close()
	}
	return nil
}

// active returns the store and node of the swarm, once the store has replayed its
// log after a restart, or the error Docker gives when the node is not a manager.
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

// current is active without waiting for the replay of the store's log.
func (c *Cluster) current() (*store.Store, *nodeState, chan struct{}, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.store == nil {
		return nil, nil, nil, unavailableError{msgNotManager}
	}
	return c.store, c.node, c.replayed, nil
}

// update runs fn in a store update on the active swarm.
func (c *Cluster) update(ctx context.Context, fn func(tx store.Tx) error) error {
	s, _, err := c.active()
	if err != nil {
		return err
	}
	err = s.Update(ctx, fn)
	if errors.Is(err, store.ErrOutOfSequence) {
		// The client read an old version: it may read again and retry.
		return conflictError{"update out of sequence"}
	}
	return err
}

// view runs fn on a snapshot of the active swarm.
func (c *Cluster) view(fn func(tx store.ReadTx) error) error {
	s, _, err := c.active()
	if err != nil {
		return err
	}
	return s.View(fn)
}

// waitLeader waits briefly for the store to elect its leader (right after start).
func waitLeader(ctx context.Context, s *store.Store) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return s.WaitLeader(ctx)
}
