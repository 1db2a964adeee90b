package scheduler

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

func node(id string, mut ...func(*swarm.Node)) *swarm.Node {
	n := &swarm.Node{ID: id}
	n.Spec.Role = swarm.NodeRoleWorker
	n.Spec.Availability = swarm.NodeAvailabilityActive
	n.Spec.Labels = map[string]string{}
	n.Status.State = swarm.NodeStateReady
	n.Description.Hostname = "host-" + id
	n.Description.Platform = swarm.Platform{OS: "linux", Architecture: "x86_64"}
	n.Description.Resources = swarm.Resources{NanoCPUs: 2e9, MemoryBytes: 1 << 30}
	for _, m := range mut {
		m(n)
	}
	return n
}

func task(id, service string, mut ...func(*swarm.Task)) *swarm.Task {
	t := &swarm.Task{ID: id, ServiceID: service, DesiredState: swarm.TaskStateRunning}
	t.Status.State = swarm.TaskStatePending
	for _, m := range mut {
		m(t)
	}
	return t
}

func withLabel(k, v string) func(*swarm.Node) {
	return func(n *swarm.Node) { n.Spec.Labels[k] = v }
}

func constrained(c ...string) func(*swarm.Task) {
	return func(t *swarm.Task) { t.Spec.Placement = &swarm.Placement{Constraints: c} }
}

func reserving(mem int64) func(*swarm.Task) {
	return func(t *swarm.Task) {
		t.Spec.Resources = &swarm.ResourceRequirements{Reservations: &swarm.Resources{MemoryBytes: mem}}
	}
}

func TestPlan(t *testing.T) {
	drained := func(n *swarm.Node) { n.Spec.Availability = swarm.NodeAvailabilityDrain }
	down := func(n *swarm.Node) { n.Status.State = swarm.NodeStateDown }
	cases := []struct {
		name     string
		nodes    []*swarm.Node
		running  []*swarm.Task
		pending  []*swarm.Task
		want     map[string]string // task -> node ("" = unplaced)
		reasonOf map[string]string // task -> substring of the reason
	}{
		{
			name:    "spreads a service over nodes",
			nodes:   []*swarm.Node{node("a"), node("b")},
			pending: []*swarm.Task{task("t1", "s"), task("t2", "s")},
			want:    map[string]string{"t1": "a", "t2": "b"},
		},
		{
			name:    "fewest tasks of the service first, then least loaded",
			nodes:   []*swarm.Node{node("a"), node("b")},
			running: []*swarm.Task{task("r1", "other", func(t *swarm.Task) { t.NodeID = "a" }), task("r2", "s", func(t *swarm.Task) { t.NodeID = "b" })},
			pending: []*swarm.Task{task("t1", "s")},
			want:    map[string]string{"t1": "a"},
		},
		{
			name:     "drained and down nodes take nothing",
			nodes:    []*swarm.Node{node("a", drained), node("b", down)},
			pending:  []*swarm.Task{task("t1", "s")},
			want:     map[string]string{"t1": ""},
			reasonOf: map[string]string{"t1": "no suitable node (2 nodes not available for new tasks)"},
		},
		{
			name:     "constraints on labels and role",
			nodes:    []*swarm.Node{node("a", withLabel("zone", "east")), node("b", withLabel("zone", "west"))},
			pending:  []*swarm.Task{task("t1", "s", constrained("node.labels.zone==west")), task("t2", "s", constrained("node.role==manager"))},
			want:     map[string]string{"t1": "b", "t2": ""},
			reasonOf: map[string]string{"t2": "scheduling constraints not satisfied on 2 nodes"},
		},
		{
			name:     "reservations use up a node",
			nodes:    []*swarm.Node{node("a")},
			pending:  []*swarm.Task{task("t1", "s", reserving(600<<20)), task("t2", "s", reserving(600<<20))},
			want:     map[string]string{"t1": "a", "t2": ""},
			reasonOf: map[string]string{"t2": "insufficient resources on 1 node"},
		},
		{
			name:  "spread preference balances label values",
			nodes: []*swarm.Node{node("a", withLabel("zone", "east")), node("b", withLabel("zone", "east")), node("c", withLabel("zone", "west"))},
			pending: []*swarm.Task{
				task("t1", "s", func(t *swarm.Task) {
					t.Spec.Placement = &swarm.Placement{Preferences: []swarm.PlacementPreference{{Spread: &swarm.SpreadOver{SpreadDescriptor: "node.labels.zone"}}}}
				}),
			},
			running: []*swarm.Task{task("r1", "s", func(t *swarm.Task) { t.NodeID = "a" })},
			want:    map[string]string{"t1": "c"},
		},
		{
			name:    "host ports conflict",
			nodes:   []*swarm.Node{node("a")},
			running: []*swarm.Task{task("r1", "s", hostPort(8080), func(t *swarm.Task) { t.NodeID = "a" })},
			pending: []*swarm.Task{task("t1", "s", hostPort(8080)), task("t2", "s", hostPort(8081))},
			want:    map[string]string{"t1": "", "t2": "a"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assigned, unplaced := Plan(tc.nodes, tc.running, tc.pending)
			got := map[string]string{}
			for _, a := range assigned {
				got[a.TaskID] = a.NodeID
			}
			reasons := map[string]string{}
			for _, u := range unplaced {
				got[u.TaskID] = ""
				reasons[u.TaskID] = u.Reason
			}
			for id, want := range tc.want {
				if got[id] != want {
					t.Errorf("task %s on %q, want %q (unplaced: %v)", id, got[id], want, reasons)
				}
			}
			for id, sub := range tc.reasonOf {
				if !strings.Contains(reasons[id], sub) {
					t.Errorf("task %s reason %q, want it to contain %q", id, reasons[id], sub)
				}
			}
		})
	}
}

