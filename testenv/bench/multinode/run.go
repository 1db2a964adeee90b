package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// config is what `multinode run` is told.
type config struct {
	shoal, cli, image   string
	log, daemonLogs     string
	engines             []string
	failoverRuns        int
	lossRuns, joinRuns  int
	silentRuns          int
	memTasks, lossTasks int
	idle, budget        time.Duration
	writeEvery          time.Duration
	writeTimeout        time.Duration
	// only lists the measures to make (empty: all).
	only               []string
	netRuns, netSecs   int
	pingCount          int
	vipRuns, stackRuns int
}

// measures are the names -only takes, in the order they are made.
var measures = []string{"net", "vip", "stack", "join", "memory", "loss", "loss-silent", "failover", "failover-silent", "idle"}

func runCommand(args []string) error {
	var c config
	var engines string
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&c.shoal, "shoal", "bin/shoal", "the shoal binary")
	fs.StringVar(&c.cli, "cli", "docker", "the docker CLI that drives both engines")
	fs.StringVar(&c.image, "image", "", "busybox image archive (testenv/bench/mkimage.sh makes one)")
	fs.StringVar(&c.log, "log", "", "append the raw figures to this file (stdout when empty)")
	fs.StringVar(&c.daemonLogs, "daemon-logs", "", "append the nodes' daemon logs to PREFIX-<engine>.log")
	fs.StringVar(&engines, "engines", "shoal,docker", "engines to measure")
	fs.IntVar(&c.failoverRuns, "failover-runs", 5, "leader failovers per engine")
	fs.IntVar(&c.lossRuns, "loss-runs", 3, "worker losses per engine")
	fs.IntVar(&c.joinRuns, "join-runs", 5, "joins per engine")
	fs.IntVar(&c.silentRuns, "silent-runs", 3, "worker losses and leader failovers per engine where the node goes silent (cut from the network, then crashed)")
	fs.IntVar(&c.memTasks, "mem-tasks", 100, "tasks on the swarm while memory is measured")
	fs.IntVar(&c.lossTasks, "loss-tasks", 10, "replicas of the service whose worker dies")
	fs.DurationVar(&c.idle, "idle", 10*time.Minute, "idle window in which leader elections are counted (0: skip)")
	fs.DurationVar(&c.budget, "budget", 25*time.Minute, "after this long (setup included, idle window not) the remaining runs are skipped; each measure keeps its first run")
	fs.DurationVar(&c.writeEvery, "write-every", 50*time.Millisecond, "the failover client starts a write this often (or when the previous one ends, if later)")
	fs.DurationVar(&c.writeTimeout, "write-timeout", 30*time.Second, "the failover client gives up on a request after this long")
	var only string
	fs.StringVar(&only, "only", "", "comma-separated measures to make, of "+strings.Join(measures, ",")+" (empty: all)")
	fs.IntVar(&c.netRuns, "net-runs", 5, "throughput and round-trip runs per path")
	fs.IntVar(&c.netSecs, "net-secs", 4, "seconds of each throughput run")
	fs.IntVar(&c.pingCount, "ping-count", 2000, "round trips per latency run")
	fs.IntVar(&c.vipRuns, "vip-runs", 3, "VIP scale-up and kill runs per engine")
	fs.IntVar(&c.stackRuns, "stack-runs", 3, "stack deploys per engine")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.engines = strings.Split(engines, ",")
	if only != "" {
		c.only = strings.Split(only, ",")
		for _, m := range c.only {
			if !slices.Contains(measures, m) {
				return fmt.Errorf("-only: unknown measure %q (known: %s)", m, strings.Join(measures, ","))
			}
		}
	}
	if c.image == "" {
		return errors.New("need -image (bash testenv/bench/mkimage.sh busybox.tar)")
	}
	if os.Geteuid() != 0 {
		return errors.New("run as root: the labs need namespaces, mounts and cgroups")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rec, err := openRecorder(c.log)
	if err != nil {
		return err
	}
	defer rec.close()
	return run(ctx, c, rec)
}

