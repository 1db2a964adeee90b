package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/store"
)

// Docker's defaults for update and rollback configs.
const (
	DefaultUpdateParallelism = 1
	DefaultUpdateMonitor     = 5 * time.Second
)

// UpdateDefaults returns cfg with Docker's defaults filled in (nil → all defaults).
func UpdateDefaults(cfg *swarm.UpdateConfig) swarm.UpdateConfig {
	out := swarm.UpdateConfig{Parallelism: DefaultUpdateParallelism, FailureAction: swarm.UpdateFailureActionPause, Monitor: DefaultUpdateMonitor, Order: swarm.UpdateOrderStopFirst}
	if cfg == nil {
		return out
	}
	out = *cfg
	if out.FailureAction == "" {
		out.FailureAction = swarm.UpdateFailureActionPause
	}
	if out.Monitor == 0 {
		out.Monitor = DefaultUpdateMonitor
	}
	if out.Order == "" {
		out.Order = swarm.UpdateOrderStopFirst
	}
	return out
}

// maybeUpdate starts the rolling updater when active tasks run an old spec.
func (r *reconciliation) maybeUpdate(tasks []*swarm.Task) {
	if r.svc.Spec.Mode.ReplicatedJob != nil || r.svc.Spec.Mode.GlobalJob != nil {
		return
	}
	if us := r.svc.UpdateStatus; us != nil && (us.State == swarm.UpdateStatePaused || us.State == swarm.UpdateStateRollbackPaused) {
		return
	}
	stale := false
	for _, t := range tasks {
		if active(t) && !upToDate(t, r.svc) {
			stale = true
			break
		}
	}
	inProgress := r.svc.UpdateStatus != nil && (r.svc.UpdateStatus.State == swarm.UpdateStateUpdating || r.svc.UpdateStatus.State == swarm.UpdateStateRollbackStarted)
	if !stale && !inProgress {
		return
	}
	id := r.svc.ID
	r.effects = append(r.effects, func() { r.o.startUpdater(id) })
}

func (o *Orchestrator) startUpdater(serviceID string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.updaters[serviceID] != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	o.updaters[serviceID] = cancel
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		defer func() {
			o.mu.Lock()
			delete(o.updaters, serviceID)
			o.mu.Unlock()
			cancel()
		}()
		u := &updater{o: o, serviceID: serviceID, failed: map[string]bool{}}
		u.start = u.startSlots
		if err := u.run(ctx); err != nil && ctx.Err() == nil {
			o.log.Warn("rolling update", "service", serviceID, "err", err)
		}
	}()
}

// updater replaces a service's out-of-date tasks batch by batch. As swarmkit's,
// it moves on to the next batch as soon as a batch runs, and watches the batches
// it replaced for their monitor period meanwhile; the update completes once the
// last batch has been watched for its monitor period.
type updater struct {
	o         *Orchestrator
	serviceID string
	// start begins the replacement of a batch's slots: startSlots (a
	// stand-in in tests).
	start     func(ctx context.Context, svc *swarm.Service, slots []slotKey, order swarm.UpdateOrder) (int, error)
	total     int
	failures  int
	failed    map[string]bool
	monitored []monitoredBatch
}

// monitoredBatch is a replaced batch whose new tasks are still watched.
type monitoredBatch struct {
	slots   []slotKey
	started time.Time // the batch's new tasks were created after this
	until   time.Time // the end of its monitor period
}