func hostPort(p uint32) func(*swarm.Task) {
	return func(t *swarm.Task) {
		t.Status.PortStatus.Ports = []swarm.PortConfig{{Protocol: "tcp", PublishedPort: p, TargetPort: 80, PublishMode: swarm.PortConfigPublishModeHost}}
	}
}

func TestParseConstraint(t *testing.T) {
	for _, tc := range []struct {
		in    string
		key   string
		equal bool
		err   string // Docker's words; "" when the constraint parses
	}{
		{"node.role==manager", "node.role", true, ""},
		{"node.labels.zone != east", "node.labels.zone", false, ""},
		{"node.labels.path==/srv/a b", "node.labels.path", true, ""},
		{"node.role=manager", "", false, "constraint expected one operator from ==, !="},
		{"==x", "", false, "key '' is invalid"},
		{"n==x", "", false, "key 'n' is invalid"},
		{"a!=b==c", "", false, "key 'a!=b' is invalid"},
		{"node.role==", "", false, "value '' is invalid"},
		{"node.role==manager==x", "", false, "value 'manager==x' is invalid"},
		{"node.id!=!x", "", false, "value '!x' is invalid"},
	} {
		key, _, equal, err := ParseConstraint(tc.in)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.err || (tc.err == "" && (key != tc.key || equal != tc.equal)) {
			t.Errorf("ParseConstraint(%q) = %q %v %q, want %q %v %q", tc.in, key, equal, got, tc.key, tc.equal, tc.err)
		}
	}
}

// BenchmarkPlan measures placing 50 tasks of one service on 10 nodes.
func BenchmarkPlan(b *testing.B) {
	var nodes []*swarm.Node
	for i := 0; i < 10; i++ {
		nodes = append(nodes, node(string(rune('a'+i))))
	}
	var pending []*swarm.Task
	for i := 0; i < 50; i++ {
		pending = append(pending, task(string(rune('A'+i)), "s"))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Plan(nodes, nil, pending)
	}
}

// The reasons a task has no node come most failures first, and in the
// pipeline's order where the counts are equal, whatever the order of the
// nodes (swarmkit's words, as dockerd gives them for a constrained service
// while one of three nodes drains).
func TestUnplacedReasonOrder(t *testing.T) {
	drained := node("d", func(n *swarm.Node) { n.Spec.Availability = swarm.NodeAvailabilityDrain })
	for _, c := range []struct {
		nodes []*swarm.Node
		want  string
	}{
		{[]*swarm.Node{node("a"), node("b"), drained}, "no suitable node (scheduling constraints not satisfied on 2 nodes; 1 node not available for new tasks)"},
		{[]*swarm.Node{drained, node("b"), node("a")}, "no suitable node (scheduling constraints not satisfied on 2 nodes; 1 node not available for new tasks)"},
		{[]*swarm.Node{node("a"), drained}, "no suitable node (1 node not available for new tasks; scheduling constraints not satisfied on 1 node)"},
		{[]*swarm.Node{drained, node("a")}, "no suitable node (1 node not available for new tasks; scheduling constraints not satisfied on 1 node)"},
	} {
		_, unplaced := Plan(c.nodes, nil, []*swarm.Task{task("t", "s", constrained("node.labels.zone==c"))})
		if len(unplaced) != 1 || unplaced[0].Reason != c.want {
			t.Errorf("unplaced %+v, want %q", unplaced, c.want)
		}
	}
}
