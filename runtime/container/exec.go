package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// ExecConfig describes a process to run in a running container.
type ExecConfig struct {
	Cmd        []string
	Env        []string // added to the container's environment
	User       string   // default: the container's user
	WorkingDir string   // default: the container's working dir
	Tty        bool     // not supported yet: the process runs without a terminal
	Privileged bool     // all capabilities
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
	userSpec := rec.Config.User
	if cfg.User != "" {
		userSpec = cfg.User
	}
	workdir := rec.Config.WorkingDir
	if cfg.WorkingDir != "" {
		workdir = cfg.WorkingDir
	}
	rootfs := filepath.Join(c.dir, "rootfs")
	proc, err := processFor(rootfs, userSpec, workdir, mergeEnv(rec.Config.Env, cfg.Env), cfg.Cmd, rec.Config.Hostname)
	if err != nil {
		return -1, err
	}
	if cfg.Privileged {
		all := allCaps()
		proc.Capabilities = &configs.Capabilities{Bounding: all, Effective: all, Permitted: all}
	}
	proc.Stdin, proc.Stdout, proc.Stderr = stdin, stdout, stderr
	if err := run.lc.Run(proc); err != nil {
		if isNotFound(err) {
			return 127, invalidError{msg: fmt.Sprintf("exec in %s: %v", rec.Name, err)}
		}
		return 126, fmt.Errorf("exec in %s: %w", rec.Name, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = proc.Signal(unix.SIGKILL) })
	defer stop()
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
