package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
	"github.com/shoal-project/shoal/testenv"
)

// multiSwarm starts a lab of managers+workers nodes: node1 makes the swarm,
// nodes 2..managers join as managers, the rest as workers. busybox:latest is
// loaded on node1 only: the other nodes fetch it from their peers.
func multiSwarm(t *testing.T, managers, workers int) []*testenv.Node {
	t.Helper()
	return swarmLab(t, managers, workers).Nodes
}

// swarmLab is multiSwarm, with the lab.
func swarmLab(t *testing.T, managers, workers int) *testenv.TestLab {
	t.Helper()
	lab := testenv.NewLab(t, testenv.LabOptions{Nodes: managers + workers})
	nodes := lab.Nodes
	n1 := nodes[0]
	n1.MustDocker("swarm", "init", "--advertise-addr", n1.Addr())
	archive := imagetest.BusyboxArchive(t, t.TempDir(), "busybox:latest")
	n1.MustDocker("load", "-i", archive)
	managerToken := strings.TrimSpace(n1.MustDocker("swarm", "join-token", "-q", "manager"))
	workerToken := strings.TrimSpace(n1.MustDocker("swarm", "join-token", "-q", "worker"))
	for i, n := range nodes[1:] {
		token := workerToken
		if i+1 < managers {
			token = managerToken
		}
		n.MustDocker("swarm", "join", "--token", token, n1.Addr()+":2377")
	}
	waitNodes(t, n1, len(nodes), "Ready")
	return lab
}

// nodeRow is one line of `docker node ls`.
type nodeRow struct{ Hostname, Status, Availability, ManagerStatus string }

// nodeList reads `docker node ls` on n.
func nodeList(t *testing.T, n *testenv.Node) (map[string]nodeRow, error) {
	t.Helper()
	out, err := try(n, "node", "ls", "--format", "{{.Hostname}}|{{.Status}}|{{.Availability}}|{{.ManagerStatus}}")
	if err != nil {
		return nil, err
	}
	rows := map[string]nodeRow{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 4 {
			continue
		}
		rows[f[0]] = nodeRow{f[0], f[1], f[2], f[3]}
	}
	return rows, nil
}

// waitNodes waits until n lists count nodes, all with the given status.
func waitNodes(t *testing.T, n *testenv.Node, count int, status string) {
	t.Helper()
	testenv.WaitFor(t, 30*time.Second, "nodes "+status, func() (bool, string) {
		rows, err := nodeList(t, n)
		if err != nil {
			return false, err.Error()
		}
		ok := len(rows) == count
		for _, r := range rows {
			ok = ok && r.Status == status
		}
		out, _ := try(n, "node", "ls")
		return ok, out
	})
}

// waitNodeStatus waits until host has status in n's node list.
func waitNodeStatus(t *testing.T, n *testenv.Node, host, status string, timeout time.Duration) {
	t.Helper()
	testenv.WaitFor(t, timeout, host+" "+status, func() (bool, string) {
		rows, err := nodeList(t, n)
		if err != nil {
			return false, err.Error()
		}
		out, _ := try(n, "node", "ls")
		return rows[host].Status == status, out
	})
}

// leaderOf names the leader as manager n sees it ("" when none).
func leaderOf(t *testing.T, n *testenv.Node) string {
	t.Helper()
	rows, err := nodeList(t, n)
	if err != nil {
		return ""
	}
	for _, r := range rows {
		if r.ManagerStatus == "Leader" {
			return r.Hostname
		}
	}
	return ""
}

// runningByNode counts a service's tasks desired and observed running, by node.
func runningByNode(t *testing.T, n *testenv.Node, service string) (map[string]int, error) {
	t.Helper()
	out, err := try(n, "service", "ps", "--filter", "desired-state=running", "--format", "{{.Node}}|{{.CurrentState}}", service)
	if err != nil {
		return nil, err
	}
	by := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		node, state, ok := strings.Cut(line, "|")
		if ok && strings.HasPrefix(state, "Running") {
			by[node]++
		}
	}
	return by, nil
}

// waitRunningOn waits until the service runs want tasks in all, as cond of
// their spread over the nodes says.
func waitRunningOn(t *testing.T, n *testenv.Node, service string, want int, timeout time.Duration, cond func(map[string]int) bool) map[string]int {
	t.Helper()
	var by map[string]int
	testenv.WaitFor(t, timeout, service+" running", func() (bool, string) {
		var err error
		by, err = runningByNode(t, n, service)
		if err != nil {
			return false, err.Error()
		}
		total := 0
		for _, c := range by {
			total += c
		}
		out, _ := try(n, "service", "ps", "--no-trunc", service)
		return total == want && (cond == nil || cond(by)), out
	})
	return by
}

// try runs the docker CLI against n with 30 seconds at most: a node behind a
// partition must fail a check, not hang the test.
func try(n *testenv.Node, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return n.DockerContext(ctx, args...)
}
