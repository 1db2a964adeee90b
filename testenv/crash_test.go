package testenv_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/testenv"
)

// A lab whose nodes run a command of the caller's: the placeholders name each
// node's own paths and address, and the command survives in the lab's state.
func TestLabCommand(t *testing.T) {
	binary := testenv.Binary(t)
	lab := testenv.NewLab(t, testenv.LabOptions{Nodes: 2, Command: []string{"sh", "-c",
		"echo {name} {addr} >{dir}/who && exec '" + binary + "' daemon -H unix://{socket} " +
			"--data-root {data} --exec-root {exec} --cgroup-parent {cgroup}"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, n := range lab.Nodes {
		who, err := os.ReadFile(filepath.Join(n.Dir, "who"))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.TrimSpace(string(who)), n.Name+" "+n.Addr(); got != want {
			t.Errorf("%s: the command saw %q, want %q", n.Name, got, want)
		}
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(n.Pid()) + "/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		for _, want := range []string{"unix://" + n.Socket, n.DataRoot, n.ExecRoot, n.CgroupParent} {
			if !slices.Contains(args, want) {
				t.Errorf("%s: the daemon (pid %d) runs %q, without %q", n.Name, n.Pid(), args, want)
			}
		}
		if err := n.Ping(ctx); err != nil {
			t.Error(err)
		}
	}
	// Another process opens the lab and starts a node with the same command.
	n2 := lab.Nodes[1]
	n2.Kill()
	opened, err := testenv.OpenLab(filepath.Dir(lab.Lab.Dir), lab.Lab.Name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := opened.Machine(n2.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Kill(context.Background()) }()
	if err := m.Ping(ctx); err != nil {
		t.Error(err)
	}
}

// Processes lists a node's daemon and what runs in its namespaces, not its
// containers; Crash kills all three kinds, and the node starts again.
func TestMachineCrash(t *testing.T) {
	lab := testenv.NewLab(t, testenv.LabOptions{Nodes: 1})
	n := lab.Nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	helper := n.Command(ctx, "sleep", "300") // in the node's namespaces
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	helperDone := make(chan struct{})
	go func() { _ = helper.Wait(); close(helperDone) }()

	// A process in the node's containers' cgroups stands for a container.
	cgroup := "/sys/fs/cgroup/" + n.CgroupParent + "/crashtest"
	if _, err := os.Stat("/sys/fs/cgroup/pids"); err == nil {
		cgroup = "/sys/fs/cgroup/pids/" + n.CgroupParent + "/crashtest"
	}
	if err := os.MkdirAll(cgroup, 0o755); err != nil {
		t.Fatal(err)
	}
	container := exec.Command("sleep", "300")
	if err := container.Start(); err != nil {
		t.Fatal(err)
	}
	containerDone := make(chan struct{})
	go func() { _ = container.Wait(); close(containerDone) }()
	if err := os.WriteFile(filepath.Join(cgroup, "cgroup.procs"), []byte(strconv.Itoa(container.Process.Pid)), 0o644); err != nil {
		_ = container.Process.Kill()
		t.Fatal(err)
	}

	procs := n.Processes()
	if !slices.Contains(procs, n.Pid()) || !slices.Contains(procs, helper.Process.Pid) {
		t.Errorf("Processes() = %v, want the daemon %d and the helper %d", procs, n.Pid(), helper.Process.Pid)
	}
	if slices.Contains(procs, container.Process.Pid) {
		t.Errorf("Processes() = %v lists the container's process %d", procs, container.Process.Pid)
	}

	if err := n.Crash(ctx); err != nil {
		t.Fatal(err)
	}
	if s := n.State(); s != "stopped" {
		t.Errorf("after Crash the daemon is %s", s)
	}
	for what, done := range map[string]chan struct{}{"helper": helperDone, "container": containerDone} {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("the %s survived Crash", what)
		}
	}
	n.Start()
	if err := n.Ping(ctx); err != nil {
		t.Error(err)
	}
}
