// Command dockerd stands in for Docker's daemon when moby's integration tests
// run against shoal (testenv/mobysuite puts it first on their PATH): it turns
// the command line moby's testutil/daemon gives dockerd into one for `shoal
// daemon` and execs it, so the test's process is shoal's.
//
// What shoal has is passed on (--data-root, --exec-root, --host, --label,
// --swarm-default-advertise-addr, --debug as --log-level debug); what it does not
// (containerd, storage drivers, the userland proxy, iptables) is dropped and
// said on stderr, which moby's tests keep in the daemon's log. Each daemon gets
// a bridge, an nftables table, a bridge subnet and a cgroup parent of its own,
// named after the daemon's ID (the name of its folder), so that the daemons of
// one test can run side by side, and a hostname of its own ("shoal-<id>", in
// a UTS namespace of its own).
//
// Environment: MOBYSUITE_SHOAL is the shoal binary; MOBYSUITE_CGROUP_PREFIX
// starts each cgroup parent's name (the harness removes them all).
package main

import (
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// valued are dockerd's flags (of those moby's tests give) that take a value
// in the next argument when it is not joined with "=".
var valued = map[string]bool{
	"--config-file": true, "--data-root": true, "--exec-root": true, "--pidfile": true, "-p": true,
	"--containerd": true, "--containerd-namespace": true, "--containerd-plugins-namespace": true,
	"--host": true, "-H": true, "--storage-driver": true, "-s": true, "--userns-remap": true,
	"--default-cgroupns-mode": true, "--log-level": true, "-l": true, "--swarm-default-advertise-addr": true,
	"--label": true, "--default-address-pool": true, "--cgroup-parent": true, "--bip": true,
	"--node-generic-resource": true, "--default-runtime": true, "--add-runtime": true, "--seccomp-profile": true,
	"--log-driver": true, "--log-opt": true, "--mtu": true, "--dns": true, "--registry-mirror": true,
	"--insecure-registry": true, "--max-concurrent-downloads": true, "--max-concurrent-uploads": true,
	"--shutdown-timeout": true, "--default-ulimit": true, "--authorization-plugin": true,
	"--data-path-port": true, "--network-control-plane-mtu": true, "--swarm-raft-heartbeat-tick": true,
	"--swarm-raft-election-tick": true,
}

// passed are the flags shoal takes as dockerd does.
var passed = map[string]bool{
	"--data-root": true, "--exec-root": true, "--host": true, "-H": true, "--label": true,
	"--swarm-default-advertise-addr": true, "--node-generic-resource": true, "--log-level": true,
	"-l": true, "--registry-mirror": true, "--insecure-registry": true,
}

func main() {
	shoal := os.Getenv("MOBYSUITE_SHOAL")
	if shoal == "" {
		fmt.Fprintln(os.Stderr, "mobysuite dockerd: MOBYSUITE_SHOAL names no shoal binary")
		os.Exit(1)
	}
	args, pidfile, dataRoot := translate(os.Args[1:], os.Stderr)
	id := filepath.Base(filepath.Dir(dataRoot)) // <dest>/<test>/<id>/root
	args = append(args, isolation(id, os.Getenv("MOBYSUITE_CGROUP_PREFIX"))...)
	if pidfile != "" {
		// exec keeps the pid: the file names shoal's process, as dockerd's names its own.
		if err := os.WriteFile(pidfile, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "mobysuite dockerd: write pid file: %v\n", err)
			os.Exit(1)
		}
	}
	if err := ownHostname(id); err != nil {
		fmt.Fprintf(os.Stderr, "mobysuite dockerd: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "mobysuite dockerd: exec %s daemon %s\n", shoal, strings.Join(args, " "))
	err := syscall.Exec(shoal, append([]string{shoal, "daemon"}, args...), os.Environ())
	fmt.Fprintf(os.Stderr, "mobysuite dockerd: exec %s: %v\n", shoal, err)
	os.Exit(1)
}

// ownHostname gives the daemon a UTS namespace of its own, named
// "shoal-<id>": the sandbox's hostname is the machine's, which may be shorter
// than the 4 characters TestSwarmNodeListFilter cuts from a node's hostname
// (dockerd's test daemons have their CI machine's). The namespace is the
// calling thread's, which exec keeps: the thread stays locked.
func ownHostname(id string) error {
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWUTS); err != nil {
		return fmt.Errorf("own UTS namespace: %w", err)
	}
	if err := unix.Sethostname([]byte("shoal-" + id)); err != nil {
		return fmt.Errorf("set hostname: %w", err)
	}
	return nil
}

// translate turns dockerd's arguments into shoal daemon's, and returns the pid
// file and data root asked for; it says on w what it drops.
func translate(in []string, w *os.File) (out []string, pidfile, dataRoot string) {
	for i := 0; i < len(in); i++ {
		arg := in[i]
		name, value, joined := strings.Cut(arg, "=")
		if !joined && valued[name] && i+1 < len(in) {
			i++
			value = in[i]
			arg += " " + value
		}
		switch {
		case name == "--debug" || name == "-D":
			out = append(out, "--log-level", "debug")
		case name == "--pidfile" || name == "-p":
			pidfile = value
		case passed[name]:
			if name == "--data-root" {
				dataRoot = value
			}
			out = append(out, name, value)
		default:
			fmt.Fprintf(w, "mobysuite dockerd: shoal has no %s; dropped\n", arg)
		}
	}
	return out, pidfile, dataRoot
}

// isolation names the daemon's bridge, nftables table, bridge subnet and
// cgroup parent after its ID, so that no two daemons share them.
func isolation(id, cgroupPrefix string) []string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	sum := h.Sum32()
	short := strings.TrimPrefix(id, "d")
	if len(short) > 10 {
		short = short[:10]
	}
	if cgroupPrefix == "" {
		cgroupPrefix = "shoal-moby-"
	}
	return []string{
		"--bridge", "sm" + short, // at most 12 characters: the kernel's limit is 15
		"--nftables-table", "shoal_" + id,
		"--bip", fmt.Sprintf("172.%d.%d.0/24", 16+sum%16, (sum>>8)%256),
		"--cgroup-parent", cgroupPrefix + id,
	}
}
