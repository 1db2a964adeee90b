package container

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// errUnknownExit explains the exit code of a container that exited while it was
// not our child.
var errUnknownExit = errors.New("exit status unknown: the container was re-adopted after a daemon restart and is not a child of this process")

// watch waits until the container's init exits or the manager closes. pidfd is
// a non-blocking pidfd; the Go poller waits on it, so a watched container costs
// no thread. On exit it reaps with reap (nil for re-adopted containers) and
// records the exit.
func (m *Manager) watch(c *container, run *running, pidfd int, reap func() (int, error)) {
	f := os.NewFile(uintptr(pidfd), "pidfd")
	defer f.Close()
	stop := context.AfterFunc(m.ctx, func() { f.Close() })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		m.log.Error("watch container", "id", c.rec.ID, "err", err)
		return
	}
	m.exits.add(f)
	defer m.exits.remove(f)
	// A pidfd turns readable when the process exits. The readiness the poller
	// saw before this call may have been reset, so ask the kernel directly and
	// let the poller wait only while the process lives. The poller's wake-up
	// can be lost (seen with inits that exit right after exec), so every
	// SIGCHLD also ends the wait (a past read deadline) and the pidfd is asked
	// again.
	for {
		err = rc.Read(func(fd uintptr) bool {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(fds, 0)
			return err != nil && !errors.Is(err, unix.EINTR) || n > 0
		})
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		_ = f.SetReadDeadline(time.Time{})
	}
	if err != nil {
		return // manager closed; the container keeps running
	}
	code, exitErr := 255, errUnknownExit
	if reap != nil {
		code, exitErr = reap()
	}
	m.finishRun(c, run, code, exitErr)
}

// childExits wakes the pidfd watchers of running containers whenever a child
// of this process exits: containers this daemon started are its children, so
// their exit raises SIGCHLD even when the pidfd's own wake-up goes missing.
type childExits struct {
	mu    sync.Mutex
	files map[*os.File]struct{}
}

func newChildExits() *childExits {
	return &childExits{files: map[*os.File]struct{}{}}
}

func (e *childExits) add(f *os.File) {
	e.mu.Lock()
	e.files[f] = struct{}{}
	e.mu.Unlock()
}

func (e *childExits) remove(f *os.File) {
	e.mu.Lock()
	delete(e.files, f)
	e.mu.Unlock()
}

// recheckEvery bounds how long a lost pidfd wake-up can hide the exit of a
// re-adopted container, which is not our child and raises no SIGCHLD.
const recheckEvery = 5 * time.Second

// run ends the current wait of every watcher on each SIGCHLD, and every
// recheckEvery, until ctx is done.
func (e *childExits) run(ctx context.Context) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, unix.SIGCHLD)
	defer signal.Stop(sig)
	recheck := time.NewTicker(recheckEvery)
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
		case <-recheck.C:
		}
		e.mu.Lock()
		for f := range e.files {
			_ = f.SetReadDeadline(time.Unix(1, 0))
		}
		e.mu.Unlock()
	}
}

// finishRun records that the current run of c has ended and releases what the
// run held (cgroup, libcontainer state, rootfs mount).
func (m *Manager) finishRun(c *container, run *running, code int, exitErr error) {
	oom := oomKilled(run.lc)
	if err := run.lc.Destroy(); err != nil {
		m.log.Warn("destroy runtime container", "id", c.rec.ID, "err", err)
	}
	unmountRootfs(c.dir)
	// A stopped container holds no secret: its files go with its run, as
	// Docker's do (RestoreFiles gives them back for a start).
	unmountFiles(c.dir)
	m.logs.drain(c)

	m.mu.Lock()
	st := &c.rec.State
	st.Status = statusExited
	st.Pid, st.PidStart = 0, 0
	st.ExitCode = code
	st.OOMKilled = oom
	st.Error = ""
	if exitErr != nil {
		st.Error = exitErr.Error()
	}
	st.FinishedAt = now()
	if st.Health != nil && st.Health.Status == "starting" {
		st.Health.Status = "unhealthy"
	}
	c.run = nil
	if err := m.persistLocked(c); err != nil {
		m.log.Error("persist exited container", "id", c.rec.ID, "err", err)
	}
	exit := c.lastExit()
	waiters := c.waiters
	c.waiters = nil
	m.mu.Unlock()

	for _, w := range waiters {
		w <- exit
	}
	close(run.done)
	if oom {
		m.emit(c, "oom", 0)
	}
	m.emit(c, "die", code)
	m.logs.notify(c)
}

