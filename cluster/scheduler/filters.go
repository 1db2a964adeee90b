package scheduler

import (
	"fmt"
	"strings"

	"github.com/moby/moby/api/types/swarm"
)

// filter decides whether a node can take a task. Filters are tiny and run in a
// pipeline that stops at the first one that says no.
type filter interface {
	// enabled reports whether the filter has anything to check for t.
	enabled(t *swarm.Task) bool
	// check reports whether n can run t, given what is already placed on it.
	check(t *swarm.Task, n *nodeInfo) bool
	// explain names the failure for n nodes, as Docker words it.
	explain(n int) string
}

func plural(n int) string {
	if n == 1 {
		return "1 node"
	}
	return fmt.Sprintf("%d nodes", n)
}

// readyFilter keeps nodes that are up and accept new tasks.
type readyFilter struct{}

func (readyFilter) enabled(*swarm.Task) bool { return true }
func (readyFilter) check(_ *swarm.Task, n *nodeInfo) bool {
	return n.node.Status.State == swarm.NodeStateReady &&
		(n.node.Spec.Availability == "" || n.node.Spec.Availability == swarm.NodeAvailabilityActive)
}
func (readyFilter) explain(n int) string { return plural(n) + " not available for new tasks" }

// resourceFilter keeps nodes with enough unreserved CPU and memory.
type resourceFilter struct{}

func (resourceFilter) enabled(t *swarm.Task) bool {
	r := reservations(t)
	return r.MemoryBytes > 0 || r.NanoCPUs > 0
}
func (resourceFilter) check(t *swarm.Task, n *nodeInfo) bool {
	r := reservations(t)
	free := n.free()
	return r.MemoryBytes <= free.MemoryBytes && r.NanoCPUs <= free.NanoCPUs
}
func (resourceFilter) explain(n int) string { return "insufficient resources on " + plural(n) }

// constraintFilter evaluates the service's placement constraints.
type constraintFilter struct{}

func (constraintFilter) enabled(t *swarm.Task) bool {
	return t.Spec.Placement != nil && len(t.Spec.Placement.Constraints) > 0
}
func (constraintFilter) check(t *swarm.Task, n *nodeInfo) bool {
	for _, c := range t.Spec.Placement.Constraints {
		ok, err := matchConstraint(c, n.node)
		if err != nil || !ok {
			return false
		}
	}
	return true
}
func (constraintFilter) explain(n int) string {
	return "scheduling constraints not satisfied on " + plural(n)
}

// platformFilter keeps nodes whose OS and architecture the service accepts.
type platformFilter struct{}

func (platformFilter) enabled(t *swarm.Task) bool {
	return t.Spec.Placement != nil && len(t.Spec.Placement.Platforms) > 0
}
func (platformFilter) check(t *swarm.Task, n *nodeInfo) bool {
	p := n.node.Description.Platform
	for _, want := range t.Spec.Placement.Platforms {
		if (want.OS == "" || strings.EqualFold(want.OS, p.OS)) &&
			(want.Architecture == "" || archMatch(want.Architecture, p.Architecture)) {
			return true
		}
	}
	return false
}
func (platformFilter) explain(n int) string {
	return "unsupported platform on " + plural(n)
}

// archMatch treats Docker's and Go's names of the same architecture as equal.
func archMatch(a, b string) bool {
	norm := func(s string) string {
		switch strings.ToLower(s) {
		case "x86_64", "x86-64", "amd64":
			return "amd64"
		case "aarch64", "arm64":
			return "arm64"
		}
		return strings.ToLower(s)
	}
	return norm(a) == norm(b)
}

// portFilter keeps nodes where the task's host-mode published ports are free.
type portFilter struct{}

func (portFilter) enabled(t *swarm.Task) bool { return len(hostPorts(t)) > 0 }
func (portFilter) check(t *swarm.Task, n *nodeInfo) bool {
	for _, p := range hostPorts(t) {
		if n.usedPorts[p] {
			return false
		}
	}
	return true
}
func (portFilter) explain(n int) string { return "host-mode port already in use on " + plural(n) }

// maxReplicasFilter enforces Placement.MaxReplicas per node.
type maxReplicasFilter struct{}

func (maxReplicasFilter) enabled(t *swarm.Task) bool {
	return t.Spec.Placement != nil && t.Spec.Placement.MaxReplicas > 0
}
func (maxReplicasFilter) check(t *swarm.Task, n *nodeInfo) bool {
	return uint64(n.serviceTasks[t.ServiceID]) < t.Spec.Placement.MaxReplicas
}

// explain words it as swarmkit does: without the count of nodes.
func (maxReplicasFilter) explain(int) string { return "max replicas per node limit exceed" }

// pipeline is the order filters run in.
var pipeline = []filter{readyFilter{}, resourceFilter{}, genericFilter{}, platformFilter{}, constraintFilter{}, portFilter{}, maxReplicasFilter{}}

func reservations(t *swarm.Task) swarm.Resources {
	if t.Spec.Resources == nil || t.Spec.Resources.Reservations == nil {
		return swarm.Resources{}
	}
	return *t.Spec.Resources.Reservations
}

// portKey is a published host port: protocol and number.
type portKey struct {
	proto string
	port  uint32
}

// hostPorts lists the task's published ports in host mode.
func hostPorts(t *swarm.Task) []portKey {
	var ports []portKey
	for _, p := range publishedPorts(t) {
		if p.PublishMode == swarm.PortConfigPublishModeHost && p.PublishedPort != 0 {
			proto := string(p.Protocol)
			if proto == "" {
				proto = "tcp"
			}
			ports = append(ports, portKey{proto, p.PublishedPort})
		}
	}
	return ports
}

// publishedPorts returns the ports the task publishes: the endpoint spec is copied to
// the task's port status by the allocator, so that is where they are read from.
func publishedPorts(t *swarm.Task) []swarm.PortConfig {
	return t.Status.PortStatus.Ports
}
