package e2e

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-project/shoal/testenv"
)

// A manager and four workers: the workers join and are Ready; a service of 10
// replicas constrained to workers and spread over a zone label runs 5 per zone,
// its image loaded on the manager only; its logs come from every node; draining
// a node moves its tasks; a task no node fits says why; a worker answers
// cluster commands as Docker's do; a worker that leaves is Down.
func TestMultiNodeScheduling(t *testing.T) {
	t.Parallel()
	nodes := multiSwarm(t, 1, 4)
	m := nodes[0]
	for i, n := range nodes[1:] {
		zone := "a"
		if i >= 2 {
			zone = "b"
		}
		m.MustDocker("node", "update", "--label-add", "zone="+zone, n.Name)
	}
	m.MustDocker("service", "create", "-d", "--name", "web", "--replicas", "10",
		"--constraint", "node.role==worker", "--placement-pref", "spread=node.labels.zone",
		"--stop-grace-period", "1s", "busybox", "sh", "-c", "echo hello from $(hostname); exec sleep 1000")
	by := waitRunningOn(t, m, "web", 10, 90*time.Second, nil)
	if by["node1"] != 0 {
		t.Errorf("%d tasks on the manager, constrained to workers", by["node1"])
	}
	if a, b := by["node2"]+by["node3"], by["node4"]+by["node5"]; a != 5 || b != 5 {
		t.Errorf("zone a runs %d, zone b %d: want 5 and 5 (spread over the zone label): %v", a, b, by)
	}
	for _, n := range nodes[1:] {
		if by[n.Name] < 2 || by[n.Name] > 3 {
			t.Errorf("%s runs %d tasks, want 2 or 3: %v", n.Name, by[n.Name], by)
		}
	}
	// Logs of tasks on four other nodes, read through the manager.
	testenv.WaitFor(t, 30*time.Second, "logs from every worker", func() (bool, string) {
		out, err := try(m, "service", "logs", "web")
		if err != nil {
			return false, out
		}
		for _, n := range nodes[1:] {
			if !strings.Contains(out, "@"+n.Name) {
				return false, out
			}
		}
		return strings.Count(out, "hello from") == 10, out
	})

	m.MustDocker("node", "update", "--availability", "drain", "node5")
	waitRunningOn(t, m, "web", 10, 60*time.Second, func(by map[string]int) bool { return by["node5"] == 0 && by["node1"] == 0 })
	testenv.WaitFor(t, 30*time.Second, "node5's containers stopped", func() (bool, string) {
		out, err := nodes[4].Docker("ps", "-q", "--filter", "label=com.docker.swarm.service.name=web")
		return err == nil && strings.TrimSpace(out) == "", out
	})

	m.MustDocker("service", "create", "-d", "--name", "nowhere", "--constraint", "node.labels.zone==c", "busybox", "sleep", "1000")
	testenv.WaitFor(t, 30*time.Second, "the unplaceable task says why", func() (bool, string) {
		out, _ := try(m, "service", "ps", "--no-trunc", "--format", "{{.CurrentState}}|{{.Error}}", "nowhere")
		return strings.HasPrefix(out, "Pending") && strings.Contains(out, "no suitable node (scheduling constraints not satisfied on 4 nodes; 1 node not available for new tasks)"), out
	})

	w := nodes[1]
	out, err := try(w, "node", "ls")
	if err == nil || !strings.Contains(out, "Worker nodes can't be used to view or modify cluster state") {
		t.Errorf("node ls on a worker: %v %q", err, out)
	}
	info := w.MustDocker("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{len .Swarm.RemoteManagers}}")
	if strings.TrimSpace(info) != "active false 1" {
		t.Errorf("docker info on a worker: %q, want active, no control, one manager", info)
	}
	w.MustDocker("swarm", "leave")
	waitNodeStatus(t, m, "node2", "Down", 30*time.Second)
	out, _ = try(w, "ps", "-aq", "--filter", "label=com.docker.swarm.service.name=web")
	if strings.TrimSpace(out) != "" {
		t.Errorf("containers left on a node that left the swarm: %q", out)
	}
}

