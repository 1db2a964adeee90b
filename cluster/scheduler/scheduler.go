// Package scheduler places pending tasks on nodes. Placement is a pure function: a
// snapshot of nodes and tasks in, a plan out; the caller commits the plan through Raft
// in one entry. Each task goes through a pipeline of filters (readiness, resources,
// platform, constraints, host ports, max replicas per node), and the nodes that pass
// are ranked: spread over the placement preferences first, then fewest tasks of the
// same service, then fewest tasks in all.
package scheduler

import (
	"fmt"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/swarm"
)

// Assignment places one task on one node, and gives it Generic: which of the
// node's generic resources it holds (nil when it reserves none).
type Assignment struct {
	TaskID  string
	NodeID  string
	Generic []swarm.GenericResource
}

// Unplaced is a task no node could take, with Docker's explanation
// ("no suitable node (insufficient resources on 1 node)").
type Unplaced struct {
	TaskID string
	Reason string
}

// Plan assigns each pending task to a node. running are the tasks already placed
// (used for load, reservations and ports); pending are the tasks to place, in order.
// Plan does not modify its arguments.
func Plan(nodes []*swarm.Node, running []*swarm.Task, pending []*swarm.Task) ([]Assignment, []Unplaced) {
	infos := make([]*nodeInfo, 0, len(nodes))
	byID := map[string]*nodeInfo{}
	for _, n := range nodes {
		ni := newNodeInfo(n)
		infos = append(infos, ni)
		byID[n.ID] = ni
	}
	for _, t := range running {
		if ni := byID[t.NodeID]; ni != nil {
			ni.add(t)
		}
	}
	var (
		assigned []Assignment
		unplaced []Unplaced
	)
	for _, t := range pending {
		if t.NodeID != "" { // global tasks come pinned to their node
			ni := byID[t.NodeID]
			if ni == nil {
				unplaced = append(unplaced, Unplaced{TaskID: t.ID, Reason: "node not found"})
				continue
			}
			if reason := explainFailures(t, []*nodeInfo{ni}); reason != "" {
				unplaced = append(unplaced, Unplaced{TaskID: t.ID, Reason: reason})
				continue
			}
			assigned = append(assigned, place(t, ni))
			continue
		}
		feasible := feasibleNodes(t, infos)
		if len(feasible) == 0 {
			unplaced = append(unplaced, Unplaced{TaskID: t.ID, Reason: explainFailures(t, infos)})
			continue
		}
		assigned = append(assigned, place(t, rank(t, feasible, infos)))
	}
	return assigned, unplaced
}

// place puts t on n: it counts there from now on, with the generic resources
// it is given.
func place(t *swarm.Task, n *nodeInfo) Assignment {
	generic := assignGeneric(t, n)
	n.add(t)
	n.hold(generic)
	return Assignment{TaskID: t.ID, NodeID: n.node.ID, Generic: generic}
}

// feasibleNodes returns the nodes that pass every enabled filter for t.
func feasibleNodes(t *swarm.Task, nodes []*nodeInfo) []*nodeInfo {
	var out []*nodeInfo
	for _, n := range nodes {
		if passes(t, n) == nil {
			out = append(out, n)
		}
	}
	return out
}

// passes returns the first filter n fails for t, or nil.
func passes(t *swarm.Task, n *nodeInfo) filter {
	for _, f := range pipeline {
		if f.enabled(t) && !f.check(t, n) {
			return f
		}
	}
	return nil
}

// explainFailures words why no node fits, or "" when one does.
func explainFailures(t *swarm.Task, nodes []*nodeInfo) string {
	if len(nodes) == 0 {
		return "no suitable node (no nodes available)"
	}
	counts := map[filter]int{}
	var order []filter
	for _, n := range nodes {
		f := passes(t, n)
		if f == nil {
			return ""
		}
		if counts[f] == 0 {
			order = append(order, f)
		}
		counts[f]++
	}
	// Most failures first, then in the pipeline's order, as swarmkit words
	// it, whatever the order of the nodes.
	sort.SliceStable(order, func(i, j int) bool {
		if counts[order[i]] != counts[order[j]] {
			return counts[order[i]] > counts[order[j]]
		}
		return pipelineIndex(order[i]) < pipelineIndex(order[j])
	})
	parts := make([]string, 0, len(order))
	for _, f := range order {
		parts = append(parts, f.explain(counts[f]))
	}
	return fmt.Sprintf("no suitable node (%s)", strings.Join(parts, "; "))
}

