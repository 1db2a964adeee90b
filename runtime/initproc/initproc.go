// Package initproc is the minimal init that runs as PID 1 of a container started
// with --init (Docker's docker-init): it starts the container's command, forwards
// the signals it receives to it, reaps every orphan that the kernel hands to PID 1,
// and exits with the command's status. The shoal binary is bind-mounted into the
// container as /sbin/docker-init and acts as this init when started by that name.
package initproc

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// Name is the file name the init is started as inside a container.
const Name = "docker-init"

// Run starts args (after an optional "--") and supervises it as PID 1. It returns
// the exit status for the init to exit with: the command's own, or 128+signal.
func Run(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "docker-init: no command to run")
		return 2
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "docker-init: %v\n", err)
		return 127
	}
	// Take every signal before the child exists, so none is lost in between.
	signals := make(chan os.Signal, 32)
	signal.Notify(signals)
	pid, err := syscall.ForkExec(path, args, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "docker-init: exec %s: %v\n", args[0], err)
		return 126
	}
	for sig := range signals {
		s, ok := sig.(syscall.Signal)
		if !ok {
			continue
		}
		switch s {
		case syscall.SIGCHLD:
		case syscall.SIGURG: // the Go runtime's own preemption signal
			continue
		default:
			_ = syscall.Kill(pid, s)
			continue
		}
		if status, done := reap(pid); done {
			return status
		}
	}
	return 0
}

// reap collects every exited child; it reports the main command's status once it
// has exited.
func reap(main int) (int, bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err != nil || pid <= 0 {
			return 0, false
		}
		if pid != main {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), true
		}
		return ws.ExitStatus(), true
	}
}