func (u *updater) run(ctx context.Context) error {
	events := u.o.store.Watch(ctx, store.KindTask, store.KindService)
	for {
		svc, stale, err := u.read()
		if err != nil {
			if store.IsNotFound(err) {
				return nil
			}
			return err
		}
		if svc.UpdateStatus != nil && (svc.UpdateStatus.State == swarm.UpdateStatePaused || svc.UpdateStatus.State == swarm.UpdateStateRollbackPaused) {
			return nil
		}
		rollback := svc.UpdateStatus != nil && svc.UpdateStatus.State == swarm.UpdateStateRollbackStarted
		cfg := UpdateDefaults(svc.Spec.UpdateConfig)
		if rollback {
			cfg = UpdateDefaults(svc.Spec.RollbackConfig)
		}
		failedTask, err := u.checkMonitored(svc)
		if err != nil {
			return err
		}
		if failedTask != "" {
			u.failures++
			if float32(u.failures) > cfg.MaxFailureRatio*float32(u.total) {
				stop, err := u.fail(ctx, cfg, rollback, failedTask)
				if err != nil || stop {
					return err
				}
				continue
			}
		}
		if len(stale) == 0 {
			if left := u.monitorLeft(); left > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-events:
				case <-time.After(left):
				}
				continue
			}
			return u.finish(ctx, svc)
		}
		if err := u.begin(ctx, svc); err != nil {
			return err
		}
		u.total = max(u.total, len(stale))
		n := int(cfg.Parallelism)
		if n == 0 || n > len(stale) {
			n = len(stale)
		}
		batch := stale[:n]
		failedTask, err = u.replace(ctx, events, svc, batch, cfg)
		if err != nil {
			return err
		}
		if failedTask != "" && float32(u.failures) > cfg.MaxFailureRatio*float32(u.total) {
			stop, err := u.fail(ctx, cfg, rollback, failedTask)
			if err != nil || stop {
				return err
			}
			continue
		}
		if cfg.Delay > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(cfg.Delay):
			}
		}
	}
}

// read returns the service and its slots that still run an old spec, in slot order.
func (u *updater) read() (*swarm.Service, []slotKey, error) {
	var (
		svc   *swarm.Service
		stale []slotKey
	)
	err := u.o.store.View(func(tx store.ReadTx) error {
		var err error
		if svc, err = tx.Service(u.serviceID); err != nil {
			return err
		}
		tasks, err := tx.TasksByService(u.serviceID)
		if err != nil {
			return err
		}
		seen := map[slotKey]bool{}
		for _, t := range tasks {
			k := keyOf(t, svc)
			if active(t) && !upToDate(t, svc) && !seen[k] {
				seen[k] = true
				stale = append(stale, k)
			}
		}
		for _, k := range emptyStaleSlots(svc, tasks) {
			if !seen[k] {
				seen[k] = true
				stale = append(stale, k)
			}
		}
		return nil
	})
	sort.Slice(stale, func(i, j int) bool {
		if stale[i].slot != stale[j].slot {
			return stale[i].slot < stale[j].slot
		}
		return stale[i].node < stale[j].node
	})
	return svc, stale, err
}

// emptyStaleSlots are the slots of a replicated service that have no active task
// and whose last task ran an old spec: a task that failed and waits for its restart
// delay, or (in a rollback) a replacement that failed while the task it replaced
// still stops. As in swarmkit, the update replaces them at once, so an update or
// rollback completes only once they run the current spec.
func emptyStaleSlots(svc *swarm.Service, tasks []*swarm.Task) []slotKey {
	if svc.Spec.Mode.Replicated == nil {
		return nil
	}
	replicas := replicaCount(svc)
	last := map[int]*swarm.Task{}
	busy := map[int]bool{}
	for _, t := range tasks {
		if active(t) {
			busy[t.Slot] = true
		}
		if l := last[t.Slot]; l == nil || t.Meta.CreatedAt.After(l.Meta.CreatedAt) {
			last[t.Slot] = t
		}
	}
	var out []slotKey
	for slot, t := range last {
		if slot >= 1 && slot <= replicas && !busy[slot] && t.DesiredState != swarm.TaskStateRemove && !upToDate(t, svc) {
			out = append(out, slotKey{service: svc.ID, slot: slot})
		}
	}
	return out
}

// begin marks the service as updating, unless it already is.
func (u *updater) begin(ctx context.Context, svc *swarm.Service) error {
	if svc.UpdateStatus != nil && (svc.UpdateStatus.State == swarm.UpdateStateUpdating || svc.UpdateStatus.State == swarm.UpdateStateRollbackStarted) {
		return nil
	}
	return u.setStatus(ctx, swarm.UpdateStateUpdating, "update in progress", false)
}

