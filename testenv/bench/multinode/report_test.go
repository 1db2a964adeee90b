package main

import (
	"math"
	"strings"
	"testing"
)

const sampleLog = `multi-start date=2026-01-01T00:00Z load=1,1,1 failover_runs=3 loss_runs=1 silent_runs=0 join_runs=1 mem_tasks=100 loss_tasks=10 idle_s=60 write_every_ms=50.0
failover shoal run=1 ms=900.0 errors=0 leader_ms=800.0 lost=0 elections_logged=1 candidacies_logged=n/a
failover shoal run=2 ms=FAIL
failover shoal run=3 ms=1700.0 errors=2 leader_ms=900.0 lost=0 elections_logged=1 candidacies_logged=n/a
failover docker run=1 ms=12000.0 errors=0 leader_ms=11000.0 lost=0 elections_logged=1 candidacies_logged=1
failover docker run=2 ms=14000.0 errors=1 leader_ms=13000.0 lost=1 elections_logged=0 candidacies_logged=1
loss shoal run=1 ms=3000.0 down_ms=2900.0 moved=2
loss docker run=1 ms=20000.0 down_ms=13000.0 moved=2
join shoal run=1 ms=100.0 cli_ms=90.0
join docker run=1 ms=300.0 cli_ms=320.0
mem shoal node=node1 role=leader tasks=20 sample=1 rss_kb=30720 pss_kb=20480 uss_kb=10240 procs=1
mem docker node=node1 role=leader tasks=20 sample=1 rss_kb=307200 pss_kb=204800 uss_kb=102400 procs=22
mem shoal node=node4 role=worker tasks=20 sample=1 rss_kb=30720 pss_kb=20480 uss_kb=10240 procs=1
mem docker node=node4 role=worker tasks=20 sample=1 rss_kb=102400 pss_kb=81920 uss_kb=40960 procs=22
idle shoal window_s=60 polls=60 changes=0 leaderless=0 elections_logged=0 candidacies_logged=n/a
idle docker window_s=60 polls=60 changes=1 leaderless=2 elections_logged=1 candidacies_logged=1
multi-end load=2,2,2 elapsed_s=100
`

func TestReport(t *testing.T) {
	recs, err := parseLog(strings.NewReader(sampleLog))
	if err != nil {
		t.Fatal(err)
	}
	xs, failed := values(recs, "failover", "shoal", "ms", nil)
	if len(xs) != 2 || failed != 1 {
		t.Fatalf("failover shoal: %v and %d failed, want 2 figures and 1 failure", xs, failed)
	}
	if m := median(xs); m != 1300 {
		t.Errorf("median %v = %v, want 1300", xs, m)
	}
	if !math.IsNaN(median(nil)) {
		t.Error("the median of nothing is a number")
	}
	out := renderSection(recs, "bench-x-multi.log")
	for _, want := range []string{
		// shoal's failover median 1300 ms passes its 1.5 s target.
		"| 1300.0 | 13000.0 | 10.0 | shoal ≤ 1500 ms | **PASS** |",
		// a lost write in Docker's runs fails the no-loss row.
		"| 0 | 1 | | none | **FAIL** |",
		// the worker's PSS is 20 MiB against Docker's 80: more than a fifth.
		"| ... PSS sum (MiB) | 20.0 | 80.0 | 4.0 | shoal ≤ 1/5 of Docker | **FAIL** |",
		"| ... PSS sum (MiB) | 20.0 | 200.0 | 10.0 | shoal ≤ 1/5 of Docker | **PASS** |",
		"| 1300.0 | 13000.0 |",
		"900.0, 1700.0, 1 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the section lacks %q:\n%s", want, out)
		}
	}
	// shoal idled without a change and its failovers logged their elections.
	if f := idleOf(recs, "shoal"); idleVerdict(f) != "**PASS**" {
		t.Errorf("shoal idle verdict %s, want PASS (%+v)", idleVerdict(f), f)
	}
	// Docker's second failover logged no election: its patterns are unchecked.
	if f := idleOf(recs, "docker"); idleVerdict(f) != "n/a" {
		t.Errorf("docker idle verdict %s, want n/a (%+v)", idleVerdict(f), f)
	}
	// A changed leader fails the idle check.
	bad := strings.Replace(sampleLog, "idle shoal window_s=60 polls=60 changes=0", "idle shoal window_s=60 polls=60 changes=1", 1)
	recs, _ = parseLog(strings.NewReader(bad))
	if f := idleOf(recs, "shoal"); idleVerdict(f) != "**FAIL**" {
		t.Errorf("shoal idle verdict with a leader change %s, want FAIL", idleVerdict(f))
	}
	// Too few polls for the window: no verdict.
	short := strings.Replace(sampleLog, "idle shoal window_s=60 polls=60", "idle shoal window_s=60 polls=10", 1)
	recs, _ = parseLog(strings.NewReader(short))
	if f := idleOf(recs, "shoal"); idleVerdict(f) != "n/a" {
		t.Errorf("shoal idle verdict with 10 polls in 60 s %s, want n/a", idleVerdict(f))
	}
}

