package scheduler

import (
	"sort"

	"github.com/moby/moby/api/types/swarm"
)

// Generic resources are what a node offers beyond CPU and memory (dockerd's
// --node-generic-resource): a count of a kind ("ssd=2") or named units of a
// kind ("gpu=GPU-1a2b"). A task reserves a count of a kind (service create
// --generic-resource gpu=1); a node fits while it has that many left, and the
// task is assigned which: named units no other task on the node holds, or a
// count of a discrete kind (the task's GenericResources, which its
// container sees as DOCKER_RESOURCE_<KIND>).

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

// assignGeneric picks what of n's generic resources t gets, kind by kind: the
// named units of the kind that no task on n holds, in the order the node
// lists them, then a count for what is left (a discrete kind).
func assignGeneric(t *swarm.Task, n *nodeInfo) []swarm.GenericResource {
	want := genericCounts(reservations(t).GenericResources)
	kinds := make([]string, 0, len(want))
	for kind := range want {
		kinds = append(kinds, kind)
	}
	sort.Strings(kinds)
	var out []swarm.GenericResource
	for _, kind := range kinds {
		left := want[kind]
		for _, r := range n.node.Description.Resources.GenericResources {
			if left == 0 {
				break
			}
			if named := r.NamedResourceSpec; named != nil && named.Kind == kind && !n.namedHeld[namedKey(named)] {
				out = append(out, swarm.GenericResource{NamedResourceSpec: &swarm.NamedGenericResource{Kind: kind, Value: named.Value}})
				left--
			}
		}
		if left > 0 {
			out = append(out, swarm.GenericResource{DiscreteResourceSpec: &swarm.DiscreteGenericResource{Kind: kind, Value: left}})
		}
	}
	return out
}

// hold marks the named units in rs as held by a task on n.
func (n *nodeInfo) hold(rs []swarm.GenericResource) {
	for _, r := range rs {
		if r.NamedResourceSpec == nil {
			continue
		}
		if n.namedHeld == nil {
			n.namedHeld = map[string]bool{}
		}
		n.namedHeld[namedKey(r.NamedResourceSpec)] = true
	}
}

func namedKey(r *swarm.NamedGenericResource) string { return r.Kind + "=" + r.Value }
