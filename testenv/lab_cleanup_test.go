package testenv_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-project/shoal/testenv"
)

// A lab that a test started is gone when the test ends: daemons, containers,
// namespaces (and with them the bridge, veths and partition rules), mounts,
// cgroups, files.
func TestLabCloseLeavesNothing(t *testing.T) {
	var traces labTraces
	t.Run("lab", func(t *testing.T) {
		lab := testenv.NewLab(t, testenv.LabOptions{Nodes: 2})
		lab.Partition([]*testenv.Node{lab.Nodes[0]}, []*testenv.Node{lab.Nodes[1]})
		traces = tracesOf(t, lab.Lab, lab.Nodes[0].Machine, lab.Nodes[1].Machine)
		traces.containerPid, traces.container = fakeContainer(t, lab.Nodes[0].Machine)
	})
	traces.assertGone(t)
}

// DestroyLab removes what a crashed lab command left: detached daemons without pid
// files, a lab without its state file, containers, partition rules.
func TestDestroyLabRemovesLeftovers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lab, err := testenv.StartLab(ctx, testenv.LabOptions{Nodes: 2, Detached: true, Binary: testenv.Binary(t)})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(lab.Dir)
	t.Cleanup(func() { _ = testenv.DestroyLab(root, lab.Name) }) // should the test fail first
	machines := lab.Machines()
	if err := lab.Partition(ctx, machines[:1], machines[1:]); err != nil {
		t.Fatal(err)
	}
	traces := tracesOf(t, lab, machines...)
	traces.containerPid, traces.container = fakeContainer(t, machines[1])
	for _, f := range []string{"lab.json", "node1/daemon.pid", "node2/daemon.pid"} {
		if err := os.Remove(filepath.Join(lab.Dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if names, err := testenv.ListLabs(root); err != nil || !slices.Contains(names, lab.Name) {
		t.Fatalf("ListLabs = %v, %v; want %s among them", names, err, lab.Name)
	}

	if err := testenv.DestroyLab(root, lab.Name); err != nil {
		t.Fatal(err)
	}
	traces.assertGone(t)
	if names, err := testenv.ListLabs(root); err != nil || slices.Contains(names, lab.Name) {
		t.Errorf("ListLabs = %v, %v; want %s gone", names, err, lab.Name)
	}
}

// labTraces is what a running lab has on the machine.
type labTraces struct {
	dir string
	// namespaces as /proc/<pid>/ns/* links name them: "net:[4026532281]".
	namespaces []string
	cgroups    []string
	// container is a process that stands for a container of the lab's; it is
	// closed when the process has ended.
	container    <-chan struct{}
	containerPid int
	// pids are the processes there were while the lab ran: a namespace's
	// number can be given to a new namespace once the lab's is gone (other
	// tests make namespaces all the time), so only a process that was there
	// before can be one the lab left.
	pids map[string]bool
}

func tracesOf(t *testing.T, lab *testenv.Lab, machines ...*testenv.Machine) labTraces {
	t.Helper()
	tr := labTraces{dir: lab.Dir}
	var st syscall.Stat_t
	if err := syscall.Stat(lab.SwitchNS(), &st); err != nil {
		t.Fatal(err)
	}
	tr.namespaces = append(tr.namespaces, fmt.Sprintf("net:[%d]", st.Ino))
	for _, m := range machines {
		for _, kind := range []string{"net", "uts"} {
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", m.Pid(), kind))
			if err != nil {
				t.Fatalf("%s: %v", m.Name, err)
			}
			tr.namespaces = append(tr.namespaces, link)
		}
		tr.cgroups = append(tr.cgroups, m.CgroupParent)
	}
	tr.pids = map[string]bool{}
	tasks, _ := filepath.Glob("/proc/[0-9]*/task/[0-9]*")
	for _, task := range tasks {
		tr.pids[task] = true
	}
	return tr
}

// fakeContainer starts a process in a network namespace of its own and in a
// cgroup under the machine's cgroup parent, as the daemon runs a container. The
// channel is closed when the process has ended.
func fakeContainer(t *testing.T, m *testenv.Machine) (int, <-chan struct{}) {
	t.Helper()
	hierarchy := "/sys/fs/cgroup/pids" // cgroup v1
	if _, err := os.Stat(hierarchy); err != nil {
		hierarchy = "/sys/fs/cgroup" // v2
	}
	cg := filepath.Join(hierarchy, m.CgroupParent, "fake-container")
	if err := os.MkdirAll(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "--net", "--", "sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		_ = cmd.Process.Kill()
		t.Fatal(err)
	}
	return cmd.Process.Pid, done
}

func (tr labTraces) assertGone(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(tr.dir); !os.IsNotExist(err) {
		t.Errorf("%s is still there (%v)", tr.dir, err)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(mounts)))
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, tr.dir) {
			t.Errorf("still mounted: %s", line)
		}
		for _, ns := range tr.namespaces {
			if strings.Contains(line, " "+ns+" ") {
				t.Errorf("namespace %s still pinned: %s", ns, line)
			}
		}
	}
	// Every thread: a thread left in a namespace keeps it alive.
	procs, _ := filepath.Glob("/proc/[0-9]*/task/[0-9]*/ns/net")
	uts, _ := filepath.Glob("/proc/[0-9]*/task/[0-9]*/ns/uts")
	procs = append(procs, uts...)
	for _, p := range procs {
		if !tr.pids[filepath.Dir(filepath.Dir(p))] {
			continue // started after the lab was traced
		}
		if link, err := os.Readlink(p); err == nil && slices.Contains(tr.namespaces, link) {
			cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(p)), "comm"))
			t.Errorf("%s is still in namespace %s: %q", p, link, cmdline)
		}
	}
	for _, parent := range tr.cgroups {
		left, _ := filepath.Glob("/sys/fs/cgroup/*/" + parent)
		v2, _ := filepath.Glob("/sys/fs/cgroup/" + parent)
		if left = append(left, v2...); len(left) > 0 {
			t.Errorf("cgroups left: %v", left)
		}
	}
	if tr.container != nil {
		select {
		case <-tr.container:
		case <-time.After(10 * time.Second):
			t.Errorf("the container process %d still runs", tr.containerPid)
			_ = syscall.Kill(tr.containerPid, syscall.SIGKILL)
		}
	}
}