// run measures every engine, and removes their labs whatever happens.
func run(ctx context.Context, c config, rec *recorder) (err error) {
	started := time.Now()
	deadline := started.Add(c.budget)
	rec.line("multi-start", "date="+started.UTC().Format("2006-01-02T15:04Z"), "load="+loadavg(),
		fmt.Sprintf("failover_runs=%d", c.failoverRuns), fmt.Sprintf("loss_runs=%d", c.lossRuns),
		fmt.Sprintf("join_runs=%d", c.joinRuns), fmt.Sprintf("silent_runs=%d", c.silentRuns), fmt.Sprintf("mem_tasks=%d", c.memTasks),
		fmt.Sprintf("loss_tasks=%d", c.lossTasks), fmt.Sprintf("idle_s=%.0f", c.idle.Seconds()),
		"write_every_ms="+ms(c.writeEvery), "write_timeout_ms="+ms(c.writeTimeout),
		"only="+orAll(c.only), fmt.Sprintf("net_runs=%d", c.netRuns), fmt.Sprintf("net_secs=%d", c.netSecs),
		fmt.Sprintf("ping_count=%d", c.pingCount), fmt.Sprintf("vip_runs=%d", c.vipRuns), fmt.Sprintf("stack_runs=%d", c.stackRuns))
	rec.line("multi-versions", versions(c))
	var engines []*engine
	host := snapshotHost()
	defer func() {
		for _, e := range engines {
			e.saveLogs(c.daemonLogs)
			if cerr := e.close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("remove the %s lab: %w", e.name, cerr))
			}
		}
		host.restore()
		rec.line("multi-end", "load="+loadavg(), fmt.Sprintf("elapsed_s=%.0f", time.Since(started).Seconds()))
	}()
	for _, name := range c.engines {
		rec.say("starting the %s lab (5 nodes)", name)
		e, err := startEngine(ctx, name, c.shoal, c.cli, c.image, 5)
		if err != nil {
			return fmt.Errorf("start the %s lab: %w", name, err)
		}
		engines = append(engines, e)
	}
	for _, e := range engines {
		rec.say("%s: a swarm of 3 managers and 2 workers", e.name)
		if err := e.setupSwarm(ctx, rec, 3); err != nil {
			return fmt.Errorf("%s: set up the swarm: %w", e.name, err)
		}
	}
	b := &bench{c: c, rec: rec, engines: engines, deadline: deadline}
	if b.wants("net") || b.wants("vip") {
		b.netPhase(ctx)
	}
	b.phase(ctx, "stack", c.stackRuns, b.stack)
	b.phase(ctx, "join", c.joinRuns, b.join)
	memRuns := 1
	if c.memTasks == 0 {
		memRuns = 0
	}
	b.phase(ctx, "memory", memRuns, func(ctx context.Context, e *engine, _ int) error { return b.memory(ctx, e) })
	b.phase(ctx, "loss", c.lossRuns, func(ctx context.Context, e *engine, run int) error { return b.loss(ctx, e, run, false) })
	b.phase(ctx, "loss-silent", c.silentRuns, func(ctx context.Context, e *engine, run int) error { return b.loss(ctx, e, run, true) })
	for _, e := range engines {
		if !e.broken() && (b.wants("failover") || b.wants("failover-silent")) {
			if _, err := e.docker(ctx, e.nodes[0], "service", "create", "-d", "-q", "--no-resolve-image",
				"--name", "fo", "--replicas", "0", "busybox", "sleep", "3600"); err != nil {
				e.fail(err)
			}
		}
	}
	b.phase(ctx, "failover", c.failoverRuns, func(ctx context.Context, e *engine, run int) error { return b.failover(ctx, e, run, false) })
	b.phase(ctx, "failover-silent", c.silentRuns, func(ctx context.Context, e *engine, run int) error { return b.failover(ctx, e, run, true) })
	if c.idle > 0 && ctx.Err() == nil && b.wants("idle") {
		b.idle(ctx, c.idle)
	}
	return ctx.Err()
}