// finish marks a running update or rollback as completed.
func (u *updater) finish(ctx context.Context, svc *swarm.Service) error {
	if svc.UpdateStatus == nil {
		return nil
	}
	switch svc.UpdateStatus.State {
	case swarm.UpdateStateUpdating:
		return u.setStatus(ctx, swarm.UpdateStateCompleted, "update completed", true)
	case swarm.UpdateStateRollbackStarted:
		return u.setStatus(ctx, swarm.UpdateStateRollbackCompleted, "rollback completed", true)
	}
	return nil
}

func (u *updater) setStatus(ctx context.Context, state swarm.UpdateState, msg string, done bool) error {
	return u.o.updateService(ctx, u.serviceID, func(svc *swarm.Service) {
		now := u.o.now()
		us := svc.UpdateStatus
		starting := state == swarm.UpdateStateUpdating || state == swarm.UpdateStateRollbackStarted
		if us == nil || starting {
			us = &swarm.UpdateStatus{StartedAt: &now}
		} else {
			// A pause or completion keeps when the update started.
			us = &swarm.UpdateStatus{StartedAt: us.StartedAt}
		}
		us.State, us.Message = state, msg
		if done {
			us.CompletedAt = &now
		}
		svc.UpdateStatus = us
	})
}

// fail applies the failure action; it reports whether the updater should stop.
func (u *updater) fail(ctx context.Context, cfg swarm.UpdateConfig, rollback bool, taskID string) (bool, error) {
	switch {
	case cfg.FailureAction == swarm.UpdateFailureActionContinue:
		return false, nil
	case rollback:
		return true, u.setStatus(ctx, swarm.UpdateStateRollbackPaused, "rollback paused due to failure or early termination of task "+taskID, false)
	case cfg.FailureAction == swarm.UpdateFailureActionRollback:
		u.total, u.failures, u.failed, u.monitored = 0, 0, map[string]bool{}, nil
		return false, u.o.updateService(ctx, u.serviceID, func(svc *swarm.Service) {
			if svc.PreviousSpec == nil {
				return
			}
			now := u.o.now()
			cur := svc.Spec
			svc.Spec, svc.PreviousSpec = *svc.PreviousSpec, &cur
			svc.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateRollbackStarted, StartedAt: &now,
				Message: "update rolled back due to failure or early termination of task " + taskID}
		})
	default:
		return true, u.setStatus(ctx, swarm.UpdateStatePaused, "update paused due to failure or early termination of task "+taskID, false)
	}
}

// replace updates one batch of slots and watches the new tasks for cfg.Monitor. It
// returns the ID of a new task that failed, if one did.
func (u *updater) replace(ctx context.Context, events <-chan store.Event, svc *swarm.Service, batch []slotKey, cfg swarm.UpdateConfig) (string, error) {
	started := u.o.now()
	// A batch may be every slot (parallelism 0): it is written in bounded entries.
	for rest := batch; len(rest) > 0; {
		n, err := u.start(ctx, svc, rest, cfg.Order)
		if errors.Is(err, store.ErrOutOfSequence) {
			// A concurrent write refused the entry: the next round reads
			// again and starts what is not started. Waiting for this batch
			// instead waited for replacements never made (found by the
			// torture test: an update stuck "in progress" after a crash).
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("replace tasks: %w", err)
		}
		rest = rest[n:]
	}
	u.o.markDirty(u.serviceID)
	for {
		state, failedTask, err := u.batchState(svc, batch, cfg.Order, started)
		if err != nil {
			return "", err
		}
		if failedTask != "" {
			u.failures++
			return failedTask, nil
		}
		if state == batchRunning {
			u.monitored = append(u.monitored, monitoredBatch{slots: batch, started: started, until: u.o.now().Add(cfg.Monitor)})
			return "", nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-events:
		}
	}
}

