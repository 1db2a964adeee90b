# report.sh: turns the raw bench log into docs/benchmarks.md. Sourced by run.sh.

# figures LOG KIND ENGINE [N] prints the milliseconds of every successful run.
figures() {
	local log=$1 kind=$2 engine=$3 n=${4:-}
	awk -v k="$kind" -v e="$engine" -v n="n=$n" '
		$1 == k && $2 == e && (n == "n=" || $3 == n) {
			for (i = 3; i <= NF; i++) if ($i ~ /^ms=[0-9.]+$/) print substr($i, 4)
		}' "$log"
}

# failures LOG KIND ENGINE [N] prints how many runs failed.
failures() {
	local n=${4:-}
	awk -v k="$2" -v e="$3" -v n="n=$n" '$1 == k && $2 == e && (n == "n=" || $3 == n) && /ms=FAIL/' "$1" | wc -l
}

# mem_median LOG ENGINE COLUMN prints the median RSS (1) or PSS (2) in MiB.
mem_median() {
	awk -v e="$2" -v c="$3" '$1 == "mem" && $2 == e {
		split(substr($4, index($4, "=") + 1), f, ","); printf "%.1f\n", f[c] / 1024 }' "$1" | median
}

# ratio A B prints A/B with one decimal, or n/a.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.1f", a / b; else print "n/a" }'; }

# verdict CONDITION FIGURES... prints PASS or FAIL for an awk condition over the
# figures, or n/a when a figure is missing.
verdict() {
	local cond=$1 f
	shift
	for f in "$@"; do
		[[ $f =~ ^[0-9]+(\.[0-9]+)?$ ]] || {
			echo "n/a"
			return
		}
	done
	awk "BEGIN { if ($cond) print \"**PASS**\"; else print \"**FAIL**\" }"
}

# list LOG KIND ENGINE [N] prints all runs, comma separated.
list() { figures "$@" | paste -sd, - | sed 's/,/, /g'; }

