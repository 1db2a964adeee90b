package container

import (
	"context"
	"errors"
	"fmt"
	"time"

	ctypes "github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runc/libcontainer"
)

// Pause freezes every process of a running container through its cgroup
// freezer (docker pause). Conflict when the container is not running or is
// already paused. The frozen state lives in the cgroup, so it outlives a
// daemon restart and needs no record of its own.
func (m *Manager) Pause(ctx context.Context, ref string) error {
	c, err := m.lookup(ref)
	if err != nil {
		return err
	}
	m.mu.Lock()
	run, id := c.run, c.rec.ID
	m.mu.Unlock()
	if run == nil {
		return errConflictf("Container %s is not running", id)
	}
	if run.paused() {
		return errConflictf("Container %s is already paused", id)
	}
	if err := run.lc.Pause(); err != nil {
		if errors.Is(err, libcontainer.ErrNotRunning) {
			return errConflictf("Container %s is not running", id)
		}
		return fmt.Errorf("pause container %s: %w", id, err)
	}
	m.emit(c, "pause", 0)
	return nil
}

// Unpause thaws a paused container (docker unpause). Conflict when it is not
// paused (or not running).
func (m *Manager) Unpause(ctx context.Context, ref string) error {
	c, err := m.lookup(ref)
	if err != nil {
		return err
	}
	m.mu.Lock()
	run, id := c.run, c.rec.ID
	m.mu.Unlock()
	if run == nil || !run.paused() {
		return errConflictf("Container %s is not paused", id)
	}
	if err := run.lc.Resume(); err != nil {
		if errors.Is(err, libcontainer.ErrNotPaused) {
			return errConflictf("Container %s is not paused", id)
		}
		return fmt.Errorf("unpause container %s: %w", id, err)
	}
	m.emit(c, "unpause", 0)
	return nil
}

// paused reports whether the run's cgroup is frozen. libcontainer reads the
// freezer state from the cgroup each time, so this holds across restarts and
// when someone else froze or thawed the cgroup.
func (r *running) paused() bool {
	st, err := r.lc.Status()
	return err == nil && st == libcontainer.Paused
}

// thawAfterSignal lets a paused container handle the signal just sent to it,
// as dockerd does when it stops a paused container: a frozen process acts on
// no signal, not even SIGKILL under cgroup v1, until it is thawed.
func (r *running) thawAfterSignal() error {
	if !r.paused() {
		return nil
	}
	if err := r.lc.Resume(); err != nil && !errors.Is(err, libcontainer.ErrNotPaused) {
		return fmt.Errorf("thaw paused container: %w", err)
	}
	return nil
}

// shownStatus is the state inspect and docker ps show: "paused" for a running
// container whose cgroup is frozen (Docker keeps Running true as well).
func shownStatus(st ctypes.ContainerState, paused bool) ctypes.ContainerState {
	if paused && st == statusRunning {
		return ctypes.StatePaused
	}
	return st
}

// pausedStatusLine is the STATUS column of docker ps for a paused container,
// "Up 5 minutes (Paused)": as with dockerd, it hides the health status.
func pausedStatusLine(st runState, at time.Time) string {
	return "Up " + humanDuration(at.Sub(st.StartedAt)) + " (Paused)"
}
