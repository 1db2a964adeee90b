package container

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	ctypes "github.com/moby/moby/api/types/container"
)

func TestStatsOfABusyContainer(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	ns := "shoaltest-stats-" + newID()[:6]
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
	ip("-n", ns, "addr", "add", "10.77.0.1/24", "dev", "eth0")
	ip("-n", ns, "link", "set", "eth0", "up")
	ip("-n", ns, "link", "set", "peer0", "up")

	hc := ctypes.HostConfig{}
	hc.Memory = 64 << 20
	id := run(t, m, CreateRequest{
		Name: "stats-burn", HostConfig: hc, NetNSPath: "/run/netns/" + ns,
		Config: ctypes.Config{Cmd: []string{"sh", "-c", "while :; do :; done"}},
	})

	first, err := m.Stats(ctxT(t), "stats-burn")
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if first.ID != id || first.Name != "/stats-burn" || first.OSType != "linux" || first.Read.IsZero() {
		t.Fatalf("identity = %q %q %q %v", first.ID, first.Name, first.OSType, first.Read)
	}
	mem := first.MemoryStats
	if mem.Limit != 64<<20 || mem.Usage == 0 {
		t.Fatalf("memory usage/limit = %d/%d, want >0/%d", mem.Usage, mem.Limit, 64<<20)
	}
	if _, ok := mem.Stats["total_inactive_file"]; !ok {
		t.Fatalf("memory.stat keys %v lack total_inactive_file", mem.Stats)
	}
	if first.PidsStats.Current < 1 {
		t.Fatalf("pids current = %d, want >= 1", first.PidsStats.Current)
	}
	if first.CPUStats.SystemUsage == 0 || first.CPUStats.OnlineCPUs == 0 || len(first.CPUStats.CPUUsage.PercpuUsage) == 0 {
		t.Fatalf("cpu stats = %+v, want host CPU time, online CPUs and per-CPU usage", first.CPUStats)
	}
	if first.BlkioStats.IoServiceBytesRecursive == nil {
		t.Fatal("blkio io_service_bytes_recursive is null, want a list")
	}
	if _, ok := first.Networks["eth0"]; !ok || first.Networks["lo"] != (ctypes.NetworkStats{}) {
		t.Fatalf("networks = %v, want eth0 and no lo", first.Networks)
	}

	// Pinging a neighbour nobody answers for sends ARP requests out of eth0.
	_ = exec.Command("ip", "netns", "exec", ns, "ping", "-c", "2", "-i", "0.2", "-W", "1", "10.77.0.2").Run()
	var later ctypes.StatsResponse
	eventually(t, 20*time.Second, "CPU time and eth0 traffic to grow", func() bool {
		if later, err = m.Stats(ctxT(t), id); err != nil {
			t.Fatalf("Stats: %v", err)
		}
		return later.CPUStats.CPUUsage.TotalUsage > first.CPUStats.CPUUsage.TotalUsage &&
			later.CPUStats.SystemUsage > first.CPUStats.SystemUsage &&
			later.Networks["eth0"].TxPackets > first.Networks["eth0"].TxPackets
	})
}

func TestStatsOfAnExitedContainerIsConflict(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	id := run(t, m, CreateRequest{Name: "stats-done", Config: ctypes.Config{Cmd: []string{"true"}}})
	waitExit(t, m, id)
	_, err := m.Stats(ctxT(t), "stats-done")
	if !isErrType[interface{ Conflict() bool }](err) || err.Error() != "container "+id+" is not running" {
		t.Fatalf("stats of an exited container: %v, want Conflict", err)
	}
	if _, err := m.Stats(ctxT(t), "nope"); !isErrType[interface{ NotFound() bool }](err) {
		t.Fatalf("stats of an unknown container: %v, want NotFound", err)
	}
}

func TestParseProcStatAndNetDev(t *testing.T) {
	total, cpus, err := parseProcStat(strings.NewReader(
		"cpu  100 1 50 800 4 0 5 7 0 0\ncpu0 50 0 25 400 2 0 3 0 0 0\ncpu1 50 1 25 400 2 0 2 0 0 0\nintr 1\n"))
	if err != nil || total != 960*10_000_000 || cpus != 2 {
		t.Fatalf("proc/stat = %d ns, %d cpus, %v; want 9600000000 ns, 2 cpus", total, cpus, err)
	}
	nets, err := parseNetDev(strings.NewReader("Inter-|   Receive |  Transmit\n face |bytes packets|bytes\n" +
		"    lo: 10 1 0 0 0 0 0 0 10 1 0 0 0 0 0 0\n" +
		"  eth0: 2000 20 1 2 0 0 0 0 3000 30 3 4 0 0 0 0\n"))
	want := ctypes.NetworkStats{RxBytes: 2000, RxPackets: 20, RxErrors: 1, RxDropped: 2, TxBytes: 3000, TxPackets: 30, TxErrors: 3, TxDropped: 4}
	if err != nil || len(nets) != 1 || nets["eth0"] != want {
		t.Fatalf("net/dev = %+v, %v; want eth0 %+v", nets, err, want)
	}
}
