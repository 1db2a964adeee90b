package container

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"golang.org/x/sys/unix"
)

func TestCapabilities(t *testing.T) {
	tests := []struct {
		name      string
		add, drop []string
		has, not  []string
	}{
		{"default", nil, nil, []string{"CAP_CHOWN", "CAP_KILL"}, []string{"CAP_NET_ADMIN", "CAP_SYS_ADMIN"}},
		{"add without prefix", []string{"net_admin"}, nil, []string{"CAP_NET_ADMIN", "CAP_CHOWN"}, nil},
		{"drop with prefix", nil, []string{"CAP_CHOWN"}, []string{"CAP_KILL"}, []string{"CAP_CHOWN"}},
		{"drop all add one", []string{"NET_BIND_SERVICE"}, []string{"ALL"}, []string{"CAP_NET_BIND_SERVICE"}, []string{"CAP_CHOWN", "CAP_KILL"}},
		{"add all", []string{"ALL"}, []string{"SYS_ADMIN"}, []string{"CAP_SYS_MODULE", "CAP_NET_ADMIN"}, []string{"CAP_SYS_ADMIN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			caps, err := capabilities(tt.add, tt.drop)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.has {
				if !slices.Contains(caps, c) {
					t.Errorf("%s missing from %v", c, caps)
				}
			}
			for _, c := range tt.not {
				if slices.Contains(caps, c) {
					t.Errorf("%s present in %v", c, caps)
				}
			}
		})
	}
	if _, err := capabilities([]string{"BOGUS"}, nil); !isErrType[interface{ InvalidParameter() bool }](err) {
		t.Fatalf("unknown capability: err = %v, want InvalidParameter", err)
	}
}

func TestResourceLimitsAndKernelSettingsApplied(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	hc := ctypes.HostConfig{
		Sysctls: map[string]string{"net.ipv4.ip_forward": "1"},
		CapDrop: []string{"ALL"}, CapAdd: []string{"KILL"},
	}
	pids := int64(20)
	hc.Memory, hc.NanoCPUs, hc.CPUShares, hc.PidsLimit = 32<<20, 500_000_000, 512, &pids
	hc.Ulimits = []*ctypes.Ulimit{{Name: "nofile", Soft: 1234, Hard: 1234}}
	id := run(t, m, CreateRequest{HostConfig: hc, Config: ctypes.Config{Cmd: []string{"sh", "-c",
		`ulimit -n; cat /proc/sys/net/ipv4/ip_forward; grep CapEff /proc/self/status; exec sleep 1000`}}})
	eventually(t, 10*time.Second, "output", func() bool {
		s, _ := logText(t, m, id, LogOptions{})
		return strings.Count(s, "\n") == 3
	})
	text, _ := logText(t, m, id, LogOptions{})
	if want := "1234\n1\nCapEff:\t0000000000000020\n"; text != want { // CAP_KILL is bit 5
		t.Fatalf("ulimit/sysctl/caps = %q, want %q", text, want)
	}
	cg := func(ctrl, file string) string {
		b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", ctrl, env.cgroup, id, file))
		if err != nil {
			t.Fatalf("read cgroup file: %v", err)
		}
		return strings.TrimSpace(string(b))
	}
	checks := map[[2]string]string{
		{"memory", "memory.limit_in_bytes"}: "33554432",
		{"cpu", "cpu.cfs_quota_us"}:         "50000",
		{"cpu", "cpu.cfs_period_us"}:        "100000",
		{"cpu", "cpu.shares"}:               "512",
		{"pids", "pids.max"}:                "20",
	}
	for k, want := range checks {
		if got := cg(k[0], k[1]); got != want {
			t.Errorf("%s/%s = %s, want %s", k[0], k[1], got, want)
		}
	}
}

func TestBindVolumeAndTmpfsMounts(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "in"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ro := t.TempDir()
	id := run(t, m, CreateRequest{
		Config: ctypes.Config{Cmd: []string{"sh", "-c",
			`cat /h/in && echo out > /h/out && echo v > /v/file && echo t > /t/file && grep -q " /t tmpfs" /proc/mounts && echo tmpfs; touch /ro/x || echo ro-ok`}},
		HostConfig: ctypes.HostConfig{
			Binds:  []string{host + ":/h", "data:/v", ro + ":/ro:ro"},
			Mounts: []mount.Mount{{Type: mount.TypeTmpfs, Target: "/t"}},
		},
	})
	if e := waitExit(t, m, id); e.Code != 0 {
		text, _ := logText(t, m, id, LogOptions{})
		t.Fatalf("exit %d: %s", e.Code, text)
	}
	text, _ := logText(t, m, id, LogOptions{Stdout: true})
	if text != "from host\ntmpfs\nro-ok\n" {
		t.Fatalf("stdout = %q", text)
	}
	if b, _ := os.ReadFile(filepath.Join(host, "out")); string(b) != "out\n" {
		t.Fatalf("bind mount write not visible on host: %q", b)
	}
	vol := filepath.Join(filepath.Dir(env.root), "volumes", "data", "file")
	if b, _ := os.ReadFile(vol); string(b) != "v\n" {
		t.Fatalf("volume file %s = %q", vol, b)
	}
	ins, _ := m.Inspect(ctxT(t), id)
	if len(ins.Mounts) != 4 {
		t.Fatalf("inspect mounts = %+v", ins.Mounts)
	}
}