// Three managers: the leader is SIGKILLed while a client writes through
// another manager; a new leader is elected, the writes go on, none that was
// acknowledged is lost, and the old leader comes back as a follower.
func TestMultiNodeLeaderFailover(t *testing.T) {
	t.Parallel()
	nodes := multiSwarm(t, 3, 0)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	n2.MustDocker("service", "create", "-d", "--name", "svc", "--replicas", "0", "busybox", "sleep", "1000")

	var (
		mu    sync.Mutex
		acked []int
	)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			_, err := n2.DockerContext(wctx, "service", "update", "-d", "--label-add", "k"+strconv.Itoa(i)+"=v", "svc")
			cancel()
			if err == nil {
				mu.Lock()
				acked = append(acked, i)
				mu.Unlock()
			}
		}
	}()
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	testenv.WaitFor(t, 30*time.Second, "writes before the kill", func() (bool, string) { return ackedCount() >= 3, "" })
	if l := leaderOf(t, n2); l != "node1" {
		t.Fatalf("leader before the kill is %q, want node1", l)
	}
	n1.Kill()
	before := ackedCount()
	testenv.WaitFor(t, 30*time.Second, "a new leader", func() (bool, string) {
		l := leaderOf(t, n3)
		return l == "node2" || l == "node3", l
	})
	testenv.WaitFor(t, 30*time.Second, "writes through node2 after the kill", func() (bool, string) {
		return ackedCount() >= before+3, strconv.Itoa(ackedCount())
	})
	stop()
	<-done

	out := n3.MustDocker("service", "inspect", "--format", "{{json .Spec.Labels}}", "svc")
	mu.Lock()
	for _, i := range acked {
		if !strings.Contains(out, fmt.Sprintf(`"k%d":"v"`, i)) {
			t.Errorf("acknowledged write k%d is lost: %s", i, out)
		}
	}
	mu.Unlock()

	n1.Start()
	testenv.WaitFor(t, 30*time.Second, "the old leader back as a follower", func() (bool, string) {
		rows, err := nodeList(t, n1)
		if err != nil {
			return false, err.Error()
		}
		return rows["node1"].ManagerStatus == "Reachable" && rows["node1"].Status == "Ready", fmt.Sprint(rows)
	})
	// It has the writes made while it was dead.
	if got := n1.MustDocker("service", "inspect", "--format", "{{json .Spec.Labels}}", "svc"); got != out {
		t.Errorf("the restarted manager reads %s, the others %s", got, out)
	}
}

// Three managers, one cut off from the other two: the majority keeps
// accepting writes, the minority refuses them with a clear error, and once
// healed every manager has the majority's writes.
func TestMultiNodePartition(t *testing.T) {
	t.Parallel()
	lab := multiSwarmLab(t, 3)
	n1, n2, n3 := lab.Nodes[0], lab.Nodes[1], lab.Nodes[2]
	lab.Partition([]*testenv.Node{n1}, []*testenv.Node{n2, n3})
	testenv.WaitFor(t, 60*time.Second, "the majority accepts a write", func() (bool, string) {
		out, err := try(n2, "service", "create", "-d", "--name", "majority", "busybox", "sleep", "1000")
		return err == nil || strings.Contains(out, "already exists"), out
	})
	out, err := try(n1, "service", "create", "-d", "--name", "minority", "busybox", "sleep", "1000")
	if err == nil || !strings.Contains(out, "does not have a leader") {
		t.Errorf("a write on the minority: %v %q, want Docker's no-leader error", err, out)
	}
	lab.Heal()
	testenv.WaitFor(t, 60*time.Second, "node1 has the majority's write", func() (bool, string) {
		out, err := try(n1, "service", "ls", "--format", "{{.Name}}")
		return err == nil && strings.TrimSpace(out) == "majority", out
	})
	waitNodes(t, n1, 3, "Ready")
}

// multiSwarmLab is multiSwarm of managers, with its lab.
func multiSwarmLab(t *testing.T, managers int) *testenv.TestLab {
	t.Helper()
	lab := testenv.NewLab(t, testenv.LabOptions{Nodes: managers})
	n1 := lab.Nodes[0]
	n1.MustDocker("swarm", "init", "--advertise-addr", n1.Addr())
	token := strings.TrimSpace(n1.MustDocker("swarm", "join-token", "-q", "manager"))
	for _, n := range lab.Nodes[1:] {
		n.MustDocker("swarm", "join", "--token", token, n1.Addr()+":2377")
	}
	waitNodes(t, n1, managers, "Ready")
	return lab
}

