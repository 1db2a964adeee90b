package testenv

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Sandbox holds daemons that testenv does not start itself: moby's integration
// tests start a dockerd of their own per test (testenv/mobysuite gives them a
// wrapper that runs shoal). A command run in the sandbox gets a fresh network
// namespace with only a loopback, which the daemons it starts share, so they
// reach each other on 127.0.0.1 and their bridges and nftables tables stay off
// the host. When the test ends the sandbox removes what they left: processes
// (in its namespaces and in the cgroups named with its prefix), mounts and
// mesh sockets of the data roots under its directory, cgroups, files.
type Sandbox struct {
	// Dir holds everything of the sandbox's daemons; keep what runs there
	// under it (TMPDIR, data roots, sockets).
	Dir string
	// CgroupPrefix starts the name of every cgroup parent the daemons use.
	CgroupPrefix string

	namespaces map[uint64]bool
}

// NewSandbox makes a sandbox that is removed when the test ends.
func NewSandbox(t testing.TB) *Sandbox {
	t.Helper()
	dir, err := os.MkdirTemp("", "sbx-") // short: unix socket paths under it are bounded
	if err != nil {
		t.Fatal(err)
	}
	s := &Sandbox{Dir: dir, CgroupPrefix: "shoal-sbx-" + randomSuffix() + "-", namespaces: map[uint64]bool{}}
	t.Cleanup(func() {
		if err := s.remove(); err != nil {
			t.Errorf("remove sandbox: %v", err)
		}
	})
	return s
}

// Run runs cmd (not started) in a fresh network namespace of the sandbox and
// waits for it; its output goes to out. What it leaves running there is killed
// when it ends.
func (s *Sandbox) Run(ctx context.Context, cmd *exec.Cmd, out io.Writer) error {
	script := "ip link set lo up && exec " + shellJoin(cmd.Args)
	wrapped := exec.CommandContext(ctx, "unshare", "--net", "sh", "-c", script)
	wrapped.Dir, wrapped.Env, wrapped.Stdout, wrapped.Stderr = cmd.Dir, cmd.Env, out, out
	if err := wrapped.Start(); err != nil {
		return fmt.Errorf("run %s in the sandbox: %w", cmd.Path, err)
	}
	ns := s.awaitNamespace(wrapped.Process.Pid)
	err := wrapped.Wait()
	if ns != 0 {
		killInNamespaces(map[uint64]bool{ns: true})
	}
	return err
}

// awaitNamespace returns the inode of the network namespace pid enters (0 if it
// ended first), and remembers it for remove.
func (s *Sandbox) awaitNamespace(pid int) uint64 {
	own := netNSInode(os.Getpid())
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ns := netNSInode(pid)
		if ns == 0 {
			return 0
		}
		if ns != own {
			s.namespaces[ns] = true
			return ns
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0
}

func (s *Sandbox) remove() error {
	killInNamespaces(s.namespaces)
	killCgroup(s.CgroupPrefix + "*")
	// A shoal data root's swarm state names its mesh socket, on the host.
	_ = filepath.WalkDir(s.Dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "state.json" && filepath.Base(filepath.Dir(path)) == "swarm" {
			removeMeshSocket(filepath.Dir(filepath.Dir(path)))
		}
		return nil
	})
	unmountUnder(s.Dir)
	removeCgroup(s.CgroupPrefix + "*")
	return os.RemoveAll(s.Dir)
}
