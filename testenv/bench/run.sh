#!/usr/bin/env bash
# run.sh (make bench): shoal against Docker Engine's swarm mode on this machine.
# Run as root from the repository root: bash testenv/bench/run.sh
#
# It installs what it lacks (docker.io, busybox-static, ...) with apt-get, builds the
# static shoal binary and testenv/bench/probe, builds a busybox image, then measures both
# engines (each a one-node swarm in its own network namespace) and writes the table to
# docs/benchmarks.md and the raw numbers to docs/bench-<time>.log. Then the
# multi-node measures (testenv/bench/multinode): both engines as five-node swarms in testenv
# labs, their figures in the Multi-node section of docs/benchmarks.md and the raw ones
# in docs/bench-<time>-multi.log. Everything it starts, mounts or creates is removed
# on exit, even on failure.
#
# Environment: BENCH_ROOT (scratch dir, default /tmp/shoal-bench), RUNS_10 (default 5),
# RUNS_50 (default 3), READY_RUNS (default 10), BENCH_BUDGET (seconds of single-node
# measuring after the build before the remaining runs are skipped, default 780).
# Multi-node: MULTI_FAILOVER_RUNS (default 5), MULTI_LOSS_RUNS (3), MULTI_SILENT_RUNS
# (3: failovers and worker losses where the node goes silent), MULTI_JOIN_RUNS (5),
# MULTI_IDLE (seconds of idle swarms in which elections are counted, default 600),
# MULTI_BUDGET (seconds after which only first runs are made, idle window apart,
# default 1500), MULTI_NET_RUNS (5: throughput and round-trip runs per path),
# MULTI_VIP_RUNS (3), MULTI_STACK_RUNS (3), MULTI_ONLY (comma-separated measures of
# the multi-node half, e.g. net,vip,stack; default all). BENCH_ONLY=single or
# BENCH_ONLY=multi runs one half (the other half of docs/benchmarks.md is kept).
set -euo pipefail

cd "$(dirname "$0")/../.."
REPO=$(pwd)
BENCH_ROOT=${BENCH_ROOT:-/tmp/shoal-bench}
RUNS_10=${RUNS_10:-5}
RUNS_50=${RUNS_50:-3}
READY_RUNS=${READY_RUNS:-10}
STAMP=$(date -u +%Y%m%d-%H%M%S)
LOG=$REPO/docs/bench-$STAMP.log
MULTI_LOG=$REPO/docs/bench-$STAMP-multi.log
BENCH_ONLY=${BENCH_ONLY:-}
DAEMON_LOGS=$REPO/docs/bench-$STAMP
SHOAL_BIN=$REPO/bin/shoal-static
PROBE=$BENCH_ROOT/probe
MULTINODE=$BENCH_ROOT/multinode
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin

source "$REPO/testenv/bench/engines.sh"
source "$REPO/testenv/bench/report.sh"

[ "$(id -u)" = 0 ] || {
	echo "bench: run as root (it starts daemons and mounts)" >&2
	exit 1
}

# log prints a line to the terminal and the raw log.
log() { echo "$*" | tee -a "$LOG" >&2; }

# record KEY VALUE... appends a raw figure to the log ("KEY VALUE...").
record() { echo "$*" >>"$LOG"; }

