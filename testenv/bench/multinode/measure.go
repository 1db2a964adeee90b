package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-project/shoal/testenv"
)

// join times a fresh node joining as a worker: node5 is crashed, removed from
// the swarm and wiped (a new machine, same name and address), then `docker swarm
// join` starts on it; the figure runs from the CLI's start until node1's API
// lists the new node as ready.
func (b *bench) join(ctx context.Context, e *engine, run int) error {
	n1, m := e.nodes[0], e.nodes[len(e.nodes)-1]
	a := newAPI(n1.Socket, 5*time.Second)
	old, err := a.nodes(ctx)
	if err != nil {
		return err
	}
	oldIDs := map[string]bool{}
	for _, n := range old {
		if n.Description.Hostname == m.Name {
			oldIDs[n.ID] = true
		}
	}
	if err := m.Crash(ctx); err != nil {
		return err
	}
	for id := range oldIDs {
		if _, err := e.docker(ctx, n1, "node", "rm", "--force", id); err != nil {
			return err
		}
	}
	if err := pollUntil(ctx, time.Minute, 100*time.Millisecond, func() (bool, error) {
		nodes, err := a.nodes(ctx)
		if err != nil {
			return false, err
		}
		for _, n := range nodes {
			if oldIDs[n.ID] {
				return false, fmt.Errorf("%s still listed", n.ID)
			}
		}
		return true, nil
	}); err != nil {
		return fmt.Errorf("remove the old %s: %w", m.Name, err)
	}
	if err := m.Reset(ctx); err != nil {
		return err
	}
	type result struct {
		out string
		err error
		end time.Time
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		out, err := e.docker(ctx, m, e.joinArgs(m, false)...)
		done <- result{out, err, time.Now()}
	}()
	var readyAt time.Time
	var id string
	err = pollUntil(ctx, time.Minute, 10*time.Millisecond, func() (bool, error) {
		nodes, err := a.nodes(ctx)
		if err != nil {
			return false, err
		}
		for _, n := range nodes {
			if n.Description.Hostname == m.Name && !oldIDs[n.ID] && n.Status.State == "ready" {
				readyAt, id = time.Now(), n.ID
				return true, nil
			}
		}
		return false, nil
	})
	cli := <-done
	if cli.err != nil {
		return fmt.Errorf("join: %w", cli.err)
	}
	if err != nil {
		return fmt.Errorf("%s not ready on node1: %w", m.Name, err)
	}
	b.rec.line("join", e.name, fmt.Sprintf("run=%d", run), "ms="+ms(readyAt.Sub(start)),
		"cli_ms="+ms(cli.end.Sub(start)), "node="+m.Name, "id="+id)
	if err := e.loadImage(ctx, m); err != nil {
		return err
	}
	return e.waitHealthy(ctx, n1, len(e.nodes), 3, 2*time.Minute)
}