// bench holds a run's engines and its budget.
type bench struct {
	c        config
	rec      *recorder
	engines  []*engine
	deadline time.Time
}

// phase runs a measure runs times on each engine, the engines taking turns run by
// run, so load from elsewhere falls on both alike. A failed run is recorded and
// the engine's swarm mended before its next run; an engine that cannot be mended
// sits out what is left. Past the deadline, only first runs are made.
func (b *bench) phase(ctx context.Context, name string, runs int, measure func(context.Context, *engine, int) error) {
	if !b.wants(name) {
		return
	}
	for run := 1; run <= runs; run++ {
		if ctx.Err() != nil {
			return
		}
		if run > 1 && time.Now().After(b.deadline) {
			b.rec.line("skipped", name, fmt.Sprintf("runs=%d-%d", run, runs), "reason=budget")
			return
		}
		for _, e := range b.engines {
			if e.broken() {
				b.rec.line(name, e.name, fmt.Sprintf("run=%d", run), "ms=FAIL", "reason=broken")
				continue
			}
			b.rec.say("%s: %s run %d/%d", e.name, name, run, runs)
			if err := measure(ctx, e, run); err != nil {
				if ctx.Err() != nil {
					return
				}
				b.rec.line(name, e.name, fmt.Sprintf("run=%d", run), "ms=FAIL")
				b.rec.note(e.name, name, run, err.Error())
				if err := e.mend(ctx); err != nil {
					e.fail(err)
					b.rec.note(e.name, name, run, "cannot mend the swarm: "+err.Error())
				}
			}
		}
	}
}

// wants says whether the measure is to be made (-only).
func (b *bench) wants(measure string) bool {
	return len(b.c.only) == 0 || slices.Contains(b.c.only, measure)
}

// versions describes both engines' software.
func versions(c config) string {
	out := func(name string, args ...string) string {
		b, err := exec.Command(name, args...).Output()
		if err != nil {
			return "unknown"
		}
		return strings.Join(strings.Fields(strings.SplitN(string(b), "\n", 2)[0]), "_")
	}
	return strings.Join([]string{
		"shoal=" + out(c.shoal, "version"),
		"dockerd=" + out("dockerd", "--version"),
		"containerd=" + out("containerd", "--version"),
		"runc=" + out("runc", "--version"),
		"cli=" + out(c.cli, "--version"),
	}, " ")
}

// orAll is the measures joined by commas, "all" when none are named.
func orAll(only []string) string {
	if len(only) == 0 {
		return "all"
	}
	return strings.Join(only, ",")
}

// loadavg is the 1, 5 and 15 minute load averages, comma separated.
func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ",")
}

// recorder writes raw figures, one line each, and reports progress on stderr.
type recorder struct {
	mu sync.Mutex
	f  *os.File
}

func openRecorder(path string) (*recorder, error) {
	if path == "" {
		return &recorder{f: os.Stdout}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &recorder{f: f}, nil
}

func (r *recorder) close() {
	if r.f != os.Stdout {
		r.f.Close()
	}
}

// line records one raw figure: space-separated fields.
func (r *recorder) line(fields ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.Join(fields, " ")
	fmt.Fprintln(r.f, s)
	if r.f != os.Stdout {
		fmt.Fprintln(os.Stderr, "  "+s)
	}
}

// note records free text about a run (an error, say): "note ENGINE MEASURE run=N text".
func (r *recorder) note(engine, measure string, run int, text string) {
	text = strings.Join(strings.Fields(text), " ")
	if len(text) > 400 {
		text = text[:400] + "..."
	}
	r.line("note", engine, measure, fmt.Sprintf("run=%d", run), text)
}

// say reports progress on stderr only.
func (r *recorder) say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "multinode: "+format+"\n", args...)
}
