package testenv

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// destroy stops the node and removes every trace of it: container processes (by
// their cgroups), mounts under its directory, cgroups, and files. The network
// namespaces go with the last process and mount in them.
func (n *Node) destroy() {
	if n.t.Failed() {
		n.t.Logf("node %s daemon log:\n%s", n.Name, tail(n.Log(), 200))
	}
	n.Kill()
	killCgroup(n.CgroupParent)
	unmountUnder(n.Dir)
	removeCgroup(n.CgroupParent)
	if err := os.RemoveAll(n.Dir); err != nil {
		n.t.Logf("node %s: remove %s: %v", n.Name, n.Dir, err)
	}
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// cgroupDirs lists the node's cgroup directories in every hierarchy, deepest first.
func cgroupDirs(parent string) []string {
	var dirs []string
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/" + parent)
	if fi, err := os.Stat("/sys/fs/cgroup/" + parent); err == nil && fi.IsDir() {
		roots = append(roots, "/sys/fs/cgroup/"+parent)
	}
	for _, root := range roots {
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

// killCgroup SIGKILLs every process in the node's cgroups and waits (briefly) for
// them to go.
func killCgroup(parent string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		alive := false
		for _, dir := range cgroupDirs(parent) {
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

func removeCgroup(parent string) {
	for _, dir := range cgroupDirs(parent) {
		_ = syscall.Rmdir(dir)
	}
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			points = append(points, mp)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
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