// memory runs memTasks tasks on the swarm and samples, five times a second
// apart, the memory of every node's own processes (testenv's Processes: the
// daemon and what it started in the node's namespaces, not the containers).
func (b *bench) memory(ctx context.Context, e *engine) error {
	n1 := e.nodes[0]
	a := newAPI(n1.Socket, 10*time.Second)
	n := b.c.memTasks
	start := time.Now()
	if _, err := e.docker(ctx, n1, "service", "create", "-d", "-q", "--no-resolve-image", "--stop-signal", "SIGKILL",
		"--name", "mem", "--replicas", strconv.Itoa(n), "busybox", "sleep", "3600"); err != nil {
		return err
	}
	var tasks []taskInfo
	if err := pollUntil(ctx, 5*time.Minute, 100*time.Millisecond, func() (bool, error) {
		var err error
		tasks, err = a.runningTasks(ctx, "mem")
		return countRunning(tasks, "") == n, err
	}); err != nil {
		return fmt.Errorf("%d tasks running: %w", countRunning(tasks, ""), err)
	}
	b.rec.line("mem-create", e.name, fmt.Sprintf("tasks=%d", n), "ms="+ms(time.Since(start)))
	if err := sleep(ctx, 5*time.Second); err != nil { // let the start-up garbage go
		return err
	}
	byNode, err := e.nodeFacts(ctx, a)
	if err != nil {
		return err
	}
	tasks, err = a.runningTasks(ctx, "mem")
	if err != nil {
		return err
	}
	perNode := map[string]int{}
	for _, t := range tasks {
		if t.Status.State == "running" {
			perNode[byNode[t.NodeID].host]++
		}
	}
	roles := map[string]string{}
	for _, f := range byNode {
		roles[f.host] = f.role
	}
	for sample := 1; sample <= 5; sample++ {
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
		for _, m := range e.nodes {
			u := usage(m.Processes())
			b.rec.line("mem", e.name, "node="+m.Name, "role="+roles[m.Name], fmt.Sprintf("tasks=%d", perNode[m.Name]),
				fmt.Sprintf("sample=%d", sample), fmt.Sprintf("rss_kb=%d", u.rss), fmt.Sprintf("pss_kb=%d", u.pss),
				fmt.Sprintf("uss_kb=%d", u.uss), fmt.Sprintf("procs=%d", u.procs))
		}
	}
	for _, m := range e.nodes {
		b.rec.line("mem-procs", e.name, "node="+m.Name, processNames(m.Processes()))
	}
	start = time.Now()
	if err := e.removeService(ctx, n1, "mem", 5*time.Minute); err != nil {
		return err
	}
	b.rec.line("mem-remove", e.name, fmt.Sprintf("tasks=%d", n), "ms="+ms(time.Since(start)))
	return nil
}

// nodeFact is a node's hostname and role ("leader", "manager" or "worker").
type nodeFact struct{ host, role string }

// nodeFacts maps node IDs to hostnames and roles as node m's API tells them.
func (e *engine) nodeFacts(ctx context.Context, a *api) (map[string]nodeFact, error) {
	nodes, err := a.nodes(ctx)
	if err != nil {
		return nil, err
	}
	facts := map[string]nodeFact{}
	for _, n := range nodes {
		role := "worker"
		if n.ManagerStatus != nil {
			role = "manager"
			if n.ManagerStatus.Leader {
				role = "leader"
			}
		}
		facts[n.ID] = nodeFact{n.Description.Hostname, role}
	}
	return facts, nil
}

// loss times the loss of a worker: a service of lossTasks replicas spread over
// the five nodes, then everything on one worker (node4, then node5, ...) is
// killed at once (testenv's Crash: the daemon, its helpers and its containers);
// the figure runs until node1's API shows the service's lossTasks replicas
// running on the other nodes.
func (b *bench) loss(ctx context.Context, e *engine, run int, silent bool) error {
	n1 := e.nodes[0]
	victim := e.nodes[3+(run-1)%2]
	a := newAPI(n1.Socket, 5*time.Second)
	kind, name := "loss", fmt.Sprintf("loss%d", run)
	if silent {
		kind, name = "loss-silent", fmt.Sprintf("losssilent%d", run)
	}
	want := b.c.lossTasks
	if _, err := e.docker(ctx, n1, "service", "create", "-d", "-q", "--no-resolve-image", "--stop-signal", "SIGKILL",
		"--name", name, "--replicas", strconv.Itoa(want), "busybox", "sleep", "3600"); err != nil {
		return err
	}
	facts, err := e.nodeFacts(ctx, a)
	if err != nil {
		return err
	}
	victimID := ""
	for id, f := range facts {
		if f.host == victim.Name {
			victimID = id
		}
	}
	var tasks []taskInfo
	if err := pollUntil(ctx, 3*time.Minute, 100*time.Millisecond, func() (bool, error) {
		var err error
		tasks, err = a.runningTasks(ctx, name)
		return countRunning(tasks, "") == want, err
	}); err != nil {
		return fmt.Errorf("%d of %d tasks running: %w", countRunning(tasks, ""), want, err)
	}
	onVictim := countRunning(tasks, "") - countRunning(tasks, victimID)
	if onVictim == 0 {
		return fmt.Errorf("no task of %s on %s: %s", name, victim.Name, spread(tasks, facts))
	}
	if err := sleep(ctx, time.Second); err != nil {
		return err
	}
	start := time.Now()
	if err := b.die(ctx, e, victim, silent); err != nil {
		return err
	}
	var downAt time.Time
	err = pollUntil(ctx, 3*time.Minute, 50*time.Millisecond, func() (bool, error) {
		if downAt.IsZero() {
			var n nodeInfo
			if err := a.get(ctx, "/nodes/"+victimID, &n); err == nil && n.Status.State == "down" {
				downAt = time.Now()
			}
		}
		var err error
		tasks, err = a.runningTasks(ctx, name)
		return countRunning(tasks, victimID) >= want, err
	})
	took := time.Since(start)
	if err != nil {
		return fmt.Errorf("%d of %d tasks running elsewhere: %w", countRunning(tasks, victimID), want, err)
	}
	down := "n/a"
	if !downAt.IsZero() {
		down = ms(downAt.Sub(start))
	}
	b.rec.line(kind, e.name, fmt.Sprintf("run=%d", run), "ms="+ms(took), "down_ms="+down,
		"victim="+victim.Name, fmt.Sprintf("moved=%d", onVictim), "spread="+spread(tasks, facts))
	if err := b.revive(ctx, e, victim); err != nil {
		return err
	}
	if err := e.waitHealthy(ctx, n1, len(e.nodes), 3, 2*time.Minute); err != nil {
		return err
	}
	return e.removeService(ctx, n1, name, 3*time.Minute)
}

