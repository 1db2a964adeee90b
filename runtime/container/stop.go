package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// Exit is how a run of a container ended.
type Exit struct {
	Code      int       // exit code, 128+signal when killed by a signal
	OOMKilled bool      // the kernel OOM killer killed a task of the container
	Err       error     // why Code may not be the real exit status, if so
	At        time.Time // when the exit was observed
}

const defaultStopTimeout = 10 * time.Second

// Stop sends Config.StopSignal (default SIGTERM) to the init process, waits up to
// timeout (nil means Config.StopTimeout or 10s; negative waits forever), then
// SIGKILL; it returns when the container has exited. Stopping a container that is
// not running is NotModified.
func (m *Manager) Stop(ctx context.Context, ref string, timeout *time.Duration) error {
	c, err := m.lookup(ref)
	if err != nil {
		return err
	}
	c.ops.Lock()
	defer c.ops.Unlock()
	m.mu.Lock()
	run, rec := c.run, c.rec
	if run != nil {
		c.stopped = true
	}
	m.mu.Unlock()
	if run == nil {
		return notModifiedError{msg: "container already stopped"}
	}
	sig, err := parseSignal(rec.Config.StopSignal)
	if err != nil {
		sig = unix.SIGTERM
	}
	grace := defaultStopTimeout
	if rec.Config.StopTimeout != nil {
		grace = time.Duration(*rec.Config.StopTimeout) * time.Second
	}
	if timeout != nil {
		grace = *timeout
	}
	dropped, err := stopSignalDropped(rec.State.Pid, sig, func() error { return run.lc.Signal(sig) })
	if err == nil {
		m.emitSignal(c, "kill", sig)
	}
	if err := run.thawAfterSignal(); err != nil {
		m.log.Warn("thaw paused container to stop it", "id", rec.ID, "err", err)
	}
	var expired <-chan time.Time
	if grace >= 0 {
		t := time.NewTimer(grace)
		defer t.Stop()
		expired = t.C
	}
	var redeliver <-chan time.Time
	if dropped {
		t := time.NewTicker(redeliverPoll)
		defer t.Stop()
		redeliver = t.C
	}
	for {
		select {
		case <-run.done:
			m.emit(c, "stop", 0)
			return nil
		case <-ctx.Done():
			return fmt.Errorf("stop container %s: %w", rec.Name, ctx.Err())
		case <-redeliver:
			if yes, ok := receives(rec.State.Pid, sig); yes || !ok {
				redeliver = nil // once: the process can take it now, or is gone
				if yes && run.lc.Signal(sig) == nil {
					m.log.Debug("stop signal delivered again: the process dropped it before it had a handler", "id", rec.ID, "signal", sig)
				}
			}
		case <-expired:
			return m.killAfterGrace(ctx, c, run, rec.Name)
		}
	}
}

// killAfterGrace sends SIGKILL to a container that outlived its stop grace
// period and waits for it to end.
func (m *Manager) killAfterGrace(ctx context.Context, c *container, run *running, name string) error {
	if err := run.lc.Signal(unix.SIGKILL); err == nil {
		m.emitSignal(c, "kill", unix.SIGKILL)
	}
	select {
	case <-run.done:
	case <-ctx.Done():
		return fmt.Errorf("stop container %s: %w", name, ctx.Err())
	}
	m.emit(c, "stop", 0)
	return nil
}

// Kill sends sig to the container's init process; Conflict if it is not running.
func (m *Manager) Kill(ctx context.Context, ref string, sig syscall.Signal) error {
	c, err := m.lookup(ref)
	if err != nil {
		return err
	}
	if sig == 0 {
		sig = unix.SIGKILL
	}
	m.mu.Lock()
	run, name, stopSignal := c.run, c.rec.Name, c.rec.Config.StopSignal
	if run != nil {
		c.stopped = true
	}
	m.mu.Unlock()
	if run == nil {
		return errConflictf("cannot kill container: %s: container %s is not running", ref, c.rec.ID)
	}
	if err := run.lc.Signal(sig); err != nil {
		if errors.Is(err, libcontainer.ErrNotRunning) {
			return errConflictf("cannot kill container: %s: container %s is not running", ref, c.rec.ID)
		}
		return fmt.Errorf("kill container %s: %w", name, err)
	}
	// A paused container acts on its stop signal or SIGKILL once thawed, as
	// dockerd thaws it for them; other signals wait for docker unpause.
	if stop, err := parseSignal(stopSignal); sig == unix.SIGKILL || (err == nil && sig == stop) {
		if err := run.thawAfterSignal(); err != nil {
			m.log.Warn("thaw killed container", "id", c.rec.ID, "err", err)
		}
	}
	m.emitSignal(c, "kill", sig)
	return nil
}

// Wait returns a channel that receives the exit once the container is not
// running: at once for a container that is not running.
func (m *Manager) Wait(ctx context.Context, ref string) (<-chan Exit, error) {
	c, err := m.lookup(ref)
	if err != nil {
		return nil, err
	}
	ch := make(chan Exit, 1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.run == nil {
		ch <- c.lastExit()
		return ch, nil
	}
	c.waiters = append(c.waiters, ch)
	return ch, nil
}

// Remove deletes the container and its directory. A running container is a
// Conflict unless force, which kills it first.
func (m *Manager) Remove(ctx context.Context, ref string, force bool) error {
	c, err := m.lookup(ref)
	if err != nil {
		return err
	}
	c.ops.Lock()
	defer c.ops.Unlock()
	m.mu.Lock()
	run, rec, removed := c.run, c.rec, c.removed
	m.mu.Unlock()
	if removed {
		return errNoSuchContainer(ref)
	}
	if run != nil {
		if !force {
			return errConflictf("cannot remove container \"/%s\": container is running: stop the container before removing or force remove", rec.Name)
		}
		if err := run.lc.Signal(unix.SIGKILL); err != nil {
			m.log.Warn("kill container for removal", "id", rec.ID, "err", err)
		}
		select {
		case <-run.done:
		case <-ctx.Done():
			return fmt.Errorf("remove container %s: %w", rec.Name, ctx.Err())
		}
	}
	m.mu.Lock()
	c.removed = true
	delete(m.byID, rec.ID)
	delete(m.byName, rec.Name)
	m.mu.Unlock()
	m.logs.remove(c)
	if lc, err := m.loadLibcontainer(rec.ID); err == nil {
		_ = lc.Destroy()
	}
	m.discardRun(rec)
	unmountRootfs(c.dir)
	unmountFiles(c.dir)
	// config.json goes first: a crash mid-way leaves a directory New discards.
	if err := os.Remove(filepath.Join(c.dir, "config.json")); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove container %s: %w", rec.Name, err)
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("remove container %s: %w", rec.Name, err)
	}
	m.emit(c, "destroy", 0)
	m.removeAnonymousVolumes(ctx, rec)
	return nil
}

// parseSignal accepts "SIGTERM", "TERM" or "15".
func parseSignal(s string) (syscall.Signal, error) {
	if s == "" {
		return unix.SIGTERM, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		return syscall.Signal(n), nil
	}
	s = strings.ToUpper(s)
	if !strings.HasPrefix(s, "SIG") {
		s = "SIG" + s
	}
	if sig := unix.SignalNum(s); sig != 0 {
		return sig, nil
	}
	return 0, errInvalidf("invalid signal: %s", s)
}
