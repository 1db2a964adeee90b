package e2e

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
	"github.com/shoal-project/shoal/testenv"
)

// waitPendingNoNode waits until the service has a pending task that says why no
// node took it.
func waitPendingNoNode(t *testing.T, n *testenv.Node, service string) taskRow {
	t.Helper()
	var found taskRow
	waitTaskRows(t, n, service, "a pending task with no suitable node", func(rows []taskRow) bool {
		for _, r := range rows {
			if r.DesiredState == "Running" && strings.HasPrefix(r.CurrentState, "Pending") && strings.HasPrefix(r.Error, `"no suitable node`) {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// drain stops a node's tasks and places no new ones; active brings them back;
// pause keeps what runs but places nothing new.
func TestNodeAvailability(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "avail")
	n.MustDocker("service", "create", "-d", "--name", "web", "--replicas", "2", "--stop-grace-period", "1s",
		"busybox", "sleep", "300")
	waitRunning(t, n, "web", 2)

	n.MustDocker("node", "update", "--availability", "drain", "avail")
	if got := strings.TrimSpace(n.MustDocker("node", "inspect", "--format", "{{.Spec.Availability}}", "self")); got != "drain" {
		t.Fatalf("availability after drain = %q", got)
	}
	waitTaskRows(t, n, "web", "no task running on a drained node", func(rows []taskRow) bool {
		return countRows(rows, func(r taskRow) bool { return strings.HasPrefix(r.CurrentState, "Running") }) == 0
	})
	r := waitPendingNoNode(t, n, "web")
	if r.Error != `"no suitable node (1 node not available for new tasks)"` {
		t.Fatalf("pending task error = %s", r.Error)
	}
	if ls := strings.TrimSpace(n.MustDocker("node", "ls", "--format", "{{.Hostname}} {{.Availability}}")); ls != "avail Drain" {
		t.Fatalf("node ls = %q", ls)
	}

	n.MustDocker("node", "update", "--availability", "active", "avail")
	waitRunning(t, n, "web", 2)

	n.MustDocker("node", "update", "--availability", "pause", "avail")
	n.MustDocker("service", "scale", "-d", "web=3")
	waitPendingNoNode(t, n, "web")
	if got := countRows(serviceTasks(t, n, "web", "--filter", "desired-state=running"), func(r taskRow) bool {
		return strings.HasPrefix(r.CurrentState, "Running")
	}); got != 2 {
		t.Fatalf("%d tasks running on a paused node, want the 2 that ran before", got)
	}
	n.MustDocker("node", "update", "--availability", "active", "avail")
	waitRunning(t, n, "web", 3)
}

// Node labels drive placement constraints; spread preferences are accepted.
func TestNodeLabelsAndConstraints(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "labels")
	n.MustDocker("node", "update", "--label-add", "zone=a", "labels")
	var node swarm.Node
	inspect(t, n, "node", "self", &node)
	if node.Spec.Labels["zone"] != "a" {
		t.Fatalf("node labels = %v", node.Spec.Labels)
	}
	n.MustDocker("service", "create", "-d", "--name", "ina", "--constraint", "node.labels.zone==a",
		"--stop-grace-period", "1s", "busybox", "sleep", "300")
	n.MustDocker("service", "create", "-d", "--name", "inb", "--constraint", "node.labels.zone==b",
		"busybox", "sleep", "300")
	n.MustDocker("service", "create", "-d", "--name", "spread", "--replicas", "2",
		"--placement-pref", "spread=node.labels.zone", "--stop-grace-period", "1s", "busybox", "sleep", "300")
	waitRunning(t, n, "ina", 1)
	waitRunning(t, n, "spread", 2)
	r := waitPendingNoNode(t, n, "inb")
	if r.Error != `"no suitable node (scheduling constraints not satisfied on 1 node)"` {
		t.Fatalf("pending task error = %s", r.Error)
	}
	spread := serviceInspect(t, n, "spread")
	if p := spread.Spec.TaskTemplate.Placement; p == nil || len(p.Preferences) != 1 || p.Preferences[0].Spread == nil || p.Preferences[0].Spread.SpreadDescriptor != "node.labels.zone" {
		t.Fatalf("placement = %+v", p)
	}

	n.MustDocker("node", "update", "--label-rm", "zone", "labels")
	var after swarm.Node
	inspect(t, n, "node", "self", &after)
	if _, ok := after.Spec.Labels["zone"]; ok {
		t.Fatalf("label zone still there: %v", after.Spec.Labels)
	}
	// A new task of a service constrained to zone==a now finds no node.
	n.MustDocker("service", "create", "-d", "--name", "ina2", "--constraint", "node.labels.zone==a",
		"busybox", "sleep", "300")
	waitPendingNoNode(t, n, "ina2")
	n.MustDocker("node", "update", "--label-add", "zone=b", "labels")
	waitRunning(t, n, "inb", 1)
}

// docker node ls, node inspect --pretty self and node ps self show the node as
// Docker does.
func TestNodeListInspectPs(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "nodes")
	n.MustDocker("service", "create", "-d", "--name", "web", "--stop-grace-period", "1s", "busybox", "sleep", "300")
	waitRunning(t, n, "web", 1)

	ls := n.MustDocker("node", "ls")
	lines := strings.Split(strings.TrimSpace(ls), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[0], "HOSTNAME") || !strings.Contains(lines[0], "MANAGER STATUS") {
		t.Fatalf("node ls:\n%s", ls)
	}
	f := strings.Fields(lines[1])
	if len(f) < 6 || f[1] != "*" || f[2] != "nodes" || f[3] != "Ready" || f[4] != "Active" || f[5] != "Leader" {
		t.Fatalf("node ls row = %q", lines[1])
	}

	// The CLI aligns --pretty output with tabs and spaces; compare words.
	pretty := strings.Join(strings.Fields(n.MustDocker("node", "inspect", "--pretty", "self")), " ")
	for _, want := range []string{"Hostname: nodes", "Status: State: Ready Availability: Active Address: 127.0.0.1", "Manager Status: Address: 127.0.0.1:2377 Raft Status: Reachable Leader: Yes", "Platform: Operating System: linux",
		"TLS Info: TrustRoot: -----BEGIN CERTIFICATE-----", "Issuer Subject: ", "Issuer Public Key: "} {
		if !strings.Contains(pretty, want) {
			t.Fatalf("node inspect --pretty lacks %q:\n%s", want, pretty)
		}
	}

	ps := n.MustDocker("node", "ps", "--format", "{{.Name}} {{.Image}} {{.Node}} {{.DesiredState}} {{.CurrentState}}", "self")
	if !strings.HasPrefix(strings.TrimSpace(ps), "web.1 busybox:latest nodes Running Running") {
		t.Fatalf("node ps self = %q", ps)
	}
}

// A node offering two named GPUs runs two tasks reserving one each, each told
// its own GPU in DOCKER_RESOURCE_GPU as Docker tells it; a third task waits
// for one, with Docker's reason.
func TestGenericResourcesAssigned(t *testing.T) {
	t.Parallel()
	n := testenv.StartNode(t, "gpus", testenv.Options{Args: []string{
		"--node-generic-resource", "gpu=GPU-a", "--node-generic-resource", "gpu=GPU-b"}})
	n.MustDocker("swarm", "init", "--advertise-addr", "127.0.0.1")
	n.MustDocker("load", "-i", imagetest.BusyboxArchive(t, t.TempDir(), "busybox:latest"))
	n.MustDocker("service", "create", "-d", "--name", "ml", "--replicas", "2", "--generic-resource", "gpu=1",
		"busybox", "sleep", "1000")
	waitRunning(t, n, "ml", 2)
	seen := map[string]bool{}
	for _, id := range strings.Fields(n.MustDocker("ps", "-q", "--filter", "label=com.docker.swarm.service.name=ml")) {
		gpu := strings.TrimSpace(n.MustDocker("exec", id, "sh", "-c", "echo $DOCKER_RESOURCE_GPU"))
		if gpu != "GPU-a" && gpu != "GPU-b" {
			t.Errorf("task container %s: DOCKER_RESOURCE_GPU=%q, want GPU-a or GPU-b", id, gpu)
		}
		seen[gpu] = true
	}
	if len(seen) != 2 {
		t.Errorf("the two tasks were given %v, want one GPU each", seen)
	}
	n.MustDocker("service", "scale", "-d", "ml=3")
	if r := waitPendingNoNode(t, n, "ml"); !strings.Contains(r.Error, "insufficient resources on 1 node") {
		t.Errorf("pending task's reason %q, want insufficient resources on 1 node", r.Error)
	}
}