// A worker's daemon is SIGKILLed: it is Down, its tasks run elsewhere, and
// when it comes back its stale task containers are removed.
func TestMultiNodeWorkerLoss(t *testing.T) {
	t.Parallel()
	nodes := multiSwarm(t, 1, 2)
	m, w1, w2 := nodes[0], nodes[1], nodes[2]
	m.MustDocker("service", "create", "-d", "--name", "web", "--replicas", "4", "--constraint", "node.role==worker",
		"--stop-grace-period", "1s", "busybox", "sleep", "1000")
	waitRunningOn(t, m, "web", 4, 90*time.Second, func(by map[string]int) bool { return by["node2"] == 2 && by["node3"] == 2 })
	w2.Kill()
	waitNodeStatus(t, m, "node3", "Down", 30*time.Second)
	waitRunningOn(t, m, "web", 4, 60*time.Second, func(by map[string]int) bool { return by["node2"] == 4 })
	w2.Start()
	waitNodeStatus(t, m, "node3", "Ready", 30*time.Second)
	testenv.WaitFor(t, 30*time.Second, "node3's stale containers gone", func() (bool, string) {
		out, err := try(w2, "ps", "-q", "--filter", "label=com.docker.swarm.service.name=web")
		return err == nil && strings.TrimSpace(out) == "", out
	})
	if by, _ := runningByNode(t, m, "web"); by["node2"] != 4 {
		t.Errorf("tasks moved again after node3 came back: %v", by)
	}
	_ = w1
}

// Across four nodes (a manager, three workers): a global service runs one task
// per node and follows drains, label changes and a node's return; a replicated
// one with at most one replica per node, or publishing a host-mode port, runs
// one per node and leaves the rest pending with Docker's reason.
func TestMultiNodeGlobalAndLimits(t *testing.T) {
	t.Parallel()
	nodes := multiSwarm(t, 1, 3)
	m := nodes[0]
	m.MustDocker("service", "create", "-d", "--name", "agent", "--mode", "global", "busybox", "sleep", "1000")
	m.MustDocker("service", "create", "-d", "--name", "edge", "--mode", "global", "--constraint", "node.labels.edge==yes", "busybox", "sleep", "1000")
	waitRunningOn(t, m, "agent", 4, 90*time.Second, func(by map[string]int) bool { return len(by) == 4 })

	m.MustDocker("node", "update", "--availability", "drain", "node4")
	waitRunningOn(t, m, "agent", 3, 60*time.Second, func(by map[string]int) bool { return by["node4"] == 0 })
	m.MustDocker("node", "update", "--availability", "active", "node4")
	waitRunningOn(t, m, "agent", 4, 60*time.Second, func(by map[string]int) bool { return by["node4"] == 1 })

	m.MustDocker("node", "update", "--label-add", "edge=yes", "node2")
	m.MustDocker("node", "update", "--label-add", "edge=yes", "node3")
	waitRunningOn(t, m, "edge", 2, 60*time.Second, func(by map[string]int) bool { return by["node2"] == 1 && by["node3"] == 1 })
	m.MustDocker("node", "update", "--label-rm", "edge", "node2")
	waitRunningOn(t, m, "edge", 1, 60*time.Second, func(by map[string]int) bool { return by["node3"] == 1 })

	pending := func(service, reason string) {
		t.Helper()
		testenv.WaitFor(t, 60*time.Second, service+"'s extra task pending", func() (bool, string) {
			out, _ := try(m, "service", "ps", "--no-trunc", "--filter", "desired-state=running", "--format", "{{.CurrentState}}|{{.Error}}", service)
			return strings.Count(out, "Running") == 4 && strings.Count(out, "Pending") == 1 && strings.Contains(out, reason), out
		})
	}
	m.MustDocker("service", "create", "-d", "--name", "one", "--replicas", "5", "--replicas-max-per-node", "1", "busybox", "sleep", "1000")
	pending("one", "no suitable node (max replicas per node limit exceed)")
	by, err := runningByNode(t, m, "one")
	if err != nil || len(by) != 4 {
		t.Errorf("one: running %v (%v), want one per node", by, err)
	}
	m.MustDocker("service", "create", "-d", "--name", "port", "--replicas", "5", "--publish", "mode=host,target=80,published=8080",
		"busybox", "sleep", "1000")
	pending("port", "no suitable node (host-mode port already in use on 4 nodes)")
}

