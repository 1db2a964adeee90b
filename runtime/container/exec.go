package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// ExecConfig describes a process to run in a running container.
type ExecConfig struct {
	Cmd        []string
	Env        []string // added to the container's environment
	User       string   // default: the container's user
	WorkingDir string   // default: the container's working dir
	Privileged bool     // all capabilities
	// Console, when set, gives the process a terminal: its output (stdout and
	// stderr together, as with Docker) goes to stdout.
	Console *Console
	// Started, when set, is told the process's PID once it runs.
	Started func(pid int)
}

// Exec runs a process inside a running container, wiring stdin (may be nil),
// stdout and stderr, and returns its exit code (128+signal if killed). When ctx
// is done the process is killed.
func (m *Manager) Exec(ctx context.Context, ref string, cfg ExecConfig, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	c, err := m.lookup(ref)
	if err != nil {
		return -1, err
	}
	if len(cfg.Cmd) == 0 {
		return -1, errInvalidf("no exec command specified")
	}
	m.mu.Lock()
	run, rec := c.run, c.rec
	m.mu.Unlock()
	if run == nil {
		return -1, errConflictf("container %s is not running", rec.ID)
	}
	if run.paused() {
		return -1, errConflictf("container %s is paused, unpause the container before exec", rec.ID)
	}
	proc, err := execProcess(filepath.Join(c.dir, "rootfs"), rec, cfg)
	if err != nil {
		return -1, err
	}
	var consoleSocket *os.File
	if cfg.Console != nil {
		parent, child, err := cfg.Console.wire(proc)
		if err != nil {
			return 126, fmt.Errorf("exec in %s: %w", rec.Name, err)
		}
		defer parent.Close()
		defer child.Close()
		consoleSocket = parent
	} else {
		proc.Stdin, proc.Stdout, proc.Stderr = stdin, stdout, stderr
	}
	if err := run.lc.Run(proc); err != nil {
		// In the words of containerd's runc shim, which dockerd passes on (and
		// scripts match); a missing executable exits 127 as under moby 28
		// (dockerd 20.10 said 126).
		if isNotFound(err) {
			return 127, invalidError{msg: fmt.Sprintf("OCI runtime exec failed: exec failed: %v: unknown", err)}
		}
		return 126, fmt.Errorf("OCI runtime exec failed: exec failed: %w: unknown", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = proc.Signal(unix.SIGKILL) })
	defer stop()
	if consoleSocket != nil {
		term, err := startTerminal(consoleSocket, stdin, stdout)
		if err != nil {
			_ = proc.Signal(unix.SIGKILL)
			_, _ = proc.Wait()
			return 126, fmt.Errorf("exec in %s: %w", rec.Name, err)
		}
		cfg.Console.attach(term.master)
		defer func() {
			cfg.Console.detach()
			term.finish()
		}()
	}
	if cfg.Started != nil {
		if pid, err := proc.Pid(); err == nil {
			cfg.Started(pid)
		}
	}
	ps, err := proc.Wait()
	if ps == nil {
		return -1, fmt.Errorf("wait for exec in %s: %w", rec.Name, err)
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return -1, fmt.Errorf("wait for exec in %s: %w", rec.Name, err)
	}
	code := exitCode(ps.Sys().(syscall.WaitStatus))
	if ctx.Err() != nil {
		return code, fmt.Errorf("exec in %s: %w", rec.Name, ctx.Err())
	}
	return code, nil
}

// execProcess is the process cfg asks for in container rec (whose rootfs is
// mounted at rootfs): its user, working dir and environment default to the
// container's.
func execProcess(rootfs string, rec record, cfg ExecConfig) (*libcontainer.Process, error) {
	userSpec := rec.Config.User
	if cfg.User != "" {
		userSpec = cfg.User
	}
	workdir := rec.Config.WorkingDir
	if cfg.WorkingDir != "" {
		workdir = cfg.WorkingDir
	}
	proc, err := processFor(rootfs, userSpec, rec.HostConfig.GroupAdd, workdir, mergeEnv(rec.Config.Env, cfg.Env), cfg.Cmd, rec.Config.Hostname)
	if err != nil {
		return nil, err
	}
	if cfg.Privileged {
		all := allCaps()
		proc.Capabilities = &configs.Capabilities{Bounding: all, Effective: all, Permitted: all}
	}
	return proc, nil
}
