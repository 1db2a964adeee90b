package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// remove stops the machine and removes every trace of it: container processes (by
// their cgroups), mounts under its directory (its pinned namespaces too), cgroups,
// and files.
func (m *Machine) remove(ctx context.Context) error {
	err := m.Kill(ctx)
	removeMeshSocket(m.DataRoot)
	if m.daemonNetNS != 0 {
		// dockerd's containerd and shims outlive it, in its namespace.
		killInNamespaces(map[uint64]bool{m.daemonNetNS: true})
	}
	killCgroup(m.CgroupParent)
	unmountUnder(m.Dir)
	removeCgroup(m.CgroupParent)
	if rmErr := os.RemoveAll(m.Dir); rmErr != nil && err == nil {
		err = fmt.Errorf("remove %s: %w", m.Dir, rmErr)
	}
	return err
}

// removeMeshSocket removes the UAPI socket a killed daemon's WireGuard mesh
// interface left in /var/run/wireguard: it is named after the node's ID
// (shoal-<9 characters of it>), which the node's state file holds.
func removeMeshSocket(dataRoot string) {
	data, err := os.ReadFile(filepath.Join(dataRoot, "swarm", "state.json"))
	if err != nil {
		return
	}
	var st struct{ NodeID string }
	if json.Unmarshal(data, &st) != nil || len(st.NodeID) < 9 {
		return
	}
	_ = os.Remove(filepath.Join("/var/run/wireguard", "shoal-"+st.NodeID[:9]+".sock"))
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// cgroupDirs lists, deepest first, the cgroup directories in every hierarchy whose
// top-level name matches pattern (a cgroup parent, or a glob of them).
func cgroupDirs(pattern string) []string {
	var dirs []string
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/" + pattern)
	v2, _ := filepath.Glob("/sys/fs/cgroup/" + pattern)
	for _, root := range append(roots, v2...) {
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	return dirs
}

// killCgroup SIGKILLs every process in the cgroups that pattern matches and waits
// (briefly) for them to go.
func killCgroup(pattern string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		alive := false
		for _, dir := range cgroupDirs(pattern) {
			data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					alive = true
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			// A frozen cgroup would hold its processes forever.
			_ = os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0o644)
		}
		if !alive {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func removeCgroup(pattern string) {
	for _, dir := range cgroupDirs(pattern) {
		_ = syscall.Rmdir(dir)
	}
}

// mountsUnder lists the mount points at or below dir, deepest first, with their
// filesystem types.
func mountsUnder(dir string) (points, fstypes []string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	type mount struct{ point, fstype string }
	var mounts []mount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp != dir && !strings.HasPrefix(mp, dir+"/") {
			continue
		}
		fstype := ""
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) {
				fstype = fields[i+1]
				break
			}
		}
		mounts = append(mounts, mount{mp, fstype})
	}
	sort.SliceStable(mounts, func(i, j int) bool { return len(mounts[i].point) > len(mounts[j].point) })
	for _, m := range mounts {
		points, fstypes = append(points, m.point), append(fstypes, m.fstype)
	}
	return points, fstypes
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(dir string) {
	points, _ := mountsUnder(dir)
	for _, p := range points {
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
	}
}

// unescapeMount undoes mountinfo's octal escapes (\040 for space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// pinnedNamespaces is the set of namespaces (by inode) pinned under dir.
func pinnedNamespaces(dir string) map[uint64]bool {
	pinned := map[uint64]bool{}
	points, fstypes := mountsUnder(dir)
	for i, p := range points {
		var st syscall.Stat_t
		if fstypes[i] == "nsfs" && syscall.Stat(p, &st) == nil {
			pinned[st.Ino] = true
		}
	}
	return pinned
}

// killInNamespaces SIGKILLs every process in one of the network or UTS
// namespaces and waits (briefly) for them to go.
func killInNamespaces(namespaces map[uint64]bool) {
	if len(namespaces) == 0 {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		pids := processesIn(namespaces)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processesIn lists the live processes (but this one) in one of the network or
// UTS namespaces.
func processesIn(namespaces map[uint64]bool) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		for _, kind := range []string{"net", "uts"} {
			// The link reads "net:[4026532281]"; a zombie's are gone, and it
			// holds nothing.
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, kind))
			if err != nil {
				continue
			}
			var ino uint64
			if _, err := fmt.Sscanf(link[len(kind)+1:], "[%d]", &ino); err == nil && namespaces[ino] {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}
