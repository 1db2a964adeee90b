package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The section of docs/benchmarks.md that report writes, between these markers;
// the rest of the file (the single-node figures) is left as it is.
const (
	beginMarker = "<!-- multi-node:begin (testenv/bench/multinode writes this section) -->"
	endMarker   = "<!-- multi-node:end -->"
)

func reportCommand(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	logPath := fs.String("log", "", "the raw figures of `multinode run`")
	out := fs.String("out", "docs/benchmarks.md", "the Markdown file whose Multi-node section is (re)written")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *logPath == "" {
		return errors.New("need -log")
	}
	f, err := os.Open(*logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	recs, err := parseLog(f)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(*out)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// Each section is rewritten only when the log has figures of it.
	doc := string(old)
	if hasKind(recs, clusterKinds) || !hasKind(recs, netKinds) {
		doc = replaceSection(doc, renderSection(recs, filepath.Base(*logPath)))
	}
	if hasKind(recs, netKinds) {
		doc = placeNetSection(doc, renderNetSection(recs, filepath.Base(*logPath)))
	}
	return os.WriteFile(*out, []byte(doc), 0o644)
}

// replaceSection puts section between the markers in doc, or appends it.
func replaceSection(doc, section string) string {
	block := beginMarker + "\n" + section + endMarker + "\n"
	i := strings.Index(doc, beginMarker)
	j := strings.Index(doc, endMarker)
	if i >= 0 && j > i {
		return doc[:i] + block + doc[j+len(endMarker):]
	}
	if doc != "" && !strings.HasSuffix(doc, "\n\n") {
		doc = strings.TrimRight(doc, "\n") + "\n\n"
	}
	return doc + block
}

// record is one raw line: its kind, engine and key=value fields.
type record struct {
	kind, engine string
	kv           map[string]string
	text         string
}

func parseLog(r io.Reader) ([]record, error) {
	var recs []record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		rec := record{kind: f[0], kv: map[string]string{}, text: sc.Text()}
		rest := f[1:]
		if len(rest) > 0 && !strings.Contains(rest[0], "=") {
			rec.engine, rest = rest[0], rest[1:]
		}
		for _, kv := range rest {
			if k, v, ok := strings.Cut(kv, "="); ok {
				rec.kv[k] = v
			}
		}
		recs = append(recs, rec)
	}
	return recs, sc.Err()
}

// values lists a field of every record of kind and engine that matches, as
// numbers; runs whose field is not a number (FAIL) are counted apart.
func values(recs []record, kind, engine, field string, match func(record) bool) (nums []float64, failed int) {
	for _, r := range recs {
		if r.kind != kind || r.engine != engine || (match != nil && !match(r)) {
			continue
		}
		v, ok := r.kv[field]
		if !ok {
			continue
		}
		if x, err := strconv.ParseFloat(v, 64); err == nil {
			nums = append(nums, x)
		} else {
			failed++
		}
	}
	return nums, failed
}

// median of the numbers, NaN when there are none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// num formats a figure with the given decimals, "n/a" for NaN.
func num(x float64, decimals int) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	return strconv.FormatFloat(x, 'f', decimals, 64)
}

// ratio is docker/shoal with one decimal, or n/a.
func ratio(docker, shoal float64) string {
	if math.IsNaN(docker) || math.IsNaN(shoal) || shoal <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", docker/shoal)
}

// verdict is PASS or FAIL, n/a when a figure is missing.
func verdict(ok bool, figures ...float64) string {
	for _, f := range figures {
		if math.IsNaN(f) {
			return "n/a"
		}
	}
	if ok {
		return "**PASS**"
	}
	return "**FAIL**"
}

// list is the runs' figures, comma separated, with the failed runs counted.
func list(xs []float64, failed int, decimals int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = num(x, decimals)
	}
	s := strings.Join(parts, ", ")
	if failed > 0 {
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("%d failed", failed)
	}
	if s == "" {
		return "none"
	}
	return s
}

// memFigure is a node's median memory (MiB) over its samples, and its tasks.
type memFigure struct {
	rss, pss, uss float64
	tasks, node   string
	procs         string
}