// rank picks the best of the feasible nodes for t.
func rank(t *swarm.Task, feasible, all []*nodeInfo) *nodeInfo {
	candidates := feasible
	if t.Spec.Placement != nil {
		for _, pref := range t.Spec.Placement.Preferences {
			if pref.Spread == nil {
				continue
			}
			candidates = spread(t, pref.Spread.SpreadDescriptor, candidates, all)
		}
	}
	sort.SliceStable(candidates, func(i, j int) bool {
		a, b := candidates[i], candidates[j]
		if a.serviceTasks[t.ServiceID] != b.serviceTasks[t.ServiceID] {
			return a.serviceTasks[t.ServiceID] < b.serviceTasks[t.ServiceID]
		}
		if a.tasks != b.tasks {
			return a.tasks < b.tasks
		}
		return a.node.ID < b.node.ID
	})
	return candidates[0]
}

// spread keeps the candidates in the value group (of the descriptor, e.g.
// node.labels.zone) that has the fewest tasks of t's service, counted over all nodes.
func spread(t *swarm.Task, descriptor string, candidates, all []*nodeInfo) []*nodeInfo {
	group := func(n *nodeInfo) string {
		v, _ := nodeAttribute(descriptor, n.node)
		return v
	}
	load := map[string]int{}
	for _, n := range all {
		load[group(n)] += n.serviceTasks[t.ServiceID]
	}
	bestLoad := -1
	for _, n := range candidates {
		if l := load[group(n)]; bestLoad < 0 || l < bestLoad {
			bestLoad = l
		}
	}
	var out []*nodeInfo
	for _, n := range candidates {
		if load[group(n)] == bestLoad {
			out = append(out, n)
		}
	}
	return out
}

// nodeInfo is a node with what is already placed on it.
type nodeInfo struct {
	node         *swarm.Node
	tasks        int
	serviceTasks map[string]int
	reserved     swarm.Resources
	genericUsed  map[string]int64
	namedHeld    map[string]bool // kind=value of the named units tasks hold
	usedPorts    map[portKey]bool
}

func newNodeInfo(n *swarm.Node) *nodeInfo {
	return &nodeInfo{node: n, serviceTasks: map[string]int{}, usedPorts: map[portKey]bool{}}
}

func (n *nodeInfo) add(t *swarm.Task) {
	n.tasks++
	n.serviceTasks[t.ServiceID]++
	r := reservations(t)
	n.reserved.MemoryBytes += r.MemoryBytes
	n.reserved.NanoCPUs += r.NanoCPUs
	for kind, c := range genericCounts(r.GenericResources) {
		if n.genericUsed == nil {
			n.genericUsed = map[string]int64{}
		}
		n.genericUsed[kind] += c
	}
	for _, p := range hostPorts(t) {
		n.usedPorts[p] = true
	}
	n.hold(t.GenericResources)
}

func (n *nodeInfo) free() swarm.Resources {
	total := n.node.Description.Resources
	return swarm.Resources{
		MemoryBytes: total.MemoryBytes - n.reserved.MemoryBytes,
		NanoCPUs:    total.NanoCPUs - n.reserved.NanoCPUs,
	}
}

// Fits reports whether node n passes t's static placement rules: readiness,
// availability, platform and constraints (global services use it to pick their nodes).
func Fits(t *swarm.Task, n *swarm.Node) bool {
	ni := newNodeInfo(n)
	for _, f := range []filter{readyFilter{}, platformFilter{}, constraintFilter{}} {
		if f.enabled(t) && !f.check(t, ni) {
			return false
		}
	}
	return true
}

// pipelineIndex is f's position in the filter pipeline.
func pipelineIndex(f filter) int {
	for i, p := range pipeline {
		if p == f {
			return i
		}
	}
	return len(pipeline)
}
