package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/ipam"
	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/taskstate"
)

// Loop watches for pending tasks and node changes and commits each round of
// placements as one store update.
type Loop struct {
	store   *store.Store
	log     *slog.Logger
	metrics Metrics
	// cursors are the last address handed out in each overlay network (see
	// ipam.Build): kept while this manager leads, lost with it.
	cursors map[string]netip.Addr
}

// Metrics is told how long tasks waited for a node.
type Metrics interface {
	// Placed is told, for each task the scheduler assigned, how long it
	// waited from its creation until the assignment was committed.
	Placed(wait time.Duration)
}

// NewLoop returns the scheduling loop over st; m (nil: none) is told of each
// placement.
func NewLoop(st *store.Store, log *slog.Logger, m Metrics) *Loop {
	return &Loop{store: st, log: log, metrics: m, cursors: map[string]netip.Addr{}}
}

// Run schedules until ctx is done. It keeps the set of pending tasks from the
// store's changes, so that a round (which reads every task, for the nodes'
// load) runs only when there is something to place and something changed that
// may let it be placed: a new pending task, a node change, a task that stopped
// and freed its resources. Status reports of running tasks cost nothing.
func (l *Loop) Run(ctx context.Context) error {
	pending := map[string]bool{}
	readPending := func(tx store.ReadTx) error {
		clear(pending)
		tasks, err := tx.Tasks()
		for _, t := range tasks {
			if isPending(t) {
				pending[t.ID] = true
			}
		}
		return err
	}
	events, err := l.store.ViewAndWatch(ctx, readPending, store.KindTask, store.KindNode)
	if err != nil {
		return err
	}
	// Unplaced tasks are retried when something changes, and at least every few
	// seconds in case a resource frees up that no event names.
	retry := time.NewTicker(5 * time.Second)
	defer retry.Stop()
	need := len(pending) > 0
	for {
		if need && len(pending) > 0 {
			if err := l.schedule(ctx); err != nil && ctx.Err() == nil {
				l.log.Warn("schedule tasks", "err", err)
			}
		}
		need = false
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			need = l.observe(ev, pending, readPending)
			for drained := false; !drained; {
				select {
				case ev, ok := <-events:
					if !ok {
						return nil
					}
					need = l.observe(ev, pending, readPending) || need
				default:
					drained = true
				}
			}
		case <-retry.C:
			need = true
		}
	}
}

func isPending(t *swarm.Task) bool {
	return t.Status.State == swarm.TaskStatePending && taskstate.Wanted(t.DesiredState)
}

// observe keeps pending up to date with one change and reports whether the
// change may let a pending task be placed. After lost changes (a resync) it
// reads the pending tasks afresh.
func (l *Loop) observe(ev store.Event, pending map[string]bool, read func(store.ReadTx) error) bool {
	if ev.Action == store.ActionResync {
		_ = l.store.View(read)
		return true
	}
	if ev.Kind == store.KindNode {
		return true
	}
	t, ok := ev.Object.(*swarm.Task)
	if !ok {
		return false
	}
	if ev.Action != store.ActionRemove && isPending(t) {
		pending[t.ID] = true
		return true
	}
	delete(pending, t.ID)
	old, _ := ev.Old.(*swarm.Task)
	return ev.Action == store.ActionRemove ||
		(old != nil && !taskstate.Terminal(old.Status.State) && taskstate.Terminal(t.Status.State))
}

// schedule places every pending task it can in one update.
func (l *Loop) schedule(ctx context.Context) error {
	for {
		more, err := l.scheduleRound(ctx)
		if err != nil || !more {
			return err
		}
	}
}

// maxWrites bounds the tasks one scheduling round writes: a round is one Raft
// entry, and a service of thousands of replicas must not make one of tens of
// megabytes.
const maxWrites = 256

