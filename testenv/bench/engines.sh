# engines.sh: start, measure and tear down the two engines of the bench, each in its
# own network and UTS namespace so neither touches the host's network. Sourced by
# run.sh, which sets BENCH_ROOT, SHOAL_BIN, DOCKER_CLI and DAEMON_LOGS (prefix of the
# files the daemons' logs are kept in).
#
# Layout: $BENCH_ROOT/<engine>/{data,exec,api.sock,pid,daemon.log}; engine is
# "shoal" or "docker". Task containers go under the cgroup parent "shoalbench-<engine>".

# engine_dir ENGINE prints the engine's directory.
engine_dir() { echo "$BENCH_ROOT/$1"; }

# engine_sock ENGINE prints the path of the engine's API socket.
engine_sock() { echo "$BENCH_ROOT/$1/api.sock"; }

# cli ENGINE ARGS... runs the docker CLI against the engine.
cli() {
	local engine=$1
	shift
	DOCKER_HOST="unix://$(engine_sock "$engine")" "$DOCKER_CLI" "$@"
}

# daemon_command ENGINE prints the shell command that execs the engine's daemon in a
# fresh network and UTS namespace (loopback up, hostname benchnode).
daemon_command() {
	local engine=$1 dir
	dir=$(engine_dir "$engine")
	local ns="ip link set lo up; hostname benchnode; exec"
	case $engine in
	shoal)
		echo "$ns $SHOAL_BIN daemon -H unix://$dir/api.sock --data-root $dir/data" \
			"--exec-root $dir/exec --bridge sbench0 --nftables-table shoalbench" \
			"--cgroup-parent shoalbench-shoal"
		;;
	docker)
		# The trust key goes under the data dir (deprecated-key-path) instead of
		# /etc/docker/key.json, so the host is left as it was.
		printf '{"deprecated-key-path": "%s/key.json"}\n' "$dir" >"$dir/daemon.json"
		echo "$ns dockerd --config-file $dir/daemon.json -H unix://$dir/api.sock" \
			"--data-root $dir/data --exec-root $dir/exec --pidfile $dir/dockerd.pid" \
			"--iptables=false --ip-masq=false --userland-proxy=false" \
			"--cgroup-parent shoalbench-docker"
		;;
	esac
}

# prepare_engine ENGINE makes a fresh, empty directory for the engine.
prepare_engine() {
	local dir
	dir=$(engine_dir "$1")
	rm -rf "$dir"
	mkdir -p "$dir/data" "$dir/exec"
}

# start_engine ENGINE starts the daemon in the background and waits (≤ 60 s) for its API.
start_engine() {
	local engine=$1 dir i
	dir=$(engine_dir "$engine")
	prepare_engine "$engine"
	unshare --net --uts sh -c "$(daemon_command "$engine")" >"$dir/daemon.log" 2>&1 &
	echo $! >"$dir/pid"
	for i in $(seq 600); do
		if cli "$engine" version >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
		sleep 0.1
	done
	echo "bench: $engine did not answer on $(engine_sock "$engine"); its log:" >&2
	tail -20 "$dir/daemon.log" >&2
	return 1
}

# init_swarm ENGINE makes the engine a one-node swarm and loads the busybox image.
init_swarm() {
	local engine=$1
	cli "$engine" swarm init --advertise-addr 127.0.0.1 >/dev/null
	cli "$engine" load -i "$BENCH_ROOT/busybox.tar" >/dev/null
}

# engine_pids ENGINE prints the pids of the engine's orchestration processes: for
# shoal every process running the shoal binary; for docker dockerd, containerd and
# every containerd-shim. Only processes whose command line names this engine's
# directory count, so nothing outside the bench is measured (or killed).
engine_pids() {
	local engine=$1 dir p exe cmdline
	dir=$(engine_dir "$engine")
	for p in /proc/[0-9]*; do
		exe=$(readlink "$p/exe" 2>/dev/null) || continue
		case $engine:${exe##*/} in
		shoal:"${SHOAL_BIN##*/}" | docker:dockerd | docker:containerd | docker:containerd-shim*) ;;
		*) continue ;;
		esac
		cmdline=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
		[[ $cmdline == *"$dir/"* ]] && echo "${p#/proc/}"
	done
}

# engine_memory ENGINE prints "<rss kB> <pss kB> <processes>" summed over engine_pids.
engine_memory() {
	local rss=0 pss=0 n=0 p v
	for p in $(engine_pids "$1"); do
		v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || continue
		[ -n "$v" ] || continue
		rss=$((rss + v))
		v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null)
		pss=$((pss + ${v:-0}))
		n=$((n + 1))
	done
	echo "$rss $pss $n"
}

# cgroup_pids PARENT prints every process in the cgroup parent's tree (pids controller).
cgroup_pids() {
	local d
	for d in /sys/fs/cgroup/pids/"$1" /sys/fs/cgroup/unified/"$1" /sys/fs/cgroup/"$1"; do
		[ -d "$d" ] && find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
	done | sort -u
}

# remove_services ENGINE removes every service and waits (≤ 60 s) for their containers.
remove_services() {
	local engine=$1 ids i
	ids=$(cli "$engine" service ls -q 2>/dev/null) || return 0
	[ -z "$ids" ] || cli "$engine" service rm $ids >/dev/null 2>&1 || true
	for i in $(seq 600); do
		[ -z "$(cli "$engine" ps -aq --filter label=com.docker.swarm.service.name 2>/dev/null)" ] && return 0
		sleep 0.1
	done
	echo "bench: $engine still has task containers after 60 s" >&2
}

# stop_daemon ENGINE stops the daemon started by start_engine (SIGTERM, then SIGKILL
# after 30 s) and keeps its state for a restart.
stop_daemon() {
	local pid i
	pid=$(cat "$(engine_dir "$1")/pid" 2>/dev/null || true)
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 300); do
			kill -0 "$pid" 2>/dev/null || return 0
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	return 0
}

# stop_engine ENGINE removes the engine's services, stops its daemon (SIGTERM, then
# SIGKILL after 30 s), kills what is left of its processes and containers (by pid),
# unmounts everything under its directory and removes its cgroups and files.
stop_engine() {
	local engine=$1 dir i p m
	dir=$(engine_dir "$engine")
	if [ ! -d "$dir" ]; then
		remove_cgroups "shoalbench-$engine"
		return 0
	fi
	if [ -n "${DAEMON_LOGS:-}" ] && [ -f "$dir/daemon.log" ]; then
		cat "$dir/daemon.log" >>"$DAEMON_LOGS-$engine.log"
	fi
	if [ -S "$dir/api.sock" ] && cli "$engine" version >/dev/null 2>&1; then
		remove_services "$engine"
		[ "$engine" = docker ] && cli docker swarm leave --force >/dev/null 2>&1
	fi
	stop_daemon "$engine"
	for p in $(engine_pids "$engine") $(cgroup_pids "shoalbench-$engine"); do
		kill -KILL "$p" 2>/dev/null || true
	done
	for i in $(seq 50); do
		[ -z "$(engine_pids "$engine")$(cgroup_pids "shoalbench-$engine")" ] && break
		sleep 0.1
	done
	# Deepest mount points first; lazy, so a busy one cannot stop the cleanup.
	awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	remove_cgroups "shoalbench-$engine"
	rm -rf "$dir"
}

# remove_cgroups PARENT removes the cgroup parent's directories in every hierarchy.
remove_cgroups() {
	local d
	for d in /sys/fs/cgroup/*/"$1" /sys/fs/cgroup/"$1"; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	return 0
}