// die crashes node m: a crash of its processes (Crash), or with silent a
// power cut: the node is first cut from the switch, so that no reset or close
// of its connections reaches the others, then crashed.
func (b *bench) die(ctx context.Context, e *engine, m *testenv.Machine, silent bool) error {
	if silent {
		var others []*testenv.Machine
		for _, n := range e.nodes {
			if n != m {
				others = append(others, n)
			}
		}
		if err := e.lab.Partition(ctx, []*testenv.Machine{m}, others); err != nil {
			return err
		}
	}
	return m.Crash(ctx)
}

// revive reconnects a node that die cut off and starts its daemon again.
func (b *bench) revive(ctx context.Context, e *engine, m *testenv.Machine) error {
	if e.lab.Partitioned() != nil {
		if err := e.lab.Heal(ctx); err != nil {
			return err
		}
	}
	return m.Start(ctx)
}

// countRunning counts the tasks observed running, on any node but skip.
func countRunning(tasks []taskInfo, skip string) int {
	n := 0
	for _, t := range tasks {
		if t.Status.State == "running" && t.DesiredState == "running" && t.NodeID != skip {
			n++
		}
	}
	return n
}

// spread is "node1:2,node2:2,..." for the running tasks.
func spread(tasks []taskInfo, facts map[string]nodeFact) string {
	by := map[string]int{}
	for _, t := range tasks {
		if t.Status.State == "running" {
			by[facts[t.NodeID].host]++
		}
	}
	var parts []string
	for h, n := range by {
		parts = append(parts, fmt.Sprintf("%s:%d", h, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// attempt is one write of the failover client.
type attempt struct {
	i          int
	start, end time.Time
	err        error
}

// writer writes service fo's label k (k=1, k=2, ...) through one manager's API,
// as `docker service update --label-add k=$i fo` does (inspect, then update at
// that version), one write every `every` (or right after the previous one, when
// it took longer).
type writer struct {
	mu       sync.Mutex
	attempts []attempt
	stop     context.CancelFunc
	done     chan struct{}
}

func startWriter(ctx context.Context, sock string, every, timeout time.Duration) *writer {
	ctx, cancel := context.WithCancel(ctx)
	w := &writer{stop: cancel, done: make(chan struct{})}
	a := newAPI(sock, timeout)
	go func() {
		defer close(w.done)
		for i := 1; ctx.Err() == nil; i++ {
			start := time.Now()
			err := writeLabel(ctx, a, i)
			if ctx.Err() != nil {
				return // cut short by stop: neither success nor failure
			}
			w.mu.Lock()
			w.attempts = append(w.attempts, attempt{i, start, time.Now(), err})
			w.mu.Unlock()
			_ = sleep(ctx, time.Until(start.Add(every)))
		}
	}()
	return w
}

// writeLabel sets service fo's label k to i.
func writeLabel(ctx context.Context, a *api, i int) error {
	var svc struct {
		ID      string
		Version struct{ Index uint64 }
		Spec    map[string]json.RawMessage
	}
	if err := a.get(ctx, "/services/fo", &svc); err != nil {
		return err
	}
	labels := map[string]string{}
	if raw, ok := svc.Spec["Labels"]; ok {
		_ = json.Unmarshal(raw, &labels)
	}
	labels["k"] = strconv.Itoa(i)
	raw, _ := json.Marshal(labels)
	svc.Spec["Labels"] = raw
	return a.do(ctx, "POST", fmt.Sprintf("/services/%s/update?version=%d", svc.ID, svc.Version.Index), svc.Spec, nil)
}

// snapshot copies the attempts so far.
func (w *writer) snapshot() []attempt {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]attempt(nil), w.attempts...)
}

func (w *writer) close() {
	w.stop()
	<-w.done
}

// failover times a leader's death: a client writes through another manager, the
// leader's daemon is SIGKILLed (its machine and containers live on: a daemon
// crash), and the figure runs from the kill to the first acknowledged write that
// started after it. The killed daemon is then started again and the swarm left
// healthy.
func (b *bench) failover(ctx context.Context, e *engine, run int, silent bool) error {
	kind := "failover"
	if silent {
		kind = "failover-silent"
	}
	managers := e.nodes[:3]
	leader := ""
	for _, m := range managers {
		if l, err := e.leader(ctx, m); err == nil && l != "" {
			leader = l
			break
		}
	}
	if leader == "" {
		return errors.New("no leader before the kill")
	}
	victim := e.node(leader)
	var client *testenv.Machine
	for _, m := range managers {
		if m != victim {
			client = m
			break
		}
	}
	w := startWriter(ctx, client.Socket, b.c.writeEvery, b.c.writeTimeout)
	defer w.close()
	if err := pollUntil(ctx, 30*time.Second, 10*time.Millisecond, func() (bool, error) {
		ok := 0
		for _, at := range w.snapshot() {
			if at.err == nil {
				ok++
			}
		}
		return ok >= 3, nil
	}); err != nil {
		return fmt.Errorf("writes through %s before the kill: %w", client.Name, err)
	}
	// The kill falls at a random moment of the write cycle, not right after
	// the third acknowledgement (which would put it in the pause between
	// writes whenever writes are quicker than the pacing).
	if err := sleep(ctx, rand.N(100*time.Millisecond)); err != nil {
		return err
	}
	logMarks := e.logMarks(managers)
	// Watch the client's view of the leader meanwhile.
	var (
		newLeader   string
		newLeaderAt time.Time
		watchMu     sync.Mutex
	)
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		_ = pollUntil(watchCtx, 2*time.Minute, 50*time.Millisecond, func() (bool, error) {
			l, err := e.leader(watchCtx, client)
			if err == nil && l != "" && l != leader {
				watchMu.Lock()
				newLeader, newLeaderAt = l, time.Now()
				watchMu.Unlock()
				return true, nil
			}
			return false, err
		})
	}()
	start := time.Now()
	kill := victim.Kill
	if silent {
		kill = func(ctx context.Context) error { return b.die(ctx, e, victim, true) }
	}
	if err := kill(ctx); err != nil {
		stopWatch()
		return err
	}
	var first *attempt
	err := pollUntil(ctx, 2*time.Minute+b.c.writeTimeout, 5*time.Millisecond, func() (bool, error) {
		for _, at := range w.snapshot() {
			if at.err == nil && !at.start.Before(start) {
				first = &at
				return true, nil
			}
		}
		return false, nil
	})
	w.close()
	if err == nil {
		// Give the watch the time to see the new leader (reads on the
		// client may lag behind its writes), then stop it.
		select {
		case <-watchDone:
		case <-time.After(30 * time.Second):
		}
	}
	stopWatch()
	<-watchDone
	attempts := w.snapshot()
	errs, inflight := 0, "none"
	var msgs []string
	for _, at := range attempts {
		if at.end.Before(start) {
			continue
		}
		if at.start.Before(start) {
			inflight = "ok"
			if at.err != nil {
				inflight = "failed"
			}
		}
		if first != nil && at.start.After(first.start) {
			break
		}
		if at.err != nil {
			errs++
			if len(msgs) < 3 {
				msgs = append(msgs, at.err.Error())
			}
		}
	}
	if err != nil {
		return fmt.Errorf("no write acknowledged after the kill of %s (%d errors: %s): %w", leader, errs, strings.Join(msgs, " | "), err)
	}
	// Every acknowledged write holds: the label is the last acknowledged
	// value or a later one (a write cut short may have landed).
	lastAcked := 0
	for _, at := range attempts {
		if at.err == nil {
			lastAcked = at.i
		}
	}
	var svc struct {
		Spec struct{ Labels map[string]string }
	}
	if err := newAPI(client.Socket, 30*time.Second).get(ctx, "/services/fo", &svc); err != nil {
		return err
	}
	label, _ := strconv.Atoi(svc.Spec.Labels["k"])
	lost := 0
	if label < lastAcked {
		lost = 1
	}
	// How long a write took before the kill (the median), for scale.
	var before []float64
	for _, at := range attempts {
		if at.err == nil && at.end.Before(start) {
			before = append(before, float64(at.end.Sub(at.start).Microseconds())/1000)
		}
	}
	elections := e.elections(managers, logMarks)
	nl := "none"
	leaderMs := "n/a"
	if newLeader != "" {
		nl, leaderMs = newLeader, ms(newLeaderAt.Sub(start))
	}
	b.rec.line(kind, e.name, fmt.Sprintf("run=%d", run), "ms="+ms(first.end.Sub(start)),
		fmt.Sprintf("errors=%d", errs), "inflight="+inflight, "leader_ms="+leaderMs, "killed="+leader,
		"client="+client.Name, "new="+nl, "write_ms="+num(median(before), 1), fmt.Sprintf("writes=%d", len(attempts)), fmt.Sprintf("lost=%d", lost),
		fmt.Sprintf("elections_logged=%d", elections.won), elections.triedField())
	if len(msgs) > 0 {
		b.rec.note(e.name, kind, run, "client errors: "+strings.Join(msgs, " | "))
	}
	if err := b.revive(ctx, e, victim); err != nil {
		return err
	}
	if err := e.waitHealthy(ctx, client, len(e.nodes), 3, 3*time.Minute); err != nil {
		return err
	}
	return sleep(ctx, 2*time.Second)
}

// Log lines that tell of elections. shoal logs at info when a manager takes the
// lead (also the same manager again, in a new term); hashicorp/raft's "starting
// election" is at debug level, which the bench does not run at, so shoal's
// started elections are not counted (a started election that unseats a leader
// ends in a new "leading" line). Docker's swarmkit logs etcd/raft's "became
// leader" and "starting a new election" at info.
var electionPatterns = map[string]struct{ won, tried string }{
	"shoal":  {won: "leading the swarm: manager loops start"},
	"docker": {won: "became leader at term", tried: "is starting a new election at term"},
}

// logMarks notes how long each node's daemon log is, to read what comes after.
func (e *engine) logMarks(nodes []*testenv.Machine) map[string]int64 {
	marks := map[string]int64{}
	for _, m := range nodes {
		if st, err := os.Stat(filepath.Join(m.Dir, "daemon.log")); err == nil {
			marks[m.Name] = st.Size()
		}
	}
	return marks
}

// electionCount is how many times the logs tell a manager took the lead (won)
// and an election started (tried).
type electionCount struct{ won, tried int }

// elections counts the election lines the nodes logged after the marks.
func (e *engine) elections(nodes []*testenv.Machine, marks map[string]int64) electionCount {
	var c electionCount
	p := electionPatterns[e.name]
	for _, m := range nodes {
		data, err := os.ReadFile(filepath.Join(m.Dir, "daemon.log"))
		if err != nil || int64(len(data)) < marks[m.Name] {
			continue
		}
		text := string(data[marks[m.Name]:])
		c.won += strings.Count(text, p.won)
		if p.tried != "" {
			c.tried += strings.Count(text, p.tried)
		}
	}
	if p.tried == "" {
		c.tried = -1
	}
	return c
}

// triedField is "candidacies_logged=N", or n/a when the engine does not log them.
func (c electionCount) triedField() string {
	if c.tried < 0 {
		return "candidacies_logged=n/a"
	}
	return fmt.Sprintf("candidacies_logged=%d", c.tried)
}

// idle counts leader changes on the engines' idle swarms over the window, all
// engines at once: every second each manager's API is asked for the leader.
func (b *bench) idle(ctx context.Context, window time.Duration) {
	b.rec.say("idle swarms for %s", window)
	var wg sync.WaitGroup
	for _, e := range b.engines {
		if e.broken() {
			b.rec.line("idle", e.name, "changes=FAIL", "reason=broken")
			continue
		}
		wg.Go(func() {
			if err := b.idleOne(ctx, e, window); err != nil && ctx.Err() == nil {
				b.rec.line("idle", e.name, "changes=FAIL")
				b.rec.note(e.name, "idle", 1, err.Error())
			}
		})
	}
	wg.Wait()
}

func (b *bench) idleOne(ctx context.Context, e *engine, window time.Duration) error {
	managers := e.nodes[:3]
	if _, err := e.docker(ctx, managers[0], "service", "rm", "fo"); err != nil {
		return err
	}
	if err := e.waitHealthy(ctx, managers[0], len(e.nodes), 3, 2*time.Minute); err != nil {
		return err
	}
	marks := e.logMarks(managers)
	var (
		polls, changes, leaderless, split, errs int
		first, last                             string
		seen                                    = map[string]string{}
		viewChanges                             int
	)
	end := time.Now().Add(window)
	for time.Now().Before(end) {
		next := time.Now().Add(time.Second)
		polls++
		views := map[string]int{}
		answered := 0
		for _, m := range managers {
			l, err := e.leader(ctx, m)
			if err != nil {
				errs++
				continue
			}
			answered++
			views[l]++
			if prev, ok := seen[m.Name]; ok && prev != l {
				viewChanges++
			}
			seen[m.Name] = l
		}
		cur := ""
		switch {
		case len(views) > 1:
			split++
		case answered == 0:
		default:
			for l := range views {
				cur = l
			}
		}
		if cur == "" {
			leaderless++
		} else {
			if last != "" && cur != last {
				changes++
			}
			if first == "" {
				first = cur
			}
			last = cur
		}
		if err := sleep(ctx, time.Until(next)); err != nil {
			return err
		}
	}
	el := e.elections(managers, marks)
	b.rec.line("idle", e.name, fmt.Sprintf("window_s=%.0f", window.Seconds()), fmt.Sprintf("polls=%d", polls),
		fmt.Sprintf("changes=%d", changes), fmt.Sprintf("view_changes=%d", viewChanges),
		fmt.Sprintf("leaderless=%d", leaderless), fmt.Sprintf("split=%d", split), fmt.Sprintf("errors=%d", errs),
		fmt.Sprintf("elections_logged=%d", el.won), el.triedField(),
		"first="+orNone(first), "last="+orNone(last))
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// pollUntil calls cond every interval until it reports done, ctx ends or the
// timeout passes (then the error names cond's last error).
func pollUntil(ctx context.Context, timeout, every time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s (last error: %v)", timeout, last)
		}
		if err := sleep(ctx, every); err != nil {
			return err
		}
	}
}
