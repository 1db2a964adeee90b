package cluster

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/taskstate"
)

// drainSlack is how long, beyond the longest stop grace period of the tasks
// still leaving a network, its removal waits for them before it gives up.
const drainSlack = 30 * time.Second

// waitNetworkDrained waits until no task that is leaving the network ref
// (tasks of removed services, or of services no longer attached to it) still
// holds an address in it: `docker stack rm` removes a stack's networks right
// after its services, while their tasks stop. A network a service is attached
// to is refused at once; when the wait runs out, the removal's own check
// refuses the network as in use.
func (c *Cluster) waitNetworkDrained(ctx context.Context, ref string) error {
	s, _, err := c.active()
	if err != nil {
		return err
	}
	syncCtx, cancel := context.WithTimeout(ctx, readTimeout)
	err = s.Sync(syncCtx)
	cancel()
	if err != nil {
		return err
	}
	ctx, cancel = context.WithCancel(ctx)
	defer cancel()
	var (
		leaving map[string]bool
		grace   time.Duration
	)
	read := func(tx store.ReadTx) error {
		n, err := findNetwork(tx, ref)
		if err != nil {
			return err
		}
		leaving, grace, err = leavingTasks(tx, n)
		return err
	}
	events, err := s.ViewAndWatch(ctx, read, store.KindTask)
	if err != nil || len(leaving) == 0 {
		return err
	}
	deadline := time.NewTimer(grace + drainSlack)
	defer deadline.Stop()
	for len(leaving) > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			if ev.Action == store.ActionResync {
				if err := s.View(read); err != nil {
					return err
				}
				continue
			}
			t, isTask := ev.Object.(*swarm.Task)
			if isTask && leaving[ev.ID] && (ev.Action == store.ActionRemove || taskstate.Terminal(t.Status.State)) {
				delete(leaving, ev.ID)
			}
		}
	}
	return nil
}

// leavingTasks are the tasks that have not ended and hold an address in n, by
// ID, and the longest stop grace period among them; it refuses n at once, in
// swarmkit's words, when a service is attached to it.
func leavingTasks(tx store.ReadTx, n *swarm.Network) (map[string]bool, time.Duration, error) {
	services, err := tx.Services()
	if err != nil {
		return nil, 0, err
	}
	for _, s := range services {
		if attachedTo(s, n) {
			return nil, 0, errInUseBy(n, s)
		}
	}
	tasks, err := tx.Tasks()
	if err != nil {
		return nil, 0, err
	}
	out := map[string]bool{}
	var grace time.Duration
	for _, t := range tasks {
		if taskstate.Terminal(t.Status.State) || !holdsAddress(t, n.ID) {
			continue
		}
		out[t.ID] = true
		if cs := t.Spec.ContainerSpec; cs != nil && cs.StopGracePeriod != nil && *cs.StopGracePeriod > grace {
			grace = *cs.StopGracePeriod
		}
	}
	return out, grace, nil
}

// holdsAddress reports whether task t is attached to the network netID.
func holdsAddress(t *swarm.Task, netID string) bool {
	for _, na := range t.NetworksAttachments {
		if na.Network.ID == netID {
			return true
		}
	}
	return false
}