// checkMonitored returns a task of a replaced batch that stopped within the
// batch's monitor period, if one did, and forgets the batches watched long enough.
func (u *updater) checkMonitored(svc *swarm.Service) (string, error) {
	now := u.o.now()
	var failed string
	kept := u.monitored[:0]
	for _, mb := range u.monitored {
		if failed == "" {
			id, err := u.stoppedTask(svc, mb.slots, mb.started)
			if err != nil {
				return "", err
			}
			failed = id
		}
		if now.Before(mb.until) {
			kept = append(kept, mb)
		}
	}
	u.monitored = kept
	return failed, nil
}

// monitorLeft is how long the replaced batches are still to be watched.
func (u *updater) monitorLeft() time.Duration {
	var left time.Duration
	now := u.o.now()
	for _, mb := range u.monitored {
		left = max(left, mb.until.Sub(now))
	}
	return left
}

// stoppedTask returns a new task of slots (created since started) that stopped
// and was not counted yet.
func (u *updater) stoppedTask(svc *swarm.Service, slots []slotKey, started time.Time) (string, error) {
	var failed string
	err := u.o.store.View(func(tx store.ReadTx) error {
		tasks, err := tx.TasksByService(svc.ID)
		if err != nil {
			return err
		}
		for _, t := range tasks {
			if failed == "" && slices.Contains(slots, keyOf(t, svc)) && upToDate(t, svc) && stoppedOnItsOwn(t) &&
				!t.Meta.CreatedAt.Before(started) && !u.failed[t.ID] {
				u.failed[t.ID] = true
				failed = t.ID
			}
		}
		return nil
	})
	return failed, err
}

// stoppedOnItsOwn reports whether t ended by failing or exiting (a failure or
// early termination for the updater), not because it was told to stop: a task
// the orchestrator stops (scaled away, replaced again, its node drained) ends
// shut down, and that is no failure of the update.
func stoppedOnItsOwn(t *swarm.Task) bool {
	return Terminal(t.Status.State) && t.Status.State != swarm.TaskStateShutdown
}

