// Package orchestrator turns services into tasks. One loop watches services, tasks,
// nodes and the cluster object, and reconciles every service that changed: it keeps
// one running task per slot (replicated), per node (global) or per completion (jobs),
// replaces failed tasks as the restart policy says, moves tasks off drained nodes,
// prunes task history, and starts a rolling updater when a service's task template
// changes. It writes only through the store; it never calls the scheduler or the
// workers.
package orchestrator

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/store"
)

// Orchestrator reconciles services into tasks.
type Orchestrator struct {
	store *store.Store
	log   *slog.Logger
	now   func() time.Time

	mu       sync.Mutex
	dirty    map[string]bool
	wake     chan struct{}
	restarts map[slotKey]*restartState
	updaters map[string]context.CancelFunc
	wg       sync.WaitGroup
}

// slotKey names a place a task runs in: a service's slot, or a node for global modes.
type slotKey struct {
	service string
	slot    int
	node    string
}

// restartState is what the orchestrator remembers of a slot's restarts.
type restartState struct {
	notBefore time.Time   // no replacement before this (restart delay)
	pending   bool        // the next task made for the slot is a restart
	history   []time.Time // when replacements were made, for MaxAttempts/Window
}

// New returns an orchestrator over st.
func New(st *store.Store, log *slog.Logger) *Orchestrator {
	return &Orchestrator{
		store:    st,
		log:      log,
		now:      time.Now,
		dirty:    map[string]bool{},
		wake:     make(chan struct{}, 1),
		restarts: map[slotKey]*restartState{},
		updaters: map[string]context.CancelFunc{},
	}
}

// Run reconciles until ctx is done, then waits for its updaters to stop.
func (o *Orchestrator) Run(ctx context.Context) error {
	defer o.wg.Wait()
	defer o.stopUpdaters()
	events, err := o.store.ViewAndWatch(ctx, func(tx store.ReadTx) error {
		return o.markAll(tx)
	}, store.KindService, store.KindTask, store.KindNode, store.KindCluster)
	if err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			o.observe(ev)
			// Take whatever else is queued before reconciling, so a burst of task
			// updates costs one reconcile of their service.
			for more := true; more; {
				select {
				case ev, ok := <-events:
					if !ok {
						return nil
					}
					o.observe(ev)
				default:
					more = false
				}
			}
		case <-o.wake:
		}
		o.reconcileDirty(ctx)
	}
}

// observe marks what an event makes dirty.
func (o *Orchestrator) observe(ev store.Event) {
	if ev.Action == store.ActionResync {
		_ = o.store.View(o.markAll) // changes were lost: look at everything
		return
	}
	switch ev.Kind {
	case store.KindService:
		o.markDirty(ev.ID)
		if ev.Action == store.ActionRemove {
			o.stopUpdater(ev.ID)
		}
	case store.KindTask:
		if t, ok := ev.Object.(*swarm.Task); ok {
			o.markDirty(t.ServiceID)
		}
	case store.KindNode, store.KindCluster:
		_ = o.store.View(o.markAll)
	}
}

// markAll marks every service, and every service that still has tasks, dirty.
func (o *Orchestrator) markAll(tx store.ReadTx) error {
	services, err := tx.Services()
	if err != nil {
		return err
	}
	for _, s := range services {
		o.markDirty(s.ID)
	}
	tasks, err := tx.Tasks()
	if err != nil {
		return err
	}
	for _, t := range tasks {
		o.markDirty(t.ServiceID)
	}
	return nil
}

func (o *Orchestrator) markDirty(serviceID string) {
	if serviceID == "" {
		return
	}
	o.mu.Lock()
	o.dirty[serviceID] = true
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *Orchestrator) reconcileDirty(ctx context.Context) {
	o.mu.Lock()
	ids := make([]string, 0, len(o.dirty))
	for id := range o.dirty {
		ids = append(ids, id)
	}
	o.dirty = map[string]bool{}
	o.mu.Unlock()
	for _, id := range ids {
		if err := o.reconcile(ctx, id); err != nil && ctx.Err() == nil {
			o.log.Warn("reconcile service", "service", id, "err", err)
		}
	}
}

// reconcile brings one service's tasks in line with its spec, retrying when a
// concurrent write got there first. One pass writes one bounded store entry
// (budgetTx); a pass that fills it marks the service dirty to go on.
func (o *Orchestrator) reconcile(ctx context.Context, serviceID string) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var r *reconciliation
		more := false
		err = o.store.Update(ctx, func(tx store.Tx) error {
			r = &reconciliation{o: o, tx: &budgetTx{Tx: tx}, now: o.now()}
			err := r.run(serviceID)
			more = errors.Is(err, errEntryFull)
			if more {
				return nil // commit what fits in one entry; the rest in the next pass
			}
			return err
		})
		if errors.Is(err, store.ErrOutOfSequence) {
			continue
		}
		if err == nil && r != nil {
			r.commit()
			if more {
				o.markDirty(serviceID)
			}
		}
		return err
	}
	return err
}

// later marks a service dirty again after d (restart delays).
func (o *Orchestrator) later(serviceID string, d time.Duration) {
	time.AfterFunc(d, func() { o.markDirty(serviceID) })
}

func (o *Orchestrator) restartState(k slotKey) *restartState {
	o.mu.Lock()
	defer o.mu.Unlock()
	rs := o.restarts[k]
	if rs == nil {
		rs = &restartState{}
		o.restarts[k] = rs
	}
	return rs
}

func (o *Orchestrator) stopUpdater(serviceID string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if cancel := o.updaters[serviceID]; cancel != nil {
		cancel()
		delete(o.updaters, serviceID)
	}
}

func (o *Orchestrator) stopUpdaters() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for id, cancel := range o.updaters {
		cancel()
		delete(o.updaters, id)
	}
}
