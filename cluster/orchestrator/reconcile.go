package orchestrator

import (
	"sort"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/store"
)

// Docker's defaults (swarmkit's) for what a spec leaves out.
const (
	DefaultRestartDelay = 5 * time.Second
	DefaultHistoryLimit = 5
)

// reconciliation is one pass over one service inside a store transaction. Side
// effects on the orchestrator's memory are queued and run only once the
// transaction is committed.
type reconciliation struct {
	o       *Orchestrator
	tx      store.Tx
	now     time.Time
	svc     *swarm.Service
	nodes   map[string]*swarm.Node
	effects []func()
}

func (r *reconciliation) commit() {
	for _, f := range r.effects {
		f()
	}
}

func (r *reconciliation) run(serviceID string) error {
	tasks, err := r.tx.TasksByService(serviceID)
	if err != nil {
		return err
	}
	svc, err := r.tx.Service(serviceID)
	if store.IsNotFound(err) {
		return r.retire(tasks)
	}
	if err != nil {
		return err
	}
	r.svc = svc
	if err := r.loadNodes(); err != nil {
		return err
	}
	switch {
	case svc.Spec.Mode.Global != nil:
		err = r.global(tasks)
	case svc.Spec.Mode.ReplicatedJob != nil:
		err = r.replicatedJob(tasks)
	case svc.Spec.Mode.GlobalJob != nil:
		err = r.globalJob(tasks)
	default:
		err = r.replicated(tasks)
	}
	if err != nil {
		return err
	}
	if err := r.pruneHistory(serviceID); err != nil {
		return err
	}
	r.maybeUpdate(tasks)
	return nil
}

func (r *reconciliation) loadNodes() error {
	nodes, err := r.tx.Nodes()
	if err != nil {
		return err
	}
	r.nodes = map[string]*swarm.Node{}
	for _, n := range nodes {
		r.nodes[n.ID] = n
	}
	return nil
}

// retire stops every task of a removed service and deletes those that stopped.
func (r *reconciliation) retire(tasks []*swarm.Task) error {
	for _, t := range tasks {
		switch {
		case Terminal(t.Status.State) || t.NodeID == "":
			if err := r.tx.DeleteTask(t.ID); err != nil {
				return err
			}
		case t.DesiredState != swarm.TaskStateRemove:
			t.DesiredState = swarm.TaskStateRemove
			if err := r.tx.UpdateTask(t); err != nil {
				return err
			}
		}
	}
	return nil
}

// restartCondition is when t's restart policy replaces it: its condition, or
// the default (any; on-failure for jobs).
func (r *reconciliation) restartCondition(t *swarm.Task) swarm.RestartPolicyCondition {
	if p := t.Spec.RestartPolicy; p != nil && p.Condition != "" {
		return p.Condition
	}
	if r.svc.Spec.Mode.ReplicatedJob != nil || r.svc.Spec.Mode.GlobalJob != nil {
		return swarm.RestartPolicyConditionOnFailure
	}
	return swarm.RestartPolicyConditionAny
}

// nodeUsable reports whether tasks may stay on node id.
func (r *reconciliation) nodeUsable(id string) bool {
	if id == "" {
		return true
	}
	n := r.nodes[id]
	return n != nil && n.Spec.Availability != swarm.NodeAvailabilityDrain
}

// nodeDown reports whether node id cannot report on its tasks any more.
func (r *reconciliation) nodeDown(id string) bool {
	n := r.nodes[id]
	return n == nil || n.Status.State == swarm.NodeStateDown
}

// setDesired moves t's desired state forward to s.
func (r *reconciliation) setDesired(t *swarm.Task, s swarm.TaskState) error {
	if !StateLess(t.DesiredState, s) {
		return nil
	}
	t.DesiredState = s
	if t.NodeID == "" && !Terminal(t.Status.State) {
		// Never placed: nothing runs it, so it is done.
		t.Status = swarm.TaskStatus{Timestamp: r.now, State: swarm.TaskStateShutdown, Message: "shutdown"}
	}
	return r.tx.UpdateTask(t)
}