// memOf reads the samples of the engine's node whose role matches.
func memOf(recs []record, engine, role string) memFigure {
	node := ""
	for _, r := range recs {
		if r.kind == "mem" && r.engine == engine && r.kv["role"] == role {
			if node == "" || r.kv["node"] < node {
				node = r.kv["node"]
			}
		}
	}
	f := memFigure{rss: math.NaN(), pss: math.NaN(), uss: math.NaN(), node: node}
	if node == "" {
		return f
	}
	of := func(r record) bool { return r.kv["node"] == node }
	mib := func(field string) float64 {
		xs, _ := values(recs, "mem", engine, field, of)
		return median(xs) / 1024
	}
	f.rss, f.pss, f.uss = mib("rss_kb"), mib("pss_kb"), mib("uss_kb")
	for _, r := range recs {
		if r.kind == "mem" && r.engine == engine && of(r) {
			f.tasks = r.kv["tasks"]
		}
		if r.kind == "mem-procs" && r.engine == engine && of(r) {
			f.procs = r.kv["procs"]
		}
	}
	return f
}

// field is the value of key in the first record of kind (and engine, if set).
func field(recs []record, kind, engine, key string) string {
	for _, r := range recs {
		if r.kind == kind && (engine == "" || r.engine == engine) {
			return r.kv[key]
		}
	}
	return ""
}