# install_needs installs the Debian packages of missing tools. Service start-up is
# refused during the install (policy-rc.d) so a fresh docker.io does not start a
# dockerd on the host network; the policy file is removed again if we made it.
install_needs() {
	local pkgs=() made_policy=
	command -v dockerd >/dev/null || pkgs+=(docker.io)
	command -v containerd-shim-runc-v2 >/dev/null || pkgs+=(containerd)
	dpkg -s busybox-static >/dev/null 2>&1 || pkgs+=(busybox-static)
	command -v unshare >/dev/null || pkgs+=(util-linux)
	command -v ip >/dev/null || pkgs+=(iproute2)
	command -v nft >/dev/null || pkgs+=(nftables)
	command -v gcc >/dev/null || pkgs+=(gcc libc6-dev)
	command -v git >/dev/null || pkgs+=(git)
	command -v iperf3 >/dev/null || pkgs+=(iperf3)
	command -v go >/dev/null || {
		echo "bench: needs Go (/usr/local/go/bin/go) to build shoal" >&2
		exit 1
	}
	[ ${#pkgs[@]} = 0 ] && return 0
	log "installing ${pkgs[*]}"
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		made_policy=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends "${pkgs[@]}" >>"$LOG" 2>&1 ||
		{ apt-get update >>"$LOG" 2>&1 && apt-get install -y --no-install-recommends "${pkgs[@]}" >>"$LOG" 2>&1; }
	[ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
}

# pick_cli sets DOCKER_CLI: the newest docker CLI on the machine (/usr/local/bin's
# 28.x if present, else docker.io's).
pick_cli() {
	DOCKER_CLI=$(command -v docker)
	[ -x /usr/local/bin/docker ] && DOCKER_CLI=/usr/local/bin/docker
	return 0
}

# Paths that dockerd creates outside its roots; removed on exit if they were absent.
HOST_PATHS=(/run/containerd/s /run/containerd /var/run/docker/plugins /var/run/docker)
declare -A HOST_PATH_EXISTED=()

cleanup() {
	local p
	set +e
	stop_engine shoal
	stop_engine docker
	[ -x "$MULTINODE" ] && "$MULTINODE" cleanup
	for p in "${HOST_PATHS[@]}"; do
		[ -n "${HOST_PATH_EXISTED[$p]:-}" ] || rmdir "$p" 2>/dev/null
	done
	rm -rf "$BENCH_ROOT"
}

# build compiles the static shoal binary, the probe and the multi-node bench.
build() {
	log "building static shoal ($SHOAL_BIN), testenv/bench/probe and testenv/bench/multinode"
	local commit
	commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
	git diff --quiet HEAD 2>/dev/null || commit="$commit + uncommitted changes"
	record "commit $commit"
	# The Makefile's build: the same tags (seccomp) and build packages as `make run`.
	make -s -C "$REPO" build BIN="${SHOAL_BIN#"$REPO"/}" >>"$LOG" 2>&1
	go build -o "$PROBE" ./testenv/bench/probe >>"$LOG" 2>&1
	go build -o "$MULTINODE" ./testenv/bench/multinode >>"$LOG" 2>&1
}

# measure_multinode runs testenv/bench/multinode: both engines as five-node swarms (three
# managers, two workers) in testenv labs; overlay throughput and round trips, VIP
# timing, a 20-service stack deploy, leader failover, worker loss, join, memory per
# node and elections on idle swarms (MULTI_ONLY picks some). It removes its labs
# itself, also on failure.
measure_multinode() {
	log "multi-node: shoal and Docker as five-node swarms (raw figures: $(basename "$MULTI_LOG"))"
	"$MULTINODE" run -shoal "$SHOAL_BIN" -cli "$DOCKER_CLI" -image "$BENCH_ROOT/busybox.tar" \
		-log "$MULTI_LOG" -daemon-logs "$DAEMON_LOGS-multi" \
		-failover-runs "${MULTI_FAILOVER_RUNS:-5}" -loss-runs "${MULTI_LOSS_RUNS:-3}" \
		-silent-runs "${MULTI_SILENT_RUNS:-3}" -join-runs "${MULTI_JOIN_RUNS:-5}" \
		-idle "${MULTI_IDLE:-600}s" -budget "${MULTI_BUDGET:-1500}s" \
		-net-runs "${MULTI_NET_RUNS:-5}" -vip-runs "${MULTI_VIP_RUNS:-3}" -stack-runs "${MULTI_STACK_RUNS:-3}" \
		-only "${MULTI_ONLY:-}" 2>>"$LOG" ||
		log "  the multi-node bench failed (see $(basename "$LOG"))"
}

# out_of_time reports (and logs) that the run has used its time budget (13 minutes
# after the build), so the remaining runs are skipped and the run stays under 15.
out_of_time() {
	[ "$(date +%s)" -ge "$DEADLINE" ] || return 1
	log "  time budget spent: skipping the remaining runs"
	return 0
}

# median reads numbers, one a line, and prints their median.
median() {
	sort -g | awk '{v[NR] = $1} END {
		if (NR == 0) { print "n/a"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# converge_run ENGINE N RUN times create-to-running and rm-to-gone for N replicas.
converge_run() {
	local engine=$1 n=$2 run=$3 name out sock
	out_of_time && return 0
	name=b${n}r${run}
	sock=$(engine_sock "$engine")
	out=$("$PROBE" running -sock "$sock" -service "$name" -replicas "$n" -every 50ms -timeout 180s -- \
		env DOCKER_HOST="unix://$sock" "$DOCKER_CLI" service create -d -q --no-resolve-image \
		--stop-signal SIGKILL --name "$name" --replicas "$n" busybox sleep 3600 2>>"$LOG") ||
		out="FAIL"
	record "create $engine n=$n run=$run ms=$out"
	log "  $engine: $n replicas running after ${out%% *} ms"
	out=$("$PROBE" gone -sock "$sock" -service "$name" -every 50ms -timeout 180s -- \
		env DOCKER_HOST="unix://$sock" "$DOCKER_CLI" service rm "$name" 2>>"$LOG") ||
		out="FAIL"
	record "remove $engine n=$n run=$run ms=$out"
	log "  $engine: $n task containers gone after ${out%% *} ms"
	remove_services "$engine"
}

# measure_swarm runs both engines side by side and interleaves their runs, so load
# from anything else on the machine falls on both alike.
measure_swarm() {
	local run engine n
	for engine in shoal docker; do
		log "starting $engine"
		start_engine "$engine"
		init_swarm "$engine"
	done
	for run in $(seq "$RUNS_50"); do
		for engine in shoal docker; do converge_run "$engine" 50 "$run"; done
	done
	for run in $(seq "$RUNS_10"); do
		for engine in shoal docker; do converge_run "$engine" 10 "$run"; done
	done
	for engine in shoal docker; do measure_memory "$engine"; done
}

# measure_memory ENGINE samples the orchestration memory with 20 tasks running: five
# samples a second apart once all 20 run; the median is reported.
measure_memory() {
	local engine=$1 i out sample
	log "memory of $engine with 20 tasks"
	out=$("$PROBE" running -sock "$(engine_sock "$engine")" -service mem20 -replicas 20 -timeout 180s -- \
		env DOCKER_HOST="unix://$(engine_sock "$engine")" "$DOCKER_CLI" service create -d -q \
		--no-resolve-image --stop-signal SIGKILL --name mem20 --replicas 20 busybox sleep 3600 2>>"$LOG") || out=FAIL
	record "mem-create $engine ms=$out"
	record "mem-containers $engine running=$(cli "$engine" ps -q | wc -l)"
	for i in 1 2 3 4 5; do
		sleep 1
		sample=$(engine_memory "$engine")
		record "mem $engine sample=$i rss_kb,pss_kb,procs=${sample// /,}"
	done
	record "mem-procs $engine $(for p in $(engine_pids "$engine"); do readlink "/proc/$p/exe"; done |
		sed 's|.*/||' | sort | uniq -c | awk '{printf "%s×%s ", $1, $2}')"
	remove_services "$engine"
}

# measure_ready times exec-to-/_ping READY_RUNS times per engine, each from fresh roots.
measure_ready() {
	local engine run out
	for engine in shoal docker; do
		stop_engine "$engine"
		log "ready time of $engine ($READY_RUNS runs)"
		for run in $(seq "$READY_RUNS"); do
			out_of_time && break
			prepare_engine "$engine"
			out=$("$PROBE" ready -sock "$(engine_sock "$engine")" -every 5ms -timeout 60s -- \
				unshare --net --uts sh -c "$(daemon_command "$engine")" 2>>"$(engine_dir "$engine")/daemon.log") ||
				out=FAIL
			record "ready $engine run=$run ms=$out"
			stop_engine "$engine"
		done
	done
	measure_restart
	# What the namespace wrapper alone costs, included in both figures above.
	for run in $(seq "$READY_RUNS"); do
		local t0 t1
		t0=$(date +%s%N)
		unshare --net --uts sh -c 'ip link set lo up; hostname benchnode; exec true'
		t1=$(date +%s%N)
		record "wrapper run=$run ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1e6}')"
	done
}

# measure_restart times exec-to-/_ping of a daemon restarted on the state of a
# one-node swarm (no services), READY_RUNS / 2 times per engine.
measure_restart() {
	local engine run out
	for engine in shoal docker; do
		log "restart time of $engine (swarm state, $((READY_RUNS / 2)) runs)"
		start_engine "$engine"
		cli "$engine" swarm init --advertise-addr 127.0.0.1 >/dev/null
		stop_daemon "$engine"
		for run in $(seq $((READY_RUNS / 2))); do
			out_of_time && break
			out=$("$PROBE" ready -sock "$(engine_sock "$engine")" -every 5ms -timeout 60s -- \
				unshare --net --uts sh -c "$(daemon_command "$engine")" 2>>"$(engine_dir "$engine")/daemon.log") ||
				out=FAIL
			record "restart $engine run=$run ms=$out"
		done
		stop_engine "$engine"
	done
}

main() {
	local start p
	start=$(date +%s)
	mkdir -p "$REPO/docs"
	: >"$LOG"
	install_needs
	pick_cli
	for p in "${HOST_PATHS[@]}"; do [ -e "$p" ] && HOST_PATH_EXISTED[$p]=1; done
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	stop_engine shoal # leftovers of an interrupted earlier run
	stop_engine docker
	mkdir -p "$BENCH_ROOT"
	build
	DEADLINE=$(($(date +%s) + ${BENCH_BUDGET:-780}))
	bash "$REPO/testenv/bench/mkimage.sh" "$BENCH_ROOT/busybox.tar" busybox:latest >/dev/null
	if [ "$BENCH_ONLY" != multi ]; then
		record "machine load-before $(cut -d' ' -f1-3 /proc/loadavg)"
		measure_swarm
		measure_ready
		record "machine load-after $(cut -d' ' -f1-3 /proc/loadavg)"
		record "binary bytes=$(stat -c %s "$SHOAL_BIN")"
		log "Go benchmarks of the control plane and the container runtime"
		(cd "$REPO" && go test -tags netgo,osusergo,seccomp -run '^$' -benchmem -count 3 \
			-bench 'BenchmarkUpdateTask$|BenchmarkPlan$|BenchmarkStart$' -benchtime 1s \
			./cluster/store/ ./cluster/scheduler/ ./runtime/container/) | grep '^Benchmark' >"$BENCH_ROOT/gobench.txt" || true
		record "elapsed s=$(($(date +%s) - start))"
		# The single-node daemons go before the labs start.
		stop_engine shoal
		stop_engine docker
		write_report "$LOG" "$REPO/docs/benchmarks.md"
	fi
	if [ "$BENCH_ONLY" != single ]; then
		measure_multinode
		[ -s "$MULTI_LOG" ] && "$MULTINODE" report -log "$MULTI_LOG" -out "$REPO/docs/benchmarks.md"
	fi
	log "wrote docs/benchmarks.md, $(basename "$LOG") and $(basename "$MULTI_LOG") in $(($(date +%s) - start)) s"
}

main "$@"