func TestLogStreamsTailLongLinesAndRawSpaceFreed(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	id := run(t, m, CreateRequest{Config: ctypes.Config{Cmd: []string{"sh", "-c",
		`echo out1; echo err1 >&2; echo out2; head -c 40000 /dev/zero | tr '\0' a; echo; i=0; while [ $i -lt 3000 ]; do echo line-$i-padding-padding-padding-padding-padding-padding; i=$((i+1)); done; printf tail-no-newline`}}})
	if e := waitExit(t, m, id); e.Code != 0 {
		t.Fatalf("exit %d", e.Code)
	}
	errText, _ := logText(t, m, id, LogOptions{Stderr: true})
	if errText != "err1\n" {
		t.Fatalf("stderr = %q", errText)
	}
	_, entries := logText(t, m, id, LogOptions{Stdout: true})
	if string(entries[0].Line) != "out1\n" || string(entries[1].Line) != "out2\n" {
		t.Fatalf("first stdout entries = %q %q", entries[0].Line, entries[1].Line)
	}
	long := entries[2:5]
	if len(long[0].Line) != maxLogLine || len(long[1].Line) != maxLogLine || string(long[2].Line) != strings.Repeat("a", 40000-2*maxLogLine)+"\n" {
		t.Fatalf("40000-byte line split into %d, %d, %d bytes", len(long[0].Line), len(long[1].Line), len(long[2].Line))
	}
	if last := entries[len(entries)-1]; string(last.Line) != "tail-no-newline" {
		t.Fatalf("last entry = %q, want the unterminated last line", last.Line)
	}
	_, tail := logText(t, m, id, LogOptions{Stdout: true, Stderr: true, Tail: 2})
	if len(tail) != 2 || string(tail[1].Line) != "tail-no-newline" {
		t.Fatalf("tail 2 = %+v", tail)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(env.root, id, "stdout"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Size < 150_000 || st.Blocks*512 > 64<<10 {
		t.Fatalf("raw stdout: size %d, %d bytes on disk; consumed output should be punched out", st.Size, st.Blocks*512)
	}
}

func TestRestartAppendsToLogs(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	id := run(t, m, CreateRequest{Config: ctypes.Config{Cmd: []string{"sh", "-c", "echo run; echo x >> /state; wc -l < /state"}}})
	waitExit(t, m, id)
	if err := m.Start(ctxT(t), id); err != nil {
		t.Fatal(err)
	}
	waitExit(t, m, id)
	text, _ := logText(t, m, id, LogOptions{})
	if text != "run\n1\nrun\n2\n" {
		t.Fatalf("logs after two runs = %q (rootfs changes must persist across runs)", text)
	}
}

func TestJoinsGivenNetworkNamespace(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	ns := "shoaltest-" + newID()[:8]
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "add", "shveth0", "type", "veth", "peer", "name", "shveth1").CombinedOutput(); err != nil {
		t.Fatalf("add veth pair: %v %s", err, out)
	}
	id := run(t, m, CreateRequest{
		NetNSPath: "/run/netns/" + ns, IPAddress: "10.9.8.7",
		Config: ctypes.Config{Hostname: "joined", Cmd: []string{"sh", "-c", "cat /proc/net/dev; cat /etc/hosts"}},
	})
	waitExit(t, m, id)
	text, _ := logText(t, m, id, LogOptions{})
	if !strings.Contains(text, "shveth0") || !strings.Contains(text, "10.9.8.7\tjoined") {
		t.Fatalf("container did not join the namespace or hosts lacks its address:\n%s", text)
	}
	ins, _ := m.Inspect(ctxT(t), id)
	if ins.NetworkSettings.SandboxKey != "/run/netns/"+ns || len(ins.NetworkSettings.Networks) != 1 {
		t.Fatalf("network settings = %+v", ins.NetworkSettings)
	}
}

// Without an init binary configured, a container asking for --init is refused.
func TestInitWithoutInitBinaryIsInvalidParameter(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	yes := true
	_, err := m.Create(context.Background(), CreateRequest{Config: ctypes.Config{Image: "busybox"}, HostConfig: ctypes.HostConfig{Init: &yes}})
	if !isErrType[interface{ InvalidParameter() bool }](err) {
		t.Fatalf("Init=true: err = %v, want InvalidParameter", err)
	}
	var out bytes.Buffer
	if _, err := m.Exec(context.Background(), "missing", ExecConfig{Cmd: []string{"true"}}, nil, &out, &out); !isErrType[interface{ NotFound() bool }](err) {
		t.Fatalf("exec in missing container: %v", err)
	}
}

// On the host network a container shares the node's network namespace (no
// namespace of its own, no address), its name files and its hostname, as
// dockerd's `--network host` does; inspect shows the host endpoint.
func TestHostNetworkSharesTheNodesNamespace(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	id := run(t, m, CreateRequest{
		Config:     ctypes.Config{Cmd: []string{"sh", "-c", "readlink /proc/self/ns/net; hostname; cat /etc/hosts /etc/resolv.conf"}},
		HostConfig: ctypes.HostConfig{NetworkMode: "host"},
		NetworkID:  "hostnetworkid",
	})
	waitExit(t, m, id)
	text, _ := logText(t, m, id, LogOptions{})
	ns, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	hostname, _ := os.Hostname()
	hosts, _ := os.ReadFile("/etc/hosts")
	resolv, _ := os.ReadFile("/etc/resolv.conf")
	want := ns + "\n" + hostname + "\n" + string(hosts) + string(resolv)
	if text != want {
		t.Fatalf("container's namespace, hostname, hosts and resolv.conf:\n%s\nwant the node's:\n%s", text, want)
	}
	ins, err := m.Inspect(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	ep := ins.NetworkSettings.Networks["host"]
	if ins.HostConfig.NetworkMode != "host" || len(ins.NetworkSettings.Networks) != 1 || ep == nil || ep.NetworkID != "hostnetworkid" || ep.IPAddress.IsValid() {
		t.Fatalf("network mode %q, endpoints %+v: want the host network's only, without an address", ins.HostConfig.NetworkMode, ins.NetworkSettings.Networks)
	}
}