func renderSection(recs []record, logName string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	med := func(kind, engine, key string) float64 {
		xs, _ := values(recs, kind, engine, key, nil)
		return median(xs)
	}
	runs := func(kind, engine, key string, decimals int) string {
		xs, failed := values(recs, kind, engine, key, nil)
		return list(xs, failed, decimals)
	}
	start := map[string]string{}
	for _, r := range recs {
		if r.kind == "multi-start" {
			start = r.kv
		}
	}
	vers := map[string]string{}
	for _, r := range recs {
		if r.kind == "multi-versions" {
			vers = r.kv
		}
	}
	und := func(s string) string { return strings.ReplaceAll(s, "_", " ") }

	p("## Multi-node: five-node swarms, shoal vs Docker\n\n")
	p("Written by `make bench` (`testenv/bench/multinode`, after the single-node measures); raw figures in\n")
	p("`docs/%s` (not committed). Figures are medians of the runs listed under \"All runs\".\n\n", logName)
	p("- date: %s; load average (1, 5, 15 min) before / after: %s / %s\n", start["date"],
		und(strings.ReplaceAll(start["load"], ",", " ")), strings.ReplaceAll(field(recs, "multi-end", "", "load"), ",", " "))
	p("- shoal: %s; Docker: %s, %s, %s; docker CLI %s\n", und(vers["shoal"]), und(vers["dockerd"]), und(vers["containerd"]), und(vers["runc"]), und(vers["cli"]))
	p("- runs per engine: failover %s, worker loss %s, each silent %s, join %s; memory with %s tasks; idle window %s s; took %s s in all\n\n",
		start["failover_runs"], start["loss_runs"], start["silent_runs"], start["join_runs"], start["mem_tasks"], start["idle_s"],
		field(recs, "multi-end", "", "elapsed_s"))

	foS, foD := med("failover", "shoal", "ms"), med("failover", "docker", "ms")
	erS, erD := med("failover", "shoal", "errors"), med("failover", "docker", "errors")
	nlS, nlD := med("failover", "shoal", "leader_ms"), med("failover", "docker", "leader_ms")
	loS, loD := med("loss", "shoal", "ms"), med("loss", "docker", "ms")
	dnS, dnD := med("loss", "shoal", "down_ms"), med("loss", "docker", "down_ms")
	joS, joD := med("join", "shoal", "ms"), med("join", "docker", "ms")
	jcS, jcD := med("join", "shoal", "cli_ms"), med("join", "docker", "cli_ms")
	mcS, mcD := med("mem-create", "shoal", "ms"), med("mem-create", "docker", "ms")
	mrS, mrD := med("mem-remove", "shoal", "ms"), med("mem-remove", "docker", "ms")
	lostS, _ := values(recs, "failover", "shoal", "lost", nil)
	lostD, _ := values(recs, "failover", "docker", "lost", nil)
	lsilS, _ := values(recs, "failover-silent", "shoal", "lost", nil)
	lsilD, _ := values(recs, "failover-silent", "docker", "lost", nil)
	lostS, lostD = append(lostS, lsilS...), append(lostD, lsilD...)
	sum := func(xs []float64) float64 {
		if len(xs) == 0 {
			return math.NaN()
		}
		t := 0.0
		for _, x := range xs {
			t += x
		}
		return t
	}
	mgrS, mgrD := memOf(recs, "shoal", "leader"), memOf(recs, "docker", "leader")
	wrkS, wrkD := memOf(recs, "shoal", "worker"), memOf(recs, "docker", "worker")
	idS, idD := idleOf(recs, "shoal"), idleOf(recs, "docker")

	p("| measure | shoal | Docker | Docker / shoal | target | result |\n")
	p("| --- | ---: | ---: | ---: | --- | --- |\n")
	p("| leader failover: leader's daemon SIGKILLed to the first write acknowledged through a surviving manager (ms) | %s | %s | %s | shoal ≤ 1500 ms | %s |\n",
		num(foS, 1), num(foD, 1), ratio(foD, foS), verdict(foS <= 1500, foS))
	p("| ... errors the writing client saw meanwhile (median per run) | %s | %s | | | |\n", num(erS, 0), num(erD, 0))
	p("| ... the new leader shown by the surviving manager's `node ls` (ms) | %s | %s | %s | | |\n", num(nlS, 1), num(nlD, 1), ratio(nlD, nlS))
	p("| ... acknowledged writes lost, all runs | %s | %s | | none | %s |\n", num(sum(lostS), 0), num(sum(lostD), 0),
		verdict(sum(lostS) == 0 && sum(lostD) == 0, sum(lostS), sum(lostD)))
	fsS, fsD := med("failover-silent", "shoal", "ms"), med("failover-silent", "docker", "ms")
	p("| leader failover, the leader's machine silent (cut off, then crashed) to the first write acknowledged (ms) | %s | %s | %s | | |\n",
		num(fsS, 1), num(fsD, 1), ratio(fsD, fsS))
	p("| ... errors the writing client saw meanwhile (median per run) | %s | %s | | | |\n",
		num(med("failover-silent", "shoal", "errors"), 0), num(med("failover-silent", "docker", "errors"), 0))
	p("| worker loss: a worker crashed (daemon and containers) to all %s replicas running on live nodes (ms) | %s | %s | %s | shoal ≤ 5000 ms | %s |\n",
		orDash(start["loss_tasks"]), num(loS, 1), num(loD, 1), ratio(loD, loS), verdict(loS <= 5000, loS))
	p("| ... the worker shown `Down` (ms) | %s | %s | %s | | |\n", num(dnS, 1), num(dnD, 1), ratio(dnD, dnS))
	lsS, lsD := med("loss-silent", "shoal", "ms"), med("loss-silent", "docker", "ms")
	p("| worker loss, the worker's machine silent (cut off, then crashed) to all replicas running on live nodes (ms) | %s | %s | %s | | |\n",
		num(lsS, 1), num(lsD, 1), ratio(lsD, lsS))
	p("| ... the worker shown `Down` (ms) | %s | %s | %s | | |\n",
		num(med("loss-silent", "shoal", "down_ms"), 1), num(med("loss-silent", "docker", "down_ms"), 1),
		ratio(med("loss-silent", "docker", "down_ms"), med("loss-silent", "shoal", "down_ms")))
	p("| join: `docker swarm join` on a fresh node to `Ready` in a manager's `node ls` (ms) | %s | %s | %s | shoal ≤ 1000 ms | %s |\n",
		num(joS, 1), num(joD, 1), ratio(joD, joS), verdict(joS <= 1000, joS))
	p("| ... the join command returns (ms) | %s | %s | %s | | |\n", num(jcS, 1), num(jcD, 1), ratio(jcD, jcS))
	memRow := func(what string, s, d memFigure, get func(memFigure) float64, target bool) {
		t, v := "", ""
		if target {
			t, v = "shoal ≤ 1/5 of Docker", verdict(get(s)*5 <= get(d), get(s), get(d))
		}
		p("| %s (MiB) | %s | %s | %s | %s | %s |\n", what, num(get(s), 1), num(get(d), 1), ratio(get(d), get(s)), t, v)
	}
	rss := func(f memFigure) float64 { return f.rss }
	pss := func(f memFigure) float64 { return f.pss }
	uss := func(f memFigure) float64 { return f.uss }
	mgr := fmt.Sprintf("memory of the leader manager (%s / %s tasks on it), %s tasks on the swarm", orDash(mgrS.tasks), orDash(mgrD.tasks), orDash(start["mem_tasks"]))
	wrk := fmt.Sprintf("memory of a worker (%s / %s tasks on it)", orDash(wrkS.tasks), orDash(wrkD.tasks))
	memRow(mgr+": RSS sum", mgrS, mgrD, rss, true)
	memRow("... PSS sum", mgrS, mgrD, pss, true)
	memRow("... USS (private) sum", mgrS, mgrD, uss, false)
	memRow(wrk+": RSS sum", wrkS, wrkD, rss, true)
	memRow("... PSS sum", wrkS, wrkD, pss, true)
	memRow("... USS (private) sum", wrkS, wrkD, uss, false)
	p("| %s tasks on 5 nodes: `service create` to all running (ms) | %s | %s | %s | | |\n", orDash(start["mem_tasks"]), num(mcS, 1), num(mcD, 1), ratio(mcD, mcS))
	p("| ... `service rm` to no task container on any node (ms) | %s | %s | %s | | |\n", num(mrS, 1), num(mrD, 1), ratio(mrD, mrS))
	p("| idle %s s: leader changes seen in `node ls` (polled every second on each manager) | %s | %s | | shoal: none | %s |\n",
		orDash(start["idle_s"]), idS.changes, idD.changes, idleVerdict(idS))
	p("| ... elections logged by the managers (won / started) | %s | %s | | | |\n", idS.logged, idD.logged)
	p("\n")

	p("### How it is measured\n\n")
	b.WriteString(`- Each engine is a swarm of five nodes in a testenv lab of its own (` + "`testenv.StartLab`" + `): node1..node5 at
  10.99.0.1..5, each in network and UTS namespaces of its own, all on one bridge in a switch namespace;
  nothing reaches the host's network. node1 inits the swarm (` + "`--advertise-addr 10.99.0.1`" + `), node2 and
  node3 join as managers, node4 and node5 as workers (` + "`--advertise-addr`" + ` their own address). Both labs run
  at the same time and the runs alternate shoal, Docker, shoal, ..., so load from elsewhere falls on both alike.
- shoal: the static ` + "`shoal daemon`" + ` per node (log level info). Docker: one dockerd per node, which starts its own
  containerd (root, state and socket under the node's data and exec roots), one containerd-shim-runc-v2 per
  container; per node its own ` + "`--data-root`, `--exec-root`" + `, API socket, ` + "`--pidfile`" + ` and
  ` + "`--cgroup-parent`" + `, ` + "`--iptables=false --ip-masq=false --userland-proxy=false`" + ` (the bridge and
  overlay setup happen inside the node's namespace).
- The busybox image (` + "`testenv/bench/mkimage.sh`" + `) is ` + "`docker load`" + `ed on every node of both engines, also for shoal,
  whose nodes could fetch it from a peer, so both measure the same thing. Services run ` + "`busybox sleep 3600`" + `
  with ` + "`--no-resolve-image --stop-signal SIGKILL`" + ` (as in the single-node measures).
- Timings are read from the engines' API sockets by the bench program polling (every 10 to 50 ms), not
  from the CLI, so the observer's cost stays out of the figures.
- **Leader failover**: a service with no replicas; a client writes through a manager that is not the leader,
  as ` + "`docker service update --label-add k=$i`" + ` does (GET the service, POST the update at its version), a
  new write every ` + orDash(start["write_every_ms"]) + ` ms or as soon as the previous one returns (30 s timeout). Once
  three writes went through and a random 0 to 100 ms later, the leader's daemon is SIGKILLed (for Docker, dockerd, whose containerd dies with
  it); its machine stays up, so its connections are reset, not silent. The figure runs from the kill to
  the acknowledgement of the first write that started after it; the errors are the failed writes in
  between, including a write in flight at the kill (listed under "All runs": whether one was, and how it
  ended). Then the label must be the last acknowledged value or a later one (otherwise a write is lost).
  The killed daemon is restarted and the swarm must be healthy again (three reachable managers, five ready
  nodes) before the next run, which kills whichever manager leads then.
- **Worker loss**: a service of ` + orDash(start["loss_tasks"]) + ` replicas, spread over the five nodes by both schedulers;
  then everything of one worker (node4, node5 by turns) is SIGKILLed at once, as when the machine crashes:
  the daemon, every other process in its namespaces (Docker: containerd, the shims) and its containers
  (by cgroup) (` + "`testenv.Machine.Crash`" + `). The kernel, shared with the host, still resets the node's
  connections, which lets both engines see the loss sooner than a powered-off machine would. The figure
  runs until node1's API lists all replicas running on the other nodes. The worker is then restarted and
  the service removed.
- **Silent** failover and worker loss: the same, but the node is first cut from the switch (testenv's
  ` + "`Partition`" + `: its frames are dropped, both ways) and then crashed, as a machine that loses power or its
  network: the others see no reset, only silence, and must notice it by their timeouts. The node is
  healed and restarted afterwards.
- **Join**: node5 is crashed, removed (` + "`docker node rm --force`" + `) and wiped: a fresh machine with the same name and
  address. The figure runs from the start of its ` + "`docker swarm join --token <worker token> --advertise-addr\n  10.99.0.5 10.99.0.1:2377`" + ` to node1's API listing the new node ` + "`ready`" + `.
- **Memory**: a service of ` + orDash(start["mem_tasks"]) + ` replicas on the swarm (about a fifth on each node); five seconds
  after all run, five samples a second apart of the sums of VmRSS, Pss and Private_Clean + Private_Dirty
  (USS) over a node's own processes: every process in the node's namespaces that is not in its
  containers' cgroups (` + "`testenv.Machine.Processes`" + `). The manager measured is the leader. All five nodes
  run the same binaries, which share their text pages across nodes: PSS splits those over every node's
  processes, so it understates what one machine would hold, for both engines; RSS counts them once per
  process (20 shims count the shim's pages 20 times); USS, the pages no other process maps, is the
  lower bound.
- **Idle**: after the runs above, both swarms idle at once (no service) for the window; each manager's API is
  asked for the leader every second. A change is the leader they agree on becoming another. Elections
  are also counted in the managers' logs: shoal's "leading the swarm: manager loops start" (info, once per
  term a manager leads; hashicorp/raft's "starting election" is at debug level, not logged here, so shoal
  shows no count of started elections: one that unseats the leader ends in a new "leading" line), Docker's
  etcd/raft "became leader at term" and "is starting a new election at term" (info). The failover runs
  check that the patterns match: each failover must log at least one won election, or the idle verdict is
  n/a. A PASS needs no leader change, no poll without an agreed leader and no election logged.
- Failed runs are listed and left out of the medians. Past the time budget, only the first run of each
  measure is made (and the skipped ones are said in the raw log).
`)
	p("\n### All runs\n\n")
	p("| run | shoal | Docker |\n| --- | --- | --- |\n")
	p("| failover to first write (ms) | %s | %s |\n", runs("failover", "shoal", "ms", 1), runs("failover", "docker", "ms", 1))
	p("| failover: client errors | %s | %s |\n", runs("failover", "shoal", "errors", 0), runs("failover", "docker", "errors", 0))
	p("| failover: a write in flight at the kill (failed, ok, none) | %s | %s |\n", texts(recs, "failover", "shoal", "inflight"), texts(recs, "failover", "docker", "inflight"))
	p("| failover: one write before the kill, median (ms) | %s | %s |\n", runs("failover", "shoal", "write_ms", 1), runs("failover", "docker", "write_ms", 1))
	p("| failover: new leader seen (ms) | %s | %s |\n", runs("failover", "shoal", "leader_ms", 1), runs("failover", "docker", "leader_ms", 1))
	p("| failover: elections logged (won) | %s | %s |\n", runs("failover", "shoal", "elections_logged", 0), runs("failover", "docker", "elections_logged", 0))
	p("| failover, silent leader, to first write (ms) | %s | %s |\n", runs("failover-silent", "shoal", "ms", 1), runs("failover-silent", "docker", "ms", 1))
	p("| failover, silent leader: client errors | %s | %s |\n", runs("failover-silent", "shoal", "errors", 0), runs("failover-silent", "docker", "errors", 0))
	p("| failover, silent leader: a write in flight at the cut | %s | %s |\n", texts(recs, "failover-silent", "shoal", "inflight"), texts(recs, "failover-silent", "docker", "inflight"))
	p("| failover, silent leader: new leader seen (ms) | %s | %s |\n", runs("failover-silent", "shoal", "leader_ms", 1), runs("failover-silent", "docker", "leader_ms", 1))
	p("| worker loss to replicas running (ms) | %s | %s |\n", runs("loss", "shoal", "ms", 1), runs("loss", "docker", "ms", 1))
	p("| worker loss: shown Down (ms) | %s | %s |\n", runs("loss", "shoal", "down_ms", 1), runs("loss", "docker", "down_ms", 1))
	p("| worker loss: tasks on the lost worker | %s | %s |\n", runs("loss", "shoal", "moved", 0), runs("loss", "docker", "moved", 0))
	p("| worker loss, silent worker, to replicas running (ms) | %s | %s |\n", runs("loss-silent", "shoal", "ms", 1), runs("loss-silent", "docker", "ms", 1))
	p("| worker loss, silent worker: shown Down (ms) | %s | %s |\n", runs("loss-silent", "shoal", "down_ms", 1), runs("loss-silent", "docker", "down_ms", 1))
	p("| join to Ready (ms) | %s | %s |\n", runs("join", "shoal", "ms", 1), runs("join", "docker", "ms", 1))
	p("| join command (ms) | %s | %s |\n", runs("join", "shoal", "cli_ms", 1), runs("join", "docker", "cli_ms", 1))
	p("| idle: polls / leader changes / polls without an agreed leader / elections logged | %s | %s |\n", idS.detail, idD.detail)
	p("\nProcesses measured: leader manager: shoal %s, Docker %s; worker: shoal %s, Docker %s.\n",
		orDash(mgrS.procs), orDash(mgrD.procs), orDash(wrkS.procs), orDash(wrkD.procs))
	var notes []string
	for _, r := range recs {
		if r.kind == "note" || r.kind == "skipped" {
			notes = append(notes, "- `"+strings.ReplaceAll(r.text, "`", "'")+"`")
		}
	}
	if len(notes) > 0 {
		p("\nNotes from the raw log (errors the clients saw, failed or skipped runs):\n\n%s\n", strings.Join(notes, "\n"))
	}
	return b.String()
}