// slotTasks is the tasks of one slot.
type slotTasks []*swarm.Task

func (s slotTasks) hasActive() bool {
	for _, t := range s {
		if active(t) {
			return true
		}
	}
	return false
}

// settle handles the active tasks of a slot: off unusable nodes, and restarted per
// policy when they stopped. It reports whether the slot may get a new task now.
func (r *reconciliation) settle(key slotKey, ts slotTasks) (bool, error) {
	var notBefore time.Time // of a restart decided in this pass
	for _, t := range ts {
		if !active(t) {
			continue
		}
		if !r.nodeUsable(t.NodeID) {
			if err := r.setDesired(t, swarm.TaskStateShutdown); err != nil {
				return false, err
			}
			continue
		}
		if key.node == "" && t.NodeID != "" && !Terminal(t.Status.State) && r.nodeDown(t.NodeID) {
			// Lost with its node: replaced elsewhere at once, with no restart
			// delay (the task did not fail), unless its policy never replaces.
			if r.restartCondition(t) != swarm.RestartPolicyConditionNone {
				if err := r.setDesired(t, swarm.TaskStateShutdown); err != nil {
					return false, err
				}
			}
			continue
		}
		if Terminal(t.Status.State) {
			nb, err := r.restart(key, t)
			if err != nil {
				return false, err
			}
			if nb.After(notBefore) {
				notBefore = nb
			}
		}
	}
	if err := r.promoteReady(ts); err != nil {
		return false, err
	}
	if ts.hasActive() {
		return false, nil
	}
	for _, t := range ts {
		// Stop first: a slot's next task waits for the last one to stop, unless its
		// node can no longer tell us.
		if stopping(t) && !r.nodeDown(t.NodeID) {
			return false, nil
		}
	}
	rs := r.o.restartState(key)
	r.o.mu.Lock()
	if rs.notBefore.After(notBefore) {
		notBefore = rs.notBefore
	}
	r.o.mu.Unlock()
	if wait := notBefore.Sub(r.now); wait > 0 {
		r.effects = append(r.effects, func() { r.o.later(key.service, wait) })
		return false, nil
	}
	return true, nil
}

// promoteReady starts a slot's replacement that waits (desired ready, made by a
// stop-first update) once no other task of the slot runs or is still stopping.
func (r *reconciliation) promoteReady(ts slotTasks) error {
	var ready *swarm.Task
	for _, t := range ts {
		if t.DesiredState == swarm.TaskStateReady && !Terminal(t.Status.State) {
			ready = t
		}
	}
	if ready == nil {
		return nil
	}
	for _, t := range ts {
		if t == ready {
			continue
		}
		if (active(t) && !Terminal(t.Status.State)) || (stopping(t) && !r.nodeDown(t.NodeID)) {
			return nil
		}
	}
	ready.DesiredState = swarm.TaskStateRunning
	return r.tx.UpdateTask(ready)
}

// create adds a new task for key.
func (r *reconciliation) create(key slotKey) error {
	t := newTask(r.svc, key.slot, key.node, r.now)
	if err := r.tx.CreateTask(t); err != nil {
		return err
	}
	now := r.now
	r.effects = append(r.effects, func() {
		rs := r.o.restartState(key)
		r.o.mu.Lock()
		if rs.pending {
			rs.history = append(rs.history, now)
			rs.pending = false
		}
		r.o.mu.Unlock()
	})
	return nil
}