func TestReplaceSection(t *testing.T) {
	doc := "# Benchmarks\n\nsingle-node table\n"
	once := replaceSection(doc, "A\n")
	twice := replaceSection(once, "B\n")
	if !strings.HasPrefix(twice, doc) || strings.Contains(twice, "A\n") || !strings.Contains(twice, beginMarker+"\nB\n"+endMarker) {
		t.Errorf("replaceSection twice:\n%s", twice)
	}
	if strings.Count(twice, beginMarker) != 1 {
		t.Errorf("two sections:\n%s", twice)
	}
}

const netLog = `multi-start date=2026-01-01T00:00Z load=1,1,1 only=net,vip,stack net_runs=2 net_secs=4 ping_count=2000 vip_runs=2 stack_runs=1
net shoal path=overlay run=1 mbps=900 tool=iperf3 load=3.0,1,1
rtt shoal path=overlay run=1 n=2000 p50_us=300 p99_us=900 load=3.0,1,1
net shoal path=mesh run=1 mbps=1000 tool=iperf3 load=3.5,1,1
rtt shoal path=mesh run=1 n=2000 p50_us=250 p99_us=700 load=3.5,1,1
net shoal path=overlay run=2 mbps=700 tool=iperf3 load=2.0,1,1
net shoal path=mesh run=2 mbps=1000 tool=iperf3 load=2.0,1,1
net docker path=overlay run=1 mbps=FAIL tool=iperf3 load=4.0,1,1
net docker path=overlay run=2 mbps=FAIL tool=iperf3 load=4.0,1,1
vip shoal run=1 up_ms=150.0 down_ms=100.0 fails_after_kill=3 load=2,1,1
vip shoal run=2 up_ms=1200.0 down_ms=0.0 fails_after_kill=0 load=2,1,1
vip docker run=1 ms=FAIL
stack shoal run=1 ms=2000.0 cli_ms=1000.0 rm_ms=1500.0 services=20 load=2,1,1
stack docker run=1 ms=14000.0 cli_ms=300.0 rm_ms=13000.0 services=20 load=2,1,1
note docker net-overlay run=1 iperf3: unable to connect
multi-end load=2,2,2 elapsed_s=100
`

func TestNetReport(t *testing.T) {
	recs, err := parseLog(strings.NewReader(netLog))
	if err != nil {
		t.Fatal(err)
	}
	if hasKind(recs, clusterKinds) || !hasKind(recs, netKinds) {
		t.Fatal("the net log is taken for a cluster one")
	}
	out := renderNetSection(recs, "bench-x-multi.log")
	for _, want := range []string{
		// overlay median 800 of the mesh's 1000: 80%, under the 90% target.
		"| 80.0% (medians 800 / 1000 Mbit/s) | **FAIL** |",
		// 50 µs over the mesh at p50 passes, 200 at p99 does not.
		"| +50 µs | **PASS** |",
		"| +200 µs | **FAIL** |",
		"Docker's encrypted overlay carried no traffic between nodes (2 of 2 runs failed",
		// one VIP run over a second fails the every-run target.
		"| shoal 150, 1200 ms | **FAIL** |",
		"| shoal 100, 0 ms | **PASS** |",
		"| running to first answer (ms) | 150, 1200 | 1 failed |",
		"| deploy to all services converged (ms) | 2000 | 2000 | 14000 | 14000 | 7.0 |",
		"1-minute load during the measures: 2.0 to 4.0",
		"- `note docker net-overlay run=1 iperf3: unable to connect`",
		"| connections failed after the kill | 3, 0 | 1 failed |",
		"Docker's VIP answered no connection in any run",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the section lacks %q:\n%s", want, out)
		}
	}
}

func TestPlaceNetSection(t *testing.T) {
	doc := "# B\n\n" + beginMarker + "\nA\n" + endMarker + "\n\n## Torture\n"
	once := placeNetSection(doc, "N1\n")
	if !strings.Contains(once, endMarker+"\n\n"+netBeginMarker+"\nN1\n"+netEndMarker+"\n\n## Torture") {
		t.Errorf("placed:\n%s", once)
	}
	twice := placeNetSection(once, "N2\n")
	if strings.Contains(twice, "N1") || strings.Count(twice, netBeginMarker) != 1 || !strings.HasSuffix(twice, "## Torture\n") {
		t.Errorf("placed twice:\n%s", twice)
	}
	// The cluster section can be rewritten without touching the net one.
	again := replaceSection(twice, "B\n")
	if !strings.Contains(again, beginMarker+"\nB\n"+endMarker) || !strings.Contains(again, "N2") {
		t.Errorf("after replaceSection:\n%s", again)
	}
}
