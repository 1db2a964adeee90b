package scheduler

import "github.com/moby/moby/api/types/swarm"

// Generic resources are what a node offers beyond CPU and memory (dockerd's
// --node-generic-resource): a count of a kind ("ssd=2") or named units of a
// kind ("gpu=GPU-1a2b"). A task reserves a count of a kind (service create
// --generic-resource gpu=1); a node fits while it has that many left.

// genericCounts adds up resources by kind: a discrete resource counts its
// value, a named one counts one.
func genericCounts(rs []swarm.GenericResource) map[string]int64 {
	var out map[string]int64
	for _, r := range rs {
		if out == nil {
			out = map[string]int64{}
		}
		switch {
		case r.DiscreteResourceSpec != nil:
			out[r.DiscreteResourceSpec.Kind] += r.DiscreteResourceSpec.Value
		case r.NamedResourceSpec != nil:
			out[r.NamedResourceSpec.Kind]++
		}
	}
	return out
}

// genericFilter keeps nodes with enough of every generic resource the task
// reserves.
type genericFilter struct{}

func (genericFilter) enabled(t *swarm.Task) bool {
	return len(reservations(t).GenericResources) > 0
}

func (genericFilter) check(t *swarm.Task, n *nodeInfo) bool {
	offered := genericCounts(n.node.Description.Resources.GenericResources)
	for kind, want := range genericCounts(reservations(t).GenericResources) {
		if offered[kind]-n.genericUsed[kind] < want {
			return false
		}
	}
	return true
}

func (genericFilter) explain(n int) string { return "insufficient resources on " + plural(n) }