// scheduleRound plans every pending task and commits the first maxWrites
// changes in one update; more says whether changes remain for another round.
func (l *Loop) scheduleRound(ctx context.Context) (more bool, err error) {
	for attempt := 0; attempt < 5; attempt++ {
		more = false
		var waits []time.Duration
		err = l.store.Update(ctx, func(tx store.Tx) error {
			waits = waits[:0]
			nodes, err := tx.Nodes()
			if err != nil {
				return err
			}
			tasks, err := tx.Tasks()
			if err != nil {
				return err
			}
			var placed, pending []*swarm.Task
			byID := map[string]*swarm.Task{}
			for _, t := range tasks {
				byID[t.ID] = t
				switch {
				case t.Status.State == swarm.TaskStatePending && taskstate.Wanted(t.DesiredState):
					pending = append(pending, t)
				case t.NodeID != "" && !taskstate.Terminal(t.Status.State):
					placed = append(placed, t)
				}
			}
			if len(pending) == 0 {
				return nil
			}
			assigned, unplaced := Plan(nodes, placed, pending)
			now := time.Now()
			writes := 0
			var addrs *addresses
			for _, a := range assigned {
				if writes == maxWrites {
					more = true
					return nil
				}
				writes++
				t := byID[a.TaskID]
				if len(t.Spec.Networks) > 0 || len(t.Status.PortStatus.Ports) > 0 {
					if addrs == nil {
						if addrs, err = l.readAddresses(tx, tasks); err != nil {
							return err
						}
					}
					reason, err := addrs.attach(tx, t)
					if err != nil {
						return err
					}
					if reason != "" {
						if t.Status.Err != reason {
							t.Status.Err, t.Status.Timestamp = reason, now
							if err := tx.UpdateTask(t); err != nil {
								return err
							}
						}
						continue
					}
				}
				waits = append(waits, now.Sub(t.Meta.CreatedAt))
				t.NodeID = a.NodeID
				t.GenericResources = a.Generic
				t.Status = swarm.TaskStatus{Timestamp: now, State: swarm.TaskStateAssigned, Message: "scheduler assigned task to node", PortStatus: t.Status.PortStatus}
				if err := tx.UpdateTask(t); err != nil {
					return err
				}
			}
			for _, u := range unplaced {
				t := byID[u.TaskID]
				if t.Status.Err == u.Reason {
					continue
				}
				if writes == maxWrites {
					more = true
					return nil
				}
				writes++
				t.Status.Err = u.Reason
				t.Status.Timestamp = now
				if err := tx.UpdateTask(t); err != nil {
					return err
				}
			}
			return nil
		})
		if !errors.Is(err, store.ErrOutOfSequence) {
			if err == nil && l.metrics != nil {
				for _, w := range waits {
					l.metrics.Placed(w)
				}
			}
			return more && err == nil, err
		}
	}
	return false, err
}

// addresses is what a round needs to give tasks their overlay addresses.
// claimed are the networks the round took an address from.
type addresses struct {
	space   *ipam.Space
	byID    map[string]*swarm.Network
	ingress *swarm.Network
	claimed map[string]bool
}

// readAddresses reads the swarm's networks and what they have taken.
func (l *Loop) readAddresses(tx store.ReadTx, tasks []*swarm.Task) (*addresses, error) {
	networks, err := tx.Networks()
	if err != nil {
		return nil, err
	}
	services, err := tx.Services()
	if err != nil {
		return nil, err
	}
	a := &addresses{byID: map[string]*swarm.Network{}, space: ipam.Build(networks, services, tasks, l.cursors), claimed: map[string]bool{}}
	for _, n := range networks {
		a.byID[n.ID] = n
		if n.Spec.Ingress {
			a.ingress = n
		}
	}
	return a, nil
}

// attach gives t its addresses, or says why it cannot have them (the task then
// waits, pending, as one that fits no node does). Each network it takes an
// address from is written back unchanged, once per round, so that the round
// conflicts in the store with any other write that took an address from it on
// the same snapshot (a service's new VIP) and is tried again, rather than both
// committing one address.
func (a *addresses) attach(tx store.Tx, t *swarm.Task) (reason string, err error) {
	had := len(t.NetworksAttachments) > 0
	if err := a.space.Attach(t, a.byID, a.ingress); err != nil {
		return err.Error(), nil
	}
	if had {
		return "", nil
	}
	for _, na := range t.NetworksAttachments {
		if n := a.byID[na.Network.ID]; n != nil && !a.claimed[n.ID] {
			a.claimed[n.ID] = true
			if err := tx.UpdateNetwork(n); err != nil {
				return "", err
			}
		}
	}
	return "", nil
}
