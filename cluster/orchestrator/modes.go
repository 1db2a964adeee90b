package orchestrator

import (
	"sort"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/scheduler"
)

// replicated keeps one running task in each of slots 1..Replicas.
func (r *reconciliation) replicated(tasks []*swarm.Task) error {
	replicas := replicaCount(r.svc)
	slots := map[int]slotTasks{}
	for _, t := range tasks {
		slots[t.Slot] = append(slots[t.Slot], t)
	}
	// Scale down: the highest slots go.
	for slot, ts := range slots {
		if slot <= replicas {
			continue
		}
		for _, t := range ts {
			if err := r.setDesired(t, swarm.TaskStateRemove); err != nil {
				return err
			}
		}
	}
	for slot := 1; slot <= replicas; slot++ {
		key := slotKey{service: r.svc.ID, slot: slot}
		free, err := r.settle(key, slots[slot])
		if err != nil {
			return err
		}
		if free {
			if err := r.create(key); err != nil {
				return err
			}
		}
	}
	return nil
}

// eligible reports whether a global service should have a task on n.
func (r *reconciliation) eligible(n *swarm.Node) bool {
	probe := &swarm.Task{ServiceID: r.svc.ID, Spec: r.svc.Spec.TaskTemplate}
	return scheduler.Fits(probe, n)
}

// sortedNodes is the nodes by ID, so passes are deterministic.
func (r *reconciliation) sortedNodes() []*swarm.Node {
	out := make([]*swarm.Node, 0, len(r.nodes))
	for _, n := range r.nodes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// global keeps one running task on every eligible node.
func (r *reconciliation) global(tasks []*swarm.Task) error {
	byNode := map[string]slotTasks{}
	for _, t := range tasks {
		byNode[t.NodeID] = append(byNode[t.NodeID], t)
	}
	for nodeID, ts := range byNode {
		if n := r.nodes[nodeID]; n == nil || !r.eligible(n) {
			for _, t := range ts {
				if err := r.setDesired(t, swarm.TaskStateShutdown); err != nil {
					return err
				}
			}
		}
	}
	for _, n := range r.sortedNodes() {
		if !r.eligible(n) {
			continue
		}
		key := slotKey{service: r.svc.ID, node: n.ID}
		free, err := r.settle(key, byNode[n.ID])
		if err != nil {
			return err
		}
		if free {
			if err := r.create(key); err != nil {
				return err
			}
		}
	}
	return nil
}

// iteration is the job run the service is on.
func (r *reconciliation) iteration() uint64 {
	if r.svc.JobStatus == nil {
		return 0
	}
	return r.svc.JobStatus.JobIteration.Index
}

// currentRun splits a job's tasks into those of the current run and stops the others.
func (r *reconciliation) currentRun(tasks []*swarm.Task) ([]*swarm.Task, error) {
	var cur []*swarm.Task
	for _, t := range tasks {
		if t.JobIteration != nil && t.JobIteration.Index == r.iteration() {
			cur = append(cur, t)
			continue
		}
		if active(t) {
			if err := r.setDesired(t, swarm.TaskStateShutdown); err != nil {
				return nil, err
			}
		}
	}
	return cur, nil
}

// replicatedJob runs tasks until TotalCompletions of them completed, at most
// MaxConcurrent at a time.
func (r *reconciliation) replicatedJob(tasks []*swarm.Task) error {
	cur, err := r.currentRun(tasks)
	if err != nil {
		return err
	}
	total, concurrent := jobCounts(r.svc.Spec.Mode.ReplicatedJob)
	slots := map[int]slotTasks{}
	for _, t := range cur {
		slots[t.Slot] = append(slots[t.Slot], t)
	}
	running, completed := 0, 0
	var free []slotKey
	// Slots 0..total-1, as swarmkit numbers a job's completions (the CLI's job
	// progress counts them from 0).
	for slot := 0; slot < total; slot++ {
		key := slotKey{service: r.svc.ID, slot: slot}
		ts := slots[slot]
		ok, err := r.settle(key, ts)
		if err != nil {
			return err
		}
		switch {
		case hasCompleted(ts):
			completed++
		case ts.hasActive():
			running++
		case ok:
			free = append(free, key)
		default:
			running++ // restarting or stopping: still counts against concurrency
		}
	}
	for _, key := range free {
		if running >= concurrent || completed+running >= total {
			break
		}
		if err := r.create(key); err != nil {
			return err
		}
		running++
	}
	return nil
}

// globalJob runs one task to completion on every eligible node.
func (r *reconciliation) globalJob(tasks []*swarm.Task) error {
	cur, err := r.currentRun(tasks)
	if err != nil {
		return err
	}
	byNode := map[string]slotTasks{}
	for _, t := range cur {
		byNode[t.NodeID] = append(byNode[t.NodeID], t)
	}
	for _, n := range r.sortedNodes() {
		if !r.eligible(n) {
			continue
		}
		key := slotKey{service: r.svc.ID, node: n.ID}
		ts := byNode[n.ID]
		free, err := r.settle(key, ts)
		if err != nil {
			return err
		}
		if free && !hasCompleted(ts) {
			if err := r.create(key); err != nil {
				return err
			}
		}
	}
	return nil
}

func hasCompleted(ts slotTasks) bool {
	for _, t := range ts {
		if t.Status.State == swarm.TaskStateComplete {
			return true
		}
	}
	return false
}

// jobCounts reads a replicated job's TotalCompletions and MaxConcurrent as dockerd
// defaults them (MaxConcurrent 1, TotalCompletions MaxConcurrent), each bounded
// by MaxReplicas.
func jobCounts(j *swarm.ReplicatedJob) (total, concurrent int) {
	d := modeDefaults(swarm.ServiceMode{ReplicatedJob: j}).ReplicatedJob
	return bounded(*d.TotalCompletions), max(bounded(*d.MaxConcurrent), 1)
}