# machine_facts prints the Markdown list describing this machine and the versions.
machine_facts() {
	local mem cpu os commit
	mem=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
	cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
	os=$(. /etc/os-release && echo "$PRETTY_NAME")
	commit=$(awk '$1 == "commit" {$1 = ""; sub(/^ /, ""); print}' "$1")
	cat <<EOF
- date: $(date -u '+%Y-%m-%d %H:%M UTC')
- machine: $(nproc) CPUs ($cpu), $mem memory, $os, kernel $(uname -r), cgroup $(stat -fc %T /sys/fs/cgroup | sed 's/cgroup2fs/v2/; s/tmpfs/v1/')
- load average before / after: $(awk '/load-before/ {print $3, $4, $5}' "$1") / $(awk '/load-after/ {print $3, $4, $5}' "$1")
- shoal: $("$SHOAL_BIN" version) (commit $commit), $(go version | cut -d' ' -f3), static build (\`make build\`: \`-tags netgo,osusergo,seccomp -ldflags '-s -w -extldflags "-static"'\`)
- Docker: $(dockerd --version), $(containerd --version | cut -d' ' -f1,3), $(runc --version | head -1)
- docker CLI driving both: $("$DOCKER_CLI" version --format '{{.Client.Version}}' 2>/dev/null)
EOF
}

# write_report LOG OUT writes the Markdown report. The two Multi-node sections of an
# earlier OUT (testenv/bench/multinode writes them, between their markers) are kept at the end.
write_report() {
	local log=$1 out=$2 multi=
	[ -f "$out" ] && multi=$(awk '/^<!-- multi-(node|net):begin/ {f = 1} f {print} /^<!-- multi-(node|net):end -->/ {if (f) print ""; f = 0}' "$out")
	local rst_s rst_d s50 d50 s10 d10 r50s r50d r10s r10d rss_s rss_d pss_s pss_d rdy_s rdy_d wrap bytes mib
	s50=$(figures "$log" create shoal 50 | median)
	d50=$(figures "$log" create docker 50 | median)
	s10=$(figures "$log" create shoal 10 | median)
	d10=$(figures "$log" create docker 10 | median)
	r50s=$(figures "$log" remove shoal 50 | median)
	r50d=$(figures "$log" remove docker 50 | median)
	r10s=$(figures "$log" remove shoal 10 | median)
	r10d=$(figures "$log" remove docker 10 | median)
	rss_s=$(mem_median "$log" shoal 1)
	rss_d=$(mem_median "$log" docker 1)
	pss_s=$(mem_median "$log" shoal 2)
	pss_d=$(mem_median "$log" docker 2)
	rdy_s=$(figures "$log" ready shoal | median)
	rdy_d=$(figures "$log" ready docker | median)
	rst_s=$(figures "$log" restart shoal | median)
	rst_d=$(figures "$log" restart docker | median)
	wrap=$(awk '$1 == "wrapper" {print substr($3, 4)}' "$log" | median)
	bytes=$(awk '$1 == "binary" {print substr($2, 7)}' "$log")
	mib=$(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1048576}')
	{
		cat <<EOF
# Benchmarks: shoal vs Docker Engine swarm mode

Written by \`make bench\` (\`bash testenv/bench/run.sh\`); raw numbers in \`docs/$(basename "$log")\`
(not committed). Every figure is the median of the runs listed under "All runs".

$(machine_facts "$log")

| measure | shoal | Docker | Docker / shoal | target | result |
| --- | ---: | ---: | ---: | --- | --- |
| 50 replicas: \`service create\` to 50 running (ms) | $s50 | $d50 | $(ratio "$d50" "$s50") | ≥ 3x sooner than Docker | $(verdict "$d50 >= 3 * $s50 && $s50 > 0" "$s50" "$d50") |
| 10 replicas: \`service create\` to 10 running (ms) | $s10 | $d10 | $(ratio "$d10" "$s10") | | |
| 50 replicas: \`service rm\` to no task container (ms) | $r50s | $r50d | $(ratio "$r50d" "$r50s") | | |
| 10 replicas: \`service rm\` to no task container (ms) | $r10s | $r10d | $(ratio "$r10d" "$r10s") | | |
| orchestration memory, 20 tasks, RSS sum (MiB) | $rss_s | $rss_d | $(ratio "$rss_d" "$rss_s") | ≤ 1/5 of Docker | $(verdict "$rss_s * 5 <= $rss_d && $rss_s > 0" "$rss_s" "$rss_d") |
| orchestration memory, 20 tasks, PSS sum (MiB) | $pss_s | $pss_d | $(ratio "$pss_d" "$pss_s") | ≤ 1/5 of Docker | $(verdict "$pss_s * 5 <= $pss_d && $pss_s > 0" "$pss_s" "$pss_d") |
| daemon ready: exec to first \`/_ping\` OK (ms) | $rdy_s | $rdy_d | $(ratio "$rdy_d" "$rdy_s") | shoal < 300 ms | $(verdict "$rdy_s < 300 && $rdy_s > 0" "$rdy_s") |
| daemon restart on a one-node swarm's state: exec to \`/_ping\` OK (ms) | $rst_s | $rst_d | $(ratio "$rst_d" "$rst_s") | | |
| static binary size (MiB) | $mib | | | < 40 MB | $(verdict "$bytes < 40000000 && $bytes > 0" "$bytes") |

Failed runs (excluded from the medians): create shoal $(($(failures "$log" create shoal))),
create docker $(($(failures "$log" create docker))), remove shoal $(($(failures "$log" remove shoal))),
remove docker $(($(failures "$log" remove docker))), ready shoal $(($(failures "$log" ready shoal))),
ready docker $(($(failures "$log" ready docker))), restart shoal $(($(failures "$log" restart shoal))),
restart docker $(($(failures "$log" restart docker))).

## How it is measured

- Each engine is a one-node swarm (\`docker swarm init --advertise-addr 127.0.0.1\`) whose
  daemon runs in its own network and UTS namespace (\`unshare --net --uts\`, loopback up);
  the busybox image is built from Debian's busybox-static by \`testenv/bench/mkimage.sh\` and
  \`docker load\`ed into both. The same docker CLI drives both engines.
- Docker runs as Debian's docker.io ships it: dockerd starting its own containerd, one
  containerd-shim-runc-v2 per container, overlay2, \`--iptables=false --ip-masq=false
  --userland-proxy=false\` (nothing may touch the host's firewall), cgroupfs driver.
- Both daemons run at the same time and the runs alternate shoal, Docker, shoal, ... so
  other load on the machine falls on both alike.
- Convergence: \`testenv/bench/probe running\` starts \`docker service create -d --no-resolve-image
  --stop-signal SIGKILL --replicas N busybox sleep 3600\` and polls
  \`GET /services?status=true\` every 50 ms until \`RunningTasks\` = N; the time runs from
  the CLI's start. Removal: \`testenv/bench/probe gone\` starts \`docker service rm\` and polls
  \`GET /containers/json?all=1\` (label \`com.docker.swarm.service.name\`) every 50 ms until
  no container of the service is left, running or stopped.
- \`--no-resolve-image\`: the machine is offline, so the CLI's registry lookup of the
  image digest can only fail; both engines skip it alike.
- \`--stop-signal SIGKILL\`: \`sleep\` as PID 1 ignores SIGTERM, so with the default signal
  both engines would wait out the 10 s grace period per container and the removal time
  would measure that timer rather than the engines.
- Memory: with 20 tasks running, five samples a second apart of the sum of \`VmRSS\`
  (/proc/PID/status) and of \`Pss\` (/proc/PID/smaps_rollup) over the orchestration
  processes; the containers' own processes are excluded. shoal: every process running
  the shoal binary (the daemon alone). Docker: dockerd, containerd and every
  containerd-shim. PSS splits shared pages (the 20 shims share one binary) fairly; RSS
  counts them once per process.
- Ready: \`testenv/bench/probe ready\` starts the daemon from a fresh, empty data root and polls
  \`GET /_ping\` every 5 ms; the time runs from the exec of the namespace wrapper and
  includes it (the wrapper alone, \`unshare\` + \`sh\` + \`ip link set lo up\`, takes
  $wrap ms, median). Restart: the same, on the data root of a one-node swarm made
  just before (no services), so the daemon reopens its Raft state before it answers.

## All runs (ms)

| run | shoal | Docker |
| --- | --- | --- |
| create, 50 replicas | $(list "$log" create shoal 50) | $(list "$log" create docker 50) |
| create, 10 replicas | $(list "$log" create shoal 10) | $(list "$log" create docker 10) |
| rm, 50 replicas | $(list "$log" remove shoal 50) | $(list "$log" remove docker 50) |
| rm, 10 replicas | $(list "$log" remove shoal 10) | $(list "$log" remove docker 10) |
| ready | $(list "$log" ready shoal) | $(list "$log" ready docker) |
| restart | $(list "$log" restart shoal) | $(list "$log" restart docker) |

Processes measured: shoal $(awk '$1 == "mem-procs" && $2 == "shoal" {$1 = $2 = ""; sub(/^ +/, ""); sub(/ +$/, ""); print}' "$log"); Docker $(awk '$1 == "mem-procs" && $2 == "docker" {$1 = $2 = ""; sub(/^ +/, ""); sub(/ +$/, ""); print}' "$log").

## Go benchmarks of the control plane and the container runtime

One task status update through Raft (one fsync'd entry), one placement plan of 50
tasks on 10 nodes, and one create + start of a busybox container under libcontainer
with Docker's default seccomp filter (builtin) and without (unconfined)
(\`go test -bench\`, 3 runs):

\`\`\`
$(cat "$BENCH_ROOT/gobench.txt" 2>/dev/null)
\`\`\`

## Notes

- \`--no-resolve-image\` skips the CLI's digest lookup (\`GET /distribution/...\`) on both
  engines: offline, it can only fail (both engines now fail it in milliseconds; shoal
  used to retry an unreachable registry with back-off for about 4 s).
- The machine is shared: the load average above is what else ran meanwhile. Compare the
  two columns of one run of this script, not figures from different runs.
EOF
		[ -z "$multi" ] || printf '\n%s\n' "$multi"
	} >"$out.new"
	# The torture test's figures come from `make torture`, not from this script:
	# its section is carried over.
	if [ -f "$out" ]; then
		sed -n '/^## Crash-consistency torture test/,$p' "$out" | sed '1s/^/\n/' >>"$out.new"
	fi
	mv "$out.new" "$out"
}
