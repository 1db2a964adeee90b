package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// process is a daemon's process: one this process started (and reaps), or one
// adopted from a pid file that an earlier command wrote (the lab command's `up`
// starts daemons that outlive it; its later commands adopt them).
type process struct {
	pid int
	// start is the process's start time (clock ticks since boot), which tells
	// it apart from a later process that reused the pid.
	start uint64
	// done is closed when a child of this process has been reaped; nil when
	// the process was adopted.
	done chan struct{}
}

// startProcess starts cmd. A detached process gets its own session and
// outlives this one; otherwise it is killed when this process dies.
func startProcess(cmd *exec.Cmd, detached bool) (*process, error) {
	done, started := make(chan struct{}), make(chan error, 1)
	if detached {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		go func() {
			_ = cmd.Wait()
			close(done)
		}()
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		go func() {
			// Pdeathsig fires when the thread that forked the daemon ends, and
			// Go ends the thread of a goroutine that exits while locked to it (as
			// the netns helpers' do): keep the forking thread to this goroutine
			// alone until the daemon has exited.
			runtime.LockOSThread()
			err := cmd.Start()
			started <- err
			if err == nil {
				_ = cmd.Wait()
			}
			close(done)
		}()
		if err := <-started; err != nil {
			return nil, err
		}
	}
	p := &process{pid: cmd.Process.Pid, done: done}
	p.start, _ = procStart(p.pid)
	return p, nil
}

// adoptProcess is the process a pid file names, or nil when that process is gone
// (or the pid now belongs to another process).
func adoptProcess(pid int, start uint64) *process {
	p := &process{pid: pid, start: start}
	if p.exited() {
		return nil
	}
	return p
}

// exited tells whether the process has ended (a zombie has).
func (p *process) exited() bool {
	if p.done != nil {
		select {
		case <-p.done:
			return true
		default:
			return false
		}
	}
	state, start, err := procStat(p.pid)
	return err != nil || state == 'Z' || state == 'X' || start != p.start
}

// frozen tells whether the process is stopped by a signal (SIGSTOP).
func (p *process) frozen() bool {
	state, start, err := procStat(p.pid)
	return err == nil && start == p.start && (state == 'T' || state == 't')
}

// signal sends sig unless the process has already ended.
func (p *process) signal(sig syscall.Signal) error {
	if p.exited() {
		return nil
	}
	if err := syscall.Kill(p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %d: %w", p.pid, err)
	}
	return nil
}

// wait waits until the process has ended.
func (p *process) wait(ctx context.Context) error {
	if p.done != nil {
		select {
		case <-p.done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("wait for pid %d: %w", p.pid, ctx.Err())
		}
	}
	// Not our child: a pidfd becomes readable when the process exits.
	fd, err := unix.PidfdOpen(p.pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return fmt.Errorf("wait for pid %d: %w", p.pid, err)
	}
	defer unix.Close(fd)
	if p.exited() { // the pid may have been reused before the pidfd was opened
		return nil
	}
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("wait for pid %d: %w", p.pid, err)
		}
		if n > 0 {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("wait for pid %d: %w", p.pid, ctx.Err())
		}
	}
}

// waitFrozen polls until frozen() is want, for at most a second.
func (p *process) waitFrozen(want bool) error {
	deadline := time.Now().Add(time.Second)
	for p.frozen() != want {
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d: frozen is still %t", p.pid, !want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// procStat reads a process's state letter and start time from /proc/<pid>/stat.
func procStat(pid int) (state byte, start uint64, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); field 22 (starttime) is fields[19].
	if len(fields) < 20 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return fields[0][0], start, nil
}

func procStart(pid int) (uint64, error) {
	_, start, err := procStat(pid)
	return start, err
}

// writePidFile records the process in path as "<pid> <start time>".
func (p *process) writePidFile(path string) error {
	if err := os.WriteFile(path, []byte(fmt.Sprintf("%d %d\n", p.pid, p.start)), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}

// readPidFile adopts the process that path names, or returns nil.
func readPidFile(path string) *process {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var pid int
	var start uint64
	if _, err := fmt.Sscanf(string(data), "%d %d", &pid, &start); err != nil || pid <= 0 {
		return nil
	}
	return adoptProcess(pid, start)
}