// Every manager of three stops at once (SIGTERM, as a power-cycled site's
// nodes do), then two of them while the third starts, and each exits at once,
// though its peers keep dialing it as it goes; started again they elect a
// leader, keep every object and take writes through any of them.
func TestMultiNodeManagersStopTogether(t *testing.T) {
	t.Parallel()
	lab := multiSwarmLab(t, 3)
	n1 := lab.Nodes[0]
	n1.MustDocker("service", "create", "-d", "--name", "kept", "--replicas", "0", "busybox", "sleep", "1000")
	for round := range 3 {
		var wg sync.WaitGroup
		errs := make([]error, len(lab.Nodes))
		for i, n := range lab.Nodes {
			wg.Go(func() { errs[i] = n.Machine.Stop(context.Background()) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		for i, n := range lab.Nodes {
			wg.Go(func() { errs[i] = n.Machine.Start(context.Background()) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		// Then the last manager stops while the other two start and dial it.
		last := lab.Nodes[round%3]
		others := []*testenv.Node{lab.Nodes[(round+1)%3], lab.Nodes[(round+2)%3]}
		for i, n := range others {
			wg.Go(func() { errs[i] = n.Machine.Stop(context.Background()) })
		}
		wg.Wait()
		for i, n := range others {
			wg.Go(func() { errs[i] = n.Machine.Start(context.Background()) })
		}
		wg.Go(func() { errs[2] = last.Machine.Stop(context.Background()) })
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		last.Start()
		n := lab.Nodes[round%3]
		testenv.WaitFor(t, 30*time.Second, "a write through "+n.Name+" after the restart", func() (bool, string) {
			out, err := try(n, "service", "update", "-d", "--label-add", fmt.Sprintf("round=%d", round), "kept")
			return err == nil, out
		})
		waitNodes(t, n1, 3, "Ready")
	}
	if got := strings.TrimSpace(n1.MustDocker("service", "inspect", "--format", "{{index .Spec.Labels \"round\"}}", "kept")); got != "2" {
		t.Errorf("label round=%q after three restarts, want 2", got)
	}
}

// With every manager gone for two minutes, a worker keeps its task running
// and restarts it itself each time it exits (restart policy any); the manager,
// back, finds the same task running: nothing was replaced.
func TestMultiNodeWorkerWithoutManagers(t *testing.T) {
	t.Parallel()
	const away = 2 * time.Minute
	nodes := multiSwarm(t, 1, 1)
	m, w := nodes[0], nodes[1]
	m.MustDocker("service", "create", "-d", "--name", "app", "--constraint", "node.role==worker",
		"--restart-delay", "100ms", "busybox", "sleep", "1000")
	waitRunningOn(t, m, "app", 1, 90*time.Second, nil)
	taskID := strings.TrimSpace(m.MustDocker("service", "ps", "-q", "--filter", "desired-state=running", "app"))

	m.Stop()
	stopped := time.Now()
	container := strings.TrimSpace(w.MustDocker("ps", "-q", "--filter", "label=com.docker.swarm.service.name=app"))
	if container == "" {
		t.Fatal("the task's container is not running on the worker once the manager stopped")
	}
	// The worker notices the session is gone (the manager's connections are
	// closed), then the task exits.
	testenv.WaitFor(t, 30*time.Second, "the worker without a session", func() (bool, string) {
		log := w.Log()
		return strings.Contains(log, "session ended") || strings.Contains(log, "no session with a manager"), ""
	})
	exitAndRestart := func() {
		t.Helper()
		started := w.MustDocker("inspect", "--format", "{{.State.StartedAt}}", container)
		w.MustDocker("kill", container)
		testenv.WaitFor(t, 30*time.Second, "the task restarted on the worker", func() (bool, string) {
			out, _ := try(w, "inspect", "--format", "{{.State.StartedAt}}|{{.State.Running}}", container)
			return out != "" && !strings.HasPrefix(out, strings.TrimSpace(started)) && strings.Contains(out, "|true"), out
		})
	}
	exitAndRestart()
	if !strings.Contains(w.Log(), "restarting an exited task on this node") {
		t.Error("the worker's log does not say it restarted the task itself")
	}
	// The task keeps running for the rest of the two minutes, and restarts
	// again at their end.
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for time.Since(stopped) < away {
		<-tick.C
		out, err := try(w, "inspect", "--format", "{{.State.Running}}", container)
		if err != nil || strings.TrimSpace(out) != "true" {
			t.Fatalf("the task stopped running %s after the manager: %s %v", time.Since(stopped).Round(time.Second), out, err)
		}
	}
	exitAndRestart()
	m.Start()
	waitRunningOn(t, m, "app", 1, 60*time.Second, nil)
	if got := strings.TrimSpace(m.MustDocker("service", "ps", "-q", "--filter", "desired-state=running", "app")); got != taskID {
		t.Errorf("running task %s after the manager came back, want the same task %s", got, taskID)
	}
	if out := m.MustDocker("service", "ps", "-q", "app"); strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("the task was replaced while the manager was away:\n%s", m.MustDocker("service", "ps", "app"))
	}
}

// Two workers promoted make three managers; the leader demoted hands over;
// the demoted node answers as a worker.
func TestMultiNodePromoteDemote(t *testing.T) {
	t.Parallel()
	nodes := multiSwarm(t, 1, 2)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	n1.MustDocker("node", "promote", "node2", "node3")
	testenv.WaitFor(t, 30*time.Second, "three managers", func() (bool, string) {
		rows, err := nodeList(t, n2)
		if err != nil {
			return false, err.Error()
		}
		return rows["node1"].ManagerStatus == "Leader" && rows["node2"].ManagerStatus == "Reachable" &&
			rows["node3"].ManagerStatus == "Reachable", fmt.Sprint(rows)
	})
	n2.MustDocker("node", "demote", "node1")
	testenv.WaitFor(t, 30*time.Second, "leadership handed over", func() (bool, string) {
		rows, err := nodeList(t, n3)
		if err != nil {
			return false, err.Error()
		}
		l := leaderOf(t, n3)
		return (l == "node2" || l == "node3") && rows["node1"].ManagerStatus == "", fmt.Sprint(rows)
	})
	testenv.WaitFor(t, 30*time.Second, "node1 answers as a worker", func() (bool, string) {
		out, err := try(n1, "node", "ls")
		return err != nil && strings.Contains(out, "Worker nodes can't be used"), out
	})
	// Two managers to one keeps a quorum, also when the one demoted leads (it
	// takes itself out of Raft, then steps down); one to none does not.
	leader := leaderOf(t, n2)
	other := map[string]*testenv.Node{"node2": n3, "node3": n2}[leader]
	if other == nil {
		t.Fatalf("leader %q, want node2 or node3", leader)
	}
	other.MustDocker("node", "demote", leader)
	testenv.WaitFor(t, 30*time.Second, "the other manager leads alone", func() (bool, string) {
		return leaderOf(t, other) == other.Name, ""
	})
	out, err := try(other, "node", "demote", other.Name)
	if err == nil || !strings.Contains(out, "attempting to demote the last manager of the swarm") {
		t.Errorf("demote of the last manager: %v %q", err, out)
	}
}

// Three managers lose two: the last refuses writes until `swarm init
// --force-new-cluster` makes it the only manager, with the swarm's state.
func TestMultiNodeForceNewCluster(t *testing.T) {
	t.Parallel()
	lab := multiSwarmLab(t, 3)
	n1, n2, n3 := lab.Nodes[0], lab.Nodes[1], lab.Nodes[2]
	n1.MustDocker("service", "create", "-d", "--name", "kept", "--replicas", "0", "busybox", "sleep", "1000")
	n2.Kill()
	n3.Kill()
	out, err := try(n1, "service", "create", "-d", "--name", "lost", "busybox", "sleep", "1000")
	if err == nil || !strings.Contains(out, "does not have a leader") {
		t.Fatalf("a write without quorum: %v %q", err, out)
	}
	n1.MustDocker("swarm", "init", "--force-new-cluster", "--advertise-addr", n1.Addr())
	testenv.WaitFor(t, 30*time.Second, "node1 leads alone", func() (bool, string) {
		return leaderOf(t, n1) == "node1", ""
	})
	// The write refused above may be there too: it reached the log before
	// the quorum was found gone, and a recovery keeps the whole log (its
	// outcome was unknown, as with any Raft write that loses its leader).
	if out := n1.MustDocker("service", "ls", "--format", "{{.Name}}"); !strings.Contains(out, "kept") {
		t.Errorf("services after the recovery: %q, want the swarm's own", out)
	}
	n1.MustDocker("service", "create", "-d", "--name", "after", "--replicas", "0", "busybox", "sleep", "1000")
	if got := strings.TrimSpace(n1.MustDocker("info", "--format", "{{.Swarm.Managers}} {{len .Swarm.RemoteManagers}}")); got != "3 1" {
		t.Errorf("managers after the recovery: %q, want 3 manager nodes of which 1 in raft", got)
	}
}

// A worker's daemon that restarts (an upgrade, a crash) is back before it
// counts as down: its tasks keep running in the same containers and nothing
// is rescheduled.
func TestMultiNodeWorkerRestart(t *testing.T) {
	t.Parallel()
	nodes := multiSwarm(t, 1, 1)
	m, w := nodes[0], nodes[1]
	m.MustDocker("service", "create", "-d", "--name", "web", "--replicas", "2", "--constraint", "node.role==worker", "busybox", "sleep", "1000")
	waitRunningOn(t, m, "web", 2, 90*time.Second, nil)
	tasks := m.MustDocker("service", "ps", "-q", "web")
	containers := w.MustDocker("ps", "-q", "--no-trunc")
	w.Restart()
	waitNodeStatus(t, m, "node2", "Ready", 30*time.Second)
	// Past the grace a broken session has (2 s): still the same tasks.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if got := m.MustDocker("service", "ps", "-q", "web"); got != tasks {
			t.Fatalf("tasks changed across a worker restart:\n%s\nwas\n%s", got, tasks)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if got := w.MustDocker("ps", "-q", "--no-trunc"); got != containers {
		t.Errorf("containers changed across a worker restart:\n%s\nwas\n%s", got, containers)
	}
	waitRunningOn(t, m, "web", 2, 30*time.Second, nil)
}

// A frozen leader (SIGSTOP: its connections stay open, nothing answers) is
// replaced; writes through another manager succeed without waiting out the
// frozen one, and once thawed it follows.
func TestMultiNodeFrozenLeader(t *testing.T) {
	t.Parallel()
	lab := multiSwarmLab(t, 3)
	n1, n2, n3 := lab.Nodes[0], lab.Nodes[1], lab.Nodes[2]
	n2.MustDocker("service", "create", "-d", "--name", "svc", "--replicas", "0", "busybox", "sleep", "1000")
	n1.Freeze()
	testenv.WaitFor(t, 60*time.Second, "a write through node2 with node1 frozen", func() (bool, string) {
		out, err := try(n2, "service", "update", "-d", "--label-add", "after=freeze", "svc")
		return err == nil, out
	})
	if l := leaderOf(t, n3); l != "node2" && l != "node3" {
		t.Errorf("leader with node1 frozen: %q", l)
	}
	n1.Thaw()
	testenv.WaitFor(t, 30*time.Second, "the thawed leader follows", func() (bool, string) {
		rows, err := nodeList(t, n1)
		if err != nil {
			return false, err.Error()
		}
		return rows["node1"].ManagerStatus == "Reachable", fmt.Sprint(rows)
	})
	if out := n1.MustDocker("service", "inspect", "--format", "{{index .Spec.Labels \"after\"}}", "svc"); strings.TrimSpace(out) != "freeze" {
		t.Errorf("the thawed manager reads label %q, want the write made while it was frozen", out)
	}
}

// A manager leaves only with --force, as with Docker; once it has, it is out
// of Raft (not only Down in the node list), and the two left go on.
func TestMultiNodeManagerLeave(t *testing.T) {
	t.Parallel()
	lab := multiSwarmLab(t, 3)
	n1, n3 := lab.Nodes[0], lab.Nodes[2]
	out, err := try(n3, "swarm", "leave")
	if err == nil || !strings.Contains(out, "You are attempting to leave the swarm on a node that is participating as a manager.") {
		t.Fatalf("a manager's leave without --force: %v %q", err, out)
	}
	n3.MustDocker("swarm", "leave", "--force")
	waitNodeStatus(t, n1, "node3", "Down", 30*time.Second)
	if got := strings.TrimSpace(n1.MustDocker("info", "--format", "{{len .Swarm.RemoteManagers}}")); got != "2" {
		t.Errorf("raft members after a manager left: %s, want 2", got)
	}
	n1.MustDocker("service", "create", "-d", "--name", "after", "--replicas", "0", "busybox", "sleep", "1000")
}