// startSlots begins the replacement of the first of slots, as many as fit in one
// store entry (at least one), and returns how many it started.
func (u *updater) startSlots(ctx context.Context, svc *swarm.Service, slots []slotKey, order swarm.UpdateOrder) (int, error) {
	n := 0
	err := u.o.store.Update(ctx, func(tx store.Tx) error {
		n = 0
		tasks, err := tx.TasksByService(svc.ID)
		if err != nil {
			return err
		}
		bySlot := map[slotKey][]*swarm.Task{}
		for _, t := range tasks {
			k := keyOf(t, svc)
			bySlot[k] = append(bySlot[k], t)
		}
		empty := map[slotKey]bool{}
		for _, k := range emptyStaleSlots(svc, tasks) {
			empty[k] = true
		}
		var b entryBudget
		for _, k := range slots {
			err := u.startSlot(tx, &b, svc, k, bySlot[k], empty[k], order)
			if errors.Is(err, errEntryFull) {
				return nil
			}
			if err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return max(n, 1), err
}

// startSlot begins the replacement of slot k's old task (ts are the slot's tasks;
// empty says the slot has no active task and its last one ran an old spec).
// Start-first starts the new task next to it. Stop-first stops it and creates the
// new task desired ready, as swarmkit does: the worker pulls its image while the
// old task stops, and the reconciler starts it once the old one has stopped. Its
// writes are charged to b as one step.
func (u *updater) startSlot(tx store.Tx, b *entryBudget, svc *swarm.Service, k slotKey, ts []*swarm.Task, empty bool, order swarm.UpdateOrder) error {
	if empty {
		// The reconciler fills the slot, now rather than after the restart
		// delay: only one loop ever creates tasks in empty slots.
		u.o.skipRestartDelay(k)
		return nil
	}
	var old []*swarm.Task
	for _, t := range ts {
		if !active(t) {
			continue
		}
		if upToDate(t, svc) {
			return nil // already replaced
		}
		old = append(old, t)
	}
	if len(old) == 0 {
		return nil
	}
	next := newTask(svc, k.slot, k.node, u.o.now())
	writes := []any{next}
	if order != swarm.UpdateOrderStartFirst {
		for _, t := range old {
			t.DesiredState = swarm.TaskStateShutdown
			writes = append(writes, t)
		}
		next.DesiredState = swarm.TaskStateReady
	} else {
		old = nil
	}
	if err := b.charge(writes...); err != nil {
		return err
	}
	for _, t := range old {
		if err := tx.UpdateTask(t); err != nil {
			return err
		}
	}
	return tx.CreateTask(next)
}

type batchProgress int

const (
	batchWaiting batchProgress = iota
	batchRunning
)

// batchState reports whether every slot of the batch runs a new task, and the ID of a
// task made for the batch (created since started) that stopped, if any. With
// start-first, the old task of a slot is stopped once its new one runs.
func (u *updater) batchState(svc *swarm.Service, batch []slotKey, order swarm.UpdateOrder, started time.Time) (batchProgress, string, error) {
	state := batchRunning
	var failed string
	var retire []string
	err := u.o.store.View(func(tx store.ReadTx) error {
		tasks, err := tx.TasksByService(svc.ID)
		if err != nil {
			return err
		}
		for _, k := range batch {
			running, old := false, []string{}
			for _, t := range tasks {
				if keyOf(t, svc) != k {
					continue
				}
				switch {
				case upToDate(t, svc) && t.Status.State == swarm.TaskStateRunning && active(t):
					running = true
				case upToDate(t, svc) && stoppedOnItsOwn(t) && !t.Meta.CreatedAt.Before(started) && !u.failed[t.ID]:
					u.failed[t.ID] = true
					failed = t.ID
				case !upToDate(t, svc) && active(t):
					old = append(old, t.ID)
				}
			}
			if running && order == swarm.UpdateOrderStartFirst {
				retire = append(retire, old...)
			}
			if !running || (len(old) > 0 && order != swarm.UpdateOrderStartFirst) {
				state = batchWaiting
			}
		}
		return nil
	})
	if err != nil {
		return batchWaiting, "", err
	}
	if err := u.o.shutdownTasks(retire); err != nil {
		return batchWaiting, "", err
	}
	return state, failed, nil
}

// shutdownTasks sets the tasks ids desired shutdown, in bounded store entries. A
// concurrent write stops it: the updater reads again and retires what is left.
func (o *Orchestrator) shutdownTasks(ids []string) error {
	for len(ids) > 0 {
		n := 0
		err := o.store.Update(context.Background(), func(tx store.Tx) error {
			n = 0
			btx := &budgetTx{Tx: tx}
			for _, id := range ids {
				t, err := tx.Task(id)
				if err != nil {
					return err
				}
				t.DesiredState = swarm.TaskStateShutdown
				err = btx.UpdateTask(t)
				if errors.Is(err, errEntryFull) {
					return nil
				}
				if err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if errors.Is(err, store.ErrOutOfSequence) {
			return nil
		}
		if err != nil {
			return err
		}
		ids = ids[max(n, 1):]
	}
	return nil
}

// updateService applies fn to the current service, retrying on concurrent writes.
func (o *Orchestrator) updateService(ctx context.Context, id string, fn func(*swarm.Service)) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = o.store.Update(ctx, func(tx store.Tx) error {
			svc, err := tx.Service(id)
			if err != nil {
				return err
			}
			fn(svc)
			return tx.UpdateService(svc)
		})
		if !errors.Is(err, store.ErrOutOfSequence) {
			return err
		}
	}
	return err
}

// skipRestartDelay lets the reconciler fill slot k at once.
func (o *Orchestrator) skipRestartDelay(k slotKey) {
	rs := o.restartState(k)
	o.mu.Lock()
	rs.notBefore = time.Time{}
	o.mu.Unlock()
}
