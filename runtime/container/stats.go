package container

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	ctypes "github.com/moby/moby/api/types/container"
)

// userHZ is the unit of /proc/stat times: USER_HZ is 100 on every Linux
// architecture the kernel exports to user space.
const userHZ = 100

// Stats takes one sample of a running container's resource usage, as one
// object of `docker stats`: its cgroup's CPU, memory, pids and block I/O
// counters, the host's CPU time (system_cpu_usage, to turn CPU time into a
// percentage) and the traffic of the interfaces in its network namespace.
// PreRead and PreCPUStats are left for the caller, who holds the previous
// sample. A memory limit above the host's memory is reported as the host's
// memory. A container that is not running is Conflict "container <id> is not
// running".
func (m *Manager) Stats(ctx context.Context, ref string) (ctypes.StatsResponse, error) {
	c, err := m.lookup(ref)
	if err != nil {
		return ctypes.StatsResponse{}, err
	}
	m.mu.Lock()
	run, rec := c.run, c.rec
	m.mu.Unlock()
	if run == nil {
		return ctypes.StatsResponse{}, errConflictf("container %s is not running", rec.ID)
	}
	s := ctypes.StatsResponse{ID: rec.ID, Name: "/" + rec.Name, OSType: runtime.GOOS, Read: now()}
	lst, err := run.lc.Stats()
	if err != nil {
		if m.stillRunning(c, run) {
			return ctypes.StatsResponse{}, fmt.Errorf("read cgroup stats of %s: %w", rec.ID, err)
		}
		return ctypes.StatsResponse{}, errConflictf("container %s is not running", rec.ID)
	}
	if cg := lst.CgroupStats; cg != nil {
		s.CPUStats = cpuStats(cg.CpuStats)
		s.MemoryStats = memoryStats(cg.MemoryStats)
		s.PidsStats = ctypes.PidsStats{Current: cg.PidsStats.Current, Limit: cg.PidsStats.Limit}
		s.BlkioStats = blkioStats(cg.BlkioStats)
	}
	if host := hostMemory(); host > 0 && (s.MemoryStats.Limit == 0 || s.MemoryStats.Limit > host) {
		s.MemoryStats.Limit = host
	}
	if s.CPUStats.SystemUsage, s.CPUStats.OnlineCPUs, err = systemCPU("/proc/stat"); err != nil {
		return ctypes.StatsResponse{}, fmt.Errorf("stats of %s: %w", rec.ID, err)
	}
	s.Networks, err = netDevStats(fmt.Sprintf("/proc/%d/net/dev", rec.State.Pid))
	if err != nil {
		if m.stillRunning(c, run) {
			return ctypes.StatsResponse{}, fmt.Errorf("network stats of %s: %w", rec.ID, err)
		}
		return ctypes.StatsResponse{}, errConflictf("container %s is not running", rec.ID)
	}
	return s, nil
}

// stillRunning reports whether run is still c's current run and its init
// lives: a sample that failed because the container exited meanwhile (its
// cgroup or namespace went away before the manager noticed the exit) is "not
// running", not an error.
func (m *Manager) stillRunning(c *container, run *running) bool {
	m.mu.Lock()
	current := c.run == run
	m.mu.Unlock()
	if !current {
		return false
	}
	select {
	case <-run.done:
		return false
	default:
	}
	status, err := run.lc.Status()
	return err == nil && status != libcontainer.Stopped
}

func cpuStats(cs cgroups.CpuStats) ctypes.CPUStats {
	u := cs.CpuUsage
	return ctypes.CPUStats{
		CPUUsage: ctypes.CPUUsage{
			TotalUsage: u.TotalUsage, PercpuUsage: u.PercpuUsage,
			UsageInKernelmode: u.UsageInKernelmode, UsageInUsermode: u.UsageInUsermode,
		},
		ThrottlingData: ctypes.ThrottlingData{
			Periods: cs.ThrottlingData.Periods, ThrottledPeriods: cs.ThrottlingData.ThrottledPeriods,
			ThrottledTime: cs.ThrottlingData.ThrottledTime,
		},
	}
}

