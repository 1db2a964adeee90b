package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// dockerdReadyTimeout bounds how long dockerd (and the containerd it starts) may
// take to answer /_ping.
const dockerdReadyTimeout = 90 * time.Second

// StartDockerd starts Docker Engine's dockerd (Debian's docker.io) the way
// StartNode starts shoal: in fresh network and UTS namespaces with the hostname
// name, with data and exec roots, API socket, trust key and cgroup parent of its
// own, and no iptables rules. Its bridge (docker0) lives in its namespace. It is
// stopped, and its containerd, shims, containers, mounts and files removed, when
// the test ends, also when it fails. It exists to compare shoal's answers with
// dockerd's (testenv/conformance).
func StartDockerd(t testing.TB, name string) *Node {
	t.Helper()
	if _, err := exec.LookPath("dockerd"); err != nil {
		t.Fatalf("dockerd is needed (Debian's docker.io): %v", err)
	}
	dir, err := os.MkdirTemp("", "shoal-dockerd-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	m := newMachine(name, dir, "shoal-test-dockerd-"+randomSuffix(), "dockerd", nil)
	m.dockerd = true
	n := &Node{Machine: m, t: t}
	t.Cleanup(n.destroy)
	n.Start()
	return n
}

// LabDockerd is LabOptions.Command for a lab of dockerd nodes: each its own
// data and exec roots, pid file, API socket and cgroup parent, the containerd it
// starts itself (whose root, state and socket go under the data and exec roots),
// no iptables (the node's namespace is its own anyway), and its trust key in the
// node's directory rather than /etc/docker (dockerd 20.10 takes that path from a
// config file only).
var LabDockerd = []string{"sh", "-c", `printf '{"deprecated-key-path": "%s/key.json"}\n' {dir} >{dir}/daemon.json && ` +
	`exec dockerd --config-file {dir}/daemon.json -H unix://{socket} --data-root {data} --exec-root {exec} ` +
	`--pidfile {dir}/dockerd.pid --iptables=false --ip-masq=false --userland-proxy=false --cgroup-parent {cgroup}`}

// dockerdCommand is dockerd's command line in fresh namespaces. The trust key
// goes under the machine's directory (deprecated-key-path), not /etc/docker.
func (m *Machine) dockerdCommand() *exec.Cmd {
	config := filepath.Join(m.Dir, "daemon.json")
	_ = os.WriteFile(config, []byte(fmt.Sprintf(`{"deprecated-key-path": %q}`+"\n", filepath.Join(m.Dir, "key.json"))), 0o644)
	daemon := []string{m.binary,
		"--config-file", config,
		"-H", "unix://" + m.Socket,
		"--data-root", m.DataRoot,
		"--exec-root", m.ExecRoot,
		"--pidfile", filepath.Join(m.Dir, "dockerd.pid"),
		"--iptables=false", "--ip-masq=false", "--userland-proxy=false",
		"--cgroup-parent", m.CgroupParent,
	}
	script := fmt.Sprintf("ip link set lo up && hostname %s && exec %s", shellJoin([]string{m.Name}), shellJoin(daemon))
	return exec.Command("unshare", "--net", "--uts", "sh", "-c", script)
}

// netNSInode is the inode of the process's network namespace, or 0.
func netNSInode(pid int) uint64 {
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return 0
	}
	var ino uint64
	if _, err := fmt.Sscanf(link, "net:[%d]", &ino); err != nil {
		return 0
	}
	return ino
}