// oomKilled reports whether the kernel OOM killer killed a task of the
// container's memory cgroup (cgroup v1 memory.oom_control, v2 memory.events).
func oomKilled(lc *libcontainer.Container) bool {
	st, err := lc.State()
	if err != nil {
		return false
	}
	candidates := []string{}
	if p := st.CgroupPaths["memory"]; p != "" {
		candidates = append(candidates, filepath.Join(p, "memory.oom_control"))
	}
	if p := st.CgroupPaths[""]; p != "" {
		candidates = append(candidates, filepath.Join(p, "memory.events"))
	}
	for _, path := range candidates {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), " ")
			if k == "oom_kill" {
				if n, _ := strconv.Atoi(v); n > 0 {
					f.Close()
					return true
				}
			}
		}
		f.Close()
	}
	return false
}

// restore re-adopts c if its init is still the process we started (pid and start
// time match), else records that it exited while the daemon was down.
func (m *Manager) restore(ctx context.Context, c *container) {
	id := c.rec.ID
	lc, err := libcontainer.Load(m.cfg.StateRoot, id)
	if err != nil {
		m.log.Info("container gone while the daemon was down", "id", id, "err", err)
		m.discardRun(c.rec)
		unmountRootfs(c.dir)
		unmountFiles(c.dir)
		m.markExitedOffline(c)
		return
	}
	run := &running{lc: lc, done: make(chan struct{})}
	pidfd, err := unix.PidfdOpen(c.rec.State.Pid, unix.PIDFD_NONBLOCK)
	alive := err == nil
	if alive {
		// Checked after pidfd_open so the pid cannot be reused in between.
		status, serr := lc.Status()
		st, sterr := lc.State()
		alive = serr == nil && sterr == nil && status != libcontainer.Stopped &&
			st.InitProcessPid == c.rec.State.Pid && st.InitProcessStartTime == c.rec.State.PidStart
		if !alive {
			unix.Close(pidfd)
		}
	}
	if !alive {
		m.finishRun(c, run, 255, errUnknownExit)
		return
	}
	m.mu.Lock()
	c.run = run
	m.mu.Unlock()
	m.log.Info("re-adopted running container", "id", id, "pid", c.rec.State.Pid)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.watch(c, run, pidfd, nil)
	}()
	m.startHealth(c, run)
}

// recoverUnrecordedRun handles a crash between starting a container and
// recording it as running: a live run is recorded (and then re-adopted), a dead
// one cleaned up. A run cut off before its process was executed (libcontainer's
// "created": its init waits for an exec that will never come) is cleaned up
// too, so the container is plainly created, never started.
func (m *Manager) recoverUnrecordedRun(c *container) {
	lc, err := libcontainer.Load(m.cfg.StateRoot, c.rec.ID)
	if err != nil {
		// No runtime state: nothing was started, or the daemon died inside
		// libcontainer before it wrote any.
		m.discardRun(c.rec)
		return
	}
	status, serr := lc.Status()
	st, sterr := lc.State()
	if serr != nil || sterr != nil || status == libcontainer.Stopped || status == libcontainer.Created {
		_ = lc.Destroy()
		unmountRootfs(c.dir)
		unmountFiles(c.dir)
		return
	}
	m.log.Info("recording a run the daemon started but did not record", "id", c.rec.ID, "pid", st.InitProcessPid)
	m.mu.Lock()
	defer m.mu.Unlock()
	c.rec.State = runState{
		Status: statusRunning, Pid: st.InitProcessPid, PidStart: st.InitProcessStartTime,
		StartedAt: st.Created.UTC(), RestartCount: c.rec.State.RestartCount,
		Health: initialHealth(c.rec.Config.Healthcheck),
	}
	if err := m.persistLocked(c); err != nil {
		m.log.Error("persist recovered run", "id", c.rec.ID, "err", err)
	}
}

// markExitedOffline records an exit we could not observe.
func (m *Manager) markExitedOffline(c *container) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := &c.rec.State
	st.Status, st.Pid, st.PidStart = statusExited, 0, 0
	st.ExitCode, st.Error, st.FinishedAt = 255, errUnknownExit.Error(), now()
	if err := m.persistLocked(c); err != nil {
		m.log.Error("persist exited container", "id", c.rec.ID, "err", err)
	}
}