// memoryStats keeps memory.stat's keys as they are: on cgroup v1 they are the
// ones the docker CLI expects (it subtracts total_inactive_file from usage).
func memoryStats(ms cgroups.MemoryStats) ctypes.MemoryStats {
	raw := make(map[string]uint64, len(ms.Stats))
	for k, v := range ms.Stats {
		raw[k] = v
	}
	return ctypes.MemoryStats{
		Usage: ms.Usage.Usage, MaxUsage: ms.Usage.MaxUsage, Failcnt: ms.Usage.Failcnt,
		Limit: ms.Usage.Limit, Stats: raw,
	}
}

// blkioStats converts every list, empty ones included: clients index them.
func blkioStats(bs cgroups.BlkioStats) ctypes.BlkioStats {
	conv := func(in []cgroups.BlkioStatEntry) []ctypes.BlkioStatEntry {
		out := make([]ctypes.BlkioStatEntry, len(in))
		for i, e := range in {
			out[i] = ctypes.BlkioStatEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value}
		}
		return out
	}
	return ctypes.BlkioStats{
		IoServiceBytesRecursive: conv(bs.IoServiceBytesRecursive),
		IoServicedRecursive:     conv(bs.IoServicedRecursive),
		IoQueuedRecursive:       conv(bs.IoQueuedRecursive),
		IoServiceTimeRecursive:  conv(bs.IoServiceTimeRecursive),
		IoWaitTimeRecursive:     conv(bs.IoWaitTimeRecursive),
		IoMergedRecursive:       conv(bs.IoMergedRecursive),
		IoTimeRecursive:         conv(bs.IoTimeRecursive),
		SectorsRecursive:        conv(bs.SectorsRecursive),
	}
}

// hostMemory is the node's RAM in bytes, 0 if unknown.
func hostMemory() uint64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// systemCPU reads the host's CPU time in nanoseconds (the sum of the user,
// nice, system, idle, iowait, irq and softirq ticks of the "cpu" line of
// /proc/stat) and the number of CPUs ("cpuN" lines).
func systemCPU(path string) (total uint64, cpus uint32, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("read host CPU time: %w", err)
	}
	defer f.Close()
	return parseProcStat(f)
}

func parseProcStat(r io.Reader) (total uint64, cpus uint32, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	found := false
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || !strings.HasPrefix(fields[0], "cpu") {
			break // the cpu lines come first
		}
		if fields[0] != "cpu" {
			cpus++
			continue
		}
		if len(fields) < 8 {
			return 0, 0, fmt.Errorf("parse /proc/stat: short cpu line %q", sc.Text())
		}
		var ticks uint64
		for _, f := range fields[1:8] {
			v, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("parse /proc/stat: %w", err)
			}
			ticks += v
		}
		total = ticks * (1e9 / userHZ)
		found = true
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("parse /proc/stat: %w", err)
	}
	if !found {
		return 0, 0, errors.New("parse /proc/stat: no cpu line")
	}
	return total, cpus, nil
}

// netDevStats reads the interface counters of a network namespace from a
// /proc/<pid>/net/dev file, keyed by interface name, without the loopback.
func netDevStats(path string) (map[string]ctypes.NetworkStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseNetDev(f)
}

func parseNetDev(r io.Reader) (map[string]ctypes.NetworkStats, error) {
	out := map[string]ctypes.NetworkStats{}
	sc := bufio.NewScanner(r)
	for line := 0; sc.Scan(); line++ {
		name, counters, ok := strings.Cut(sc.Text(), ":")
		if line < 2 || !ok {
			continue // the two header lines
		}
		name = strings.TrimSpace(name)
		if name == "lo" {
			continue
		}
		fields := strings.Fields(counters)
		if len(fields) < 16 {
			return nil, fmt.Errorf("parse net/dev: short line for %s", name)
		}
		var v [16]uint64
		for i := range v {
			n, err := strconv.ParseUint(fields[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("parse net/dev: %s: %w", name, err)
			}
			v[i] = n
		}
		out[name] = ctypes.NetworkStats{
			RxBytes: v[0], RxPackets: v[1], RxErrors: v[2], RxDropped: v[3],
			TxBytes: v[8], TxPackets: v[9], TxErrors: v[10], TxDropped: v[11],
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse net/dev: %w", err)
	}
	return out, nil
}
