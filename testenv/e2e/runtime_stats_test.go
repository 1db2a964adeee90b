package e2e

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/shoal-project/shoal/testenv"
)

// docker top shows a task container's processes and nothing else; docker stats
// shows its memory against the service's limit, its pids and its CPU use.
func TestRuntimeTopStats(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "topstats")
	n.MustDocker("service", "create", "-d", "--name", "sleepy", "--limit-memory", "64m", "--stop-grace-period", "1s",
		"busybox", "sh", "-c", "sleep 1000 & exec sleep 999")
	n.MustDocker("service", "create", "-d", "--name", "burn", "--limit-cpu", "0.5", "--stop-grace-period", "1s",
		"busybox", "sh", "-c", "while :; do :; done")
	c := taskContainer(t, n, "sleepy")
	burner := taskContainer(t, n, "burn")

	// Until sh has exec'd, its own row shows instead of "sleep 999".
	var top []string
	testenv.WaitFor(t, 30*time.Second, "both sleeps in docker top", func() (bool, string) {
		out, err := n.Docker("top", c)
		top = lines(out)
		if err != nil || len(top) == 0 {
			return false, out
		}
		var cmds []string
		for _, row := range top[1:] {
			f := regexp.MustCompile(` {2,}`).Split(row, -1)
			cmds = append(cmds, f[len(f)-1])
		}
		slices.Sort(cmds)
		return slices.Equal(cmds, []string{"sleep 1000", "sleep 999"}), out
	})
	t.Logf("docker top:\n%s", strings.Join(top, "\n"))
	if !regexp.MustCompile(`^UID +PID +PPID +C +STIME +TTY +TIME +CMD$`).MatchString(top[0]) {
		t.Errorf("docker top header = %q", top[0])
	}
	if got := lines(n.MustDocker("top", c, "-o", "pid,comm")); len(got) != 3 ||
		!regexp.MustCompile(`^ *PID +COMMAND$`).MatchString(got[0]) ||
		!strings.HasSuffix(got[1], " sleep") || !strings.HasSuffix(got[2], " sleep") {
		t.Errorf("docker top -o pid,comm = %q", got)
	}

	out := strings.TrimSpace(n.MustDocker("stats", "--no-stream", "--format",
		"{{.Name}} {{.MemUsage}} {{.MemPerc}} {{.PIDs}} {{.NetIO}} {{.BlockIO}}", c))
	t.Logf("docker stats: %s", out)
	m := regexp.MustCompile(`^(\S+) ([\d.]+)([KMG]i?B) / 64MiB ([\d.]+)% (\d+) \S+ / \S+ \S+ / \S+$`).FindStringSubmatch(out)
	if m == nil || m[1] != c || m[5] != "2" {
		t.Fatalf("docker stats = %q, want %s <usage> / 64MiB <%%> 2 <net> <block>", out, c)
	}
	if v, _ := strconv.ParseFloat(m[2], 64); v <= 0 {
		t.Errorf("memory usage %s%s, want more than nothing", m[2], m[3])
	}

	// The raw sample: cgroup v1 counters, the container's eth0, the previous sample.
	resp, err := n.HTTPClient().Get("http://shoal/v1.50/containers/" + c + "/stats?stream=0")
	if err != nil {
		t.Fatal(err)
	}
	var st container.StatsResponse
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.Name != "/"+c || st.MemoryStats.Limit != 64<<20 || st.PidsStats.Current != 2 ||
		st.CPUStats.OnlineCPUs == 0 || st.CPUStats.SystemUsage <= st.PreCPUStats.SystemUsage ||
		st.Read.Sub(st.PreRead) < 500*time.Millisecond || st.Networks["eth0"].RxPackets == 0 {
		t.Errorf("stats JSON (%v) = %+v", err, st)
	}

	// Streaming: a new line a second until the client goes away.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var buf syncBuffer
	cmd := dockerCmd(ctx, n, "stats", "--format", "{{.Name}} {{.PIDs}}", c)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "three docker stats refreshes", func() (bool, string) {
		return strings.Count(buf.String(), c+" 2") >= 3, buf.String()
	})
	cancel()
	_ = cmd.Wait()

	cpu := strings.TrimSpace(n.MustDocker("stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}}", burner))
	t.Logf("docker stats: %s", cpu)
	name, perc, _ := strings.Cut(cpu, " ")
	p, err := strconv.ParseFloat(strings.TrimSuffix(perc, "%"), 64)
	if name != burner || err != nil || p < 5 || p > 60 {
		t.Errorf("docker stats of a CPU burner limited to 0.5 CPU = %q, want 5%%..60%%", cpu)
	}

	id := strings.TrimSpace(n.MustDocker("inspect", "--format", "{{.Id}}", c))
	n.MustDocker("stop", c)
	if out, err := n.Docker("top", c); err == nil || !strings.Contains(out, "container "+id+" is not running") {
		t.Errorf("docker top of a stopped container: err %v output %q", err, out)
	}
	if out := strings.TrimSpace(n.MustDocker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", c)); out != c+" 0B / 0B 0" {
		t.Errorf("docker stats of a stopped container = %q", out)
	}
}
