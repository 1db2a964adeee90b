// Package dispatcher is the manager side of worker sessions: it streams each node's
// task assignments out of the store and writes the task states workers report back.
// In a single-node swarm the node's own agent calls it in-process; remote workers
// reach the same methods over the control port.
package dispatcher

import (
	"context"
	"errors"
	"log/slog"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/agent"
	"github.com/shoal-project/shoal/cluster/orchestrator"
	"github.com/shoal-project/shoal/cluster/store"
)

// Dispatcher serves worker sessions from the store.
type Dispatcher struct {
	store *store.Store
	log   *slog.Logger
}

// New returns a dispatcher over st.
func New(st *store.Store, log *slog.Logger) *Dispatcher { return &Dispatcher{store: st, log: log} }

var _ agent.Dispatcher = (*Dispatcher)(nil)

// Assignments streams the tasks assigned to nodeID: first every one, then changes.
func (d *Dispatcher) Assignments(ctx context.Context, nodeID string) (<-chan agent.AssignmentSet, error) {
	var first agent.AssignmentSet
	names := map[string]string{}
	events, err := d.store.ViewAndWatch(ctx, func(tx store.ReadTx) error {
		first = agent.AssignmentSet{Full: true}
		tasks, err := tx.TasksByNode(nodeID)
		if err != nil {
			return err
		}
		for _, t := range tasks {
			first.Tasks = append(first.Tasks, assignment(tx, names, t))
		}
		return nil
	}, store.KindTask)
	if err != nil {
		return nil, err
	}
	out := make(chan agent.AssignmentSet, 16)
	go func() {
		defer close(out)
		if !send(ctx, out, first) {
			return
		}
		for ev := range events {
			set, ok := d.change(ev, nodeID, names)
			if ok && !send(ctx, out, set) {
				return
			}
		}
	}()
	return out, nil
}

func send(ctx context.Context, out chan<- agent.AssignmentSet, set agent.AssignmentSet) bool {
	select {
	case out <- set:
		return true
	case <-ctx.Done():
		return false
	}
}

// change turns a task event into an assignment change for nodeID, if it is one.
func (d *Dispatcher) change(ev store.Event, nodeID string, names map[string]string) (agent.AssignmentSet, bool) {
	t, ok := ev.Object.(*swarm.Task)
	if !ok {
		return agent.AssignmentSet{}, false
	}
	old, _ := ev.Old.(*swarm.Task)
	switch {
	case ev.Action == store.ActionRemove && t.NodeID == nodeID:
		return agent.AssignmentSet{Removed: []string{t.ID}}, true
	case t.NodeID == nodeID && t.Status.State != swarm.TaskStatePending:
		// Only the manager's changes matter to the worker: desired state and
		// placement. The worker's own status reports come back as no-ops.
		if old != nil && old.NodeID == t.NodeID && old.DesiredState == t.DesiredState && !orchestrator.StateLess(old.Status.State, swarm.TaskStateAssigned) {
			return agent.AssignmentSet{}, false
		}
		var as agent.Assignment
		_ = d.store.View(func(tx store.ReadTx) error {
			as = assignment(tx, names, t)
			return nil
		})
		return agent.AssignmentSet{Tasks: []agent.Assignment{as}}, true
	case old != nil && old.NodeID == nodeID && t.NodeID != nodeID:
		return agent.AssignmentSet{Removed: []string{t.ID}}, true
	}
	return agent.AssignmentSet{}, false
}

// RegistryAuthID is the ID of the store object that keeps a service's registry
// credentials: a secret-kind object, so it is encrypted at rest like secrets, and
// it reaches only the workers that run the service's tasks.
func RegistryAuthID(serviceID string) string { return serviceID + ".registry-auth" }

// assignment is a task with what its worker needs of its service.
func assignment(tx store.ReadTx, names map[string]string, t *swarm.Task) agent.Assignment {
	as := agent.Assignment{Task: t, ServiceName: serviceName(tx, names, t.ServiceID)}
	if auth, err := tx.Secret(RegistryAuthID(t.ServiceID)); err == nil {
		as.RegistryAuth = string(auth.Spec.Data)
	}
	return as
}

// serviceName looks a service's name up, remembering it.
func serviceName(tx store.ReadTx, cache map[string]string, id string) string {
	if n, ok := cache[id]; ok {
		return n
	}
	svc, err := tx.Service(id)
	if err != nil {
		return id
	}
	cache[id] = svc.Spec.Name
	return svc.Spec.Name
}

// UpdateTaskStatus writes the states a worker observed, in one store update. A
// report that would move a task backwards, or that is about a task not on the
// reporting node, is ignored.
func (d *Dispatcher) UpdateTaskStatus(ctx context.Context, nodeID string, updates []agent.StatusUpdate) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = d.store.Update(ctx, func(tx store.Tx) error {
			for _, u := range updates {
				t, err := tx.Task(u.TaskID)
				if err != nil {
					if store.IsNotFound(err) {
						continue
					}
					return err
				}
				if t.NodeID != nodeID || !orchestrator.StateLess(t.Status.State, u.Status.State) {
					continue
				}
				t.Status = u.Status
				if err := tx.UpdateTask(t); err != nil {
					return err
				}
			}
			return nil
		})
		if !errors.Is(err, store.ErrOutOfSequence) {
			return err
		}
	}
	return err
}