// restart decides what happens to an active task that stopped. When it restarts
// the task, it returns when the replacement may start (the restart delay).
func (r *reconciliation) restart(key slotKey, t *swarm.Task) (time.Time, error) {
	job := r.svc.Spec.Mode.ReplicatedJob != nil || r.svc.Spec.Mode.GlobalJob != nil
	if job && t.Status.State == swarm.TaskStateComplete {
		return time.Time{}, r.setDesired(t, swarm.TaskStateComplete)
	}
	policy := t.Spec.RestartPolicy
	if policy == nil {
		policy = &swarm.RestartPolicy{}
	}
	switch r.restartCondition(t) {
	case swarm.RestartPolicyConditionNone:
		return time.Time{}, nil
	case swarm.RestartPolicyConditionOnFailure:
		if t.Status.State == swarm.TaskStateComplete {
			return time.Time{}, nil
		}
	}
	rs := r.o.restartState(key)
	if policy.MaxAttempts != nil && *policy.MaxAttempts > 0 {
		var window time.Duration
		if policy.Window != nil {
			window = *policy.Window
		}
		r.o.mu.Lock()
		n := 0
		for _, at := range rs.history {
			if window == 0 || r.now.Sub(at) <= window {
				n++
			}
		}
		r.o.mu.Unlock()
		if uint64(n) >= *policy.MaxAttempts {
			return time.Time{}, nil
		}
	}
	delay := DefaultRestartDelay
	if policy.Delay != nil {
		delay = *policy.Delay
	}
	if err := r.setDesired(t, swarm.TaskStateShutdown); err != nil {
		return time.Time{}, err
	}
	notBefore := t.Status.Timestamp.Add(delay)
	if notBefore.Before(r.now) {
		notBefore = r.now
	}
	r.effects = append(r.effects, func() {
		r.o.mu.Lock()
		rs.notBefore = notBefore
		rs.pending = true
		r.o.mu.Unlock()
		r.o.markDirty(key.service)
	})
	return notBefore, nil
}

// pruneHistory deletes stopped tasks so that no slot keeps more tasks than the
// cluster's task history limit (counting its current task, as swarmkit's task
// reaper does; a restart policy's MaxAttempts+1 when set), oldest first; a
// negative limit keeps everything. Tasks being removed go as soon as they stopped.
func (r *reconciliation) pruneHistory(serviceID string) error {
	limit := int64(DefaultHistoryLimit)
	if c, err := r.tx.Cluster(); err == nil && c.Spec.Orchestration.TaskHistoryRetentionLimit != nil {
		limit = *c.Spec.Orchestration.TaskHistoryRetentionLimit
	}
	if p := r.svc.Spec.TaskTemplate.RestartPolicy; p != nil && p.MaxAttempts != nil && *p.MaxAttempts > 0 {
		limit = int64(*p.MaxAttempts) + 1
	}
	tasks, err := r.tx.TasksByService(serviceID)
	if err != nil {
		return err
	}
	bySlot := map[slotKey][]*swarm.Task{}
	inSlot := map[slotKey]int64{}
	for _, t := range tasks {
		if t.DesiredState == swarm.TaskStateRemove && Terminal(t.Status.State) {
			if err := r.tx.DeleteTask(t.ID); err != nil {
				return err
			}
			continue
		}
		k := keyOf(t, r.svc)
		inSlot[k]++
		if active(t) || !Terminal(t.Status.State) || t.DesiredState == swarm.TaskStateComplete {
			continue
		}
		bySlot[k] = append(bySlot[k], t)
	}
	if limit < 0 {
		return nil
	}
	for k, old := range bySlot {
		excess := inSlot[k] - limit
		if excess <= 0 {
			continue
		}
		sort.Slice(old, func(i, j int) bool { return old[i].Meta.CreatedAt.Before(old[j].Meta.CreatedAt) })
		for _, t := range old[:min(excess, int64(len(old)))] {
			if err := r.tx.DeleteTask(t.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// keyOf is the slot a task belongs to.
func keyOf(t *swarm.Task, svc *swarm.Service) slotKey {
	if svc != nil && (svc.Spec.Mode.Global != nil || svc.Spec.Mode.GlobalJob != nil) {
		return slotKey{service: t.ServiceID, node: t.NodeID}
	}
	return slotKey{service: t.ServiceID, slot: t.Slot}
}
