package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// expand replaces the placeholders of a LabOptions.Command with the machine's
// values.
func (m *Machine) expand(template []string) []string {
	r := strings.NewReplacer(
		"{name}", m.Name,
		"{addr}", m.addr,
		"{dir}", m.Dir,
		"{socket}", m.Socket,
		"{data}", m.DataRoot,
		"{exec}", m.ExecRoot,
		"{cgroup}", m.CgroupParent,
	)
	out := make([]string, len(template))
	for i, a := range template {
		out[i] = r.Replace(a)
	}
	return out
}

// namespaces is the set (by inode) of the machine's network and UTS namespaces:
// its pinned ones in a lab, its daemon's for a lone node (none when that daemon
// is not running).
func (m *Machine) namespaces() map[uint64]bool {
	paths := []string{m.netNS, m.utsNS}
	if m.netNS == "" {
		pid := m.Pid()
		if pid == 0 {
			return nil
		}
		paths = []string{fmt.Sprintf("/proc/%d/ns/net", pid), fmt.Sprintf("/proc/%d/ns/uts", pid)}
	}
	set := map[uint64]bool{}
	for _, p := range paths {
		var st syscall.Stat_t
		if p != "" && syscall.Stat(p, &st) == nil {
			set[st.Ino] = true
		}
	}
	return set
}

// containerPids lists the processes in the machine's cgroup parent: its
// containers'.
func (m *Machine) containerPids() map[int]bool {
	pids := map[int]bool{}
	for _, dir := range cgroupDirs(m.CgroupParent) {
		data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids[pid] = true
			}
		}
	}
	return pids
}

// Processes lists the machine's own processes, lowest pid first: its daemon and
// every other process in the machine's network or UTS namespace that is not in
// its containers' cgroups (a dockerd's containerd and shims, say, or a program
// that Command runs). Its containers' processes are not listed.
func (m *Machine) Processes() []int {
	inContainers := m.containerPids()
	var pids []int
	for _, pid := range processesIn(m.namespaces()) {
		if !inContainers[pid] {
			pids = append(pids, pid)
		}
	}
	if pid := m.Pid(); pid != 0 && !slices.Contains(pids, pid) {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	return pids
}

// Crash stops everything that runs on the machine at once, as a crash of the
// whole machine would: SIGKILL to its daemon, to every other process in its
// namespaces (the helpers its daemon started, such as containerd and its shims)
// and to its containers (by cgroup). Unlike a lost machine, its kernel (the
// host's) still closes its connections, so peers see them reset, not silent
// (Partition makes a machine silent). Its state stays on disk: Start boots it
// again; Reset starts it fresh.
func (m *Machine) Crash(ctx context.Context) error {
	namespaces := m.namespaces() // a lone node's go with its daemon
	err := m.Kill(ctx)
	killInNamespaces(namespaces)
	killCgroup(m.CgroupParent)
	if err != nil {
		return fmt.Errorf("crash %s: %w", m.Name, err)
	}
	return nil
}