// texts lists a field of the engine's records of kind, comma separated.
func texts(recs []record, kind, engine, key string) string {
	var out []string
	for _, r := range recs {
		if r.kind == kind && r.engine == engine && r.kv[key] != "" {
			out = append(out, r.kv[key])
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// idleFigures is an engine's idle result, formatted.
type idleFigures struct {
	changes, logged, detail string
	// ok: the window was watched, no change was seen and no election logged,
	// with log patterns that the failover runs showed to match.
	ok, known bool
}

func idleOf(recs []record, engine string) idleFigures {
	f := idleFigures{changes: "n/a", logged: "n/a", detail: "none"}
	var r *record
	for i := range recs {
		if recs[i].kind == "idle" && recs[i].engine == engine {
			r = &recs[i]
		}
	}
	if r == nil || r.kv["polls"] == "" {
		if r != nil {
			f.detail = "failed"
		}
		return f
	}
	// The log patterns are trusted only if the failovers logged their elections.
	won, _ := values(recs, "failover", engine, "elections_logged", nil)
	patternsSeen := len(won) > 0
	for _, w := range won {
		patternsSeen = patternsSeen && w >= 1
	}
	f.changes = r.kv["changes"]
	f.logged = r.kv["elections_logged"] + " / " + r.kv["candidacies_logged"]
	if !patternsSeen {
		f.logged += " (patterns unchecked)"
	}
	f.detail = fmt.Sprintf("%s / %s / %s / %s won, %s started", r.kv["polls"], r.kv["changes"], r.kv["leaderless"],
		r.kv["elections_logged"], r.kv["candidacies_logged"])
	polls, _ := strconv.Atoi(r.kv["polls"])
	window, _ := strconv.ParseFloat(r.kv["window_s"], 64)
	f.known = patternsSeen && float64(polls) >= 0.9*window && window > 0
	tried := r.kv["candidacies_logged"]
	f.ok = r.kv["changes"] == "0" && r.kv["leaderless"] == "0" && r.kv["elections_logged"] == "0" && (tried == "0" || tried == "n/a")
	return f
}

func idleVerdict(f idleFigures) string {
	if !f.known {
		return "n/a"
	}
	if f.ok {
		return "**PASS**"
	}
	return "**FAIL**"
}
