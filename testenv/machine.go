package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// readyTimeout bounds how long a daemon may take to answer /_ping after it starts.
const readyTimeout = 10 * time.Second

// stopTimeout bounds how long Stop waits for SIGTERM before it kills.
const stopTimeout = 20 * time.Second

// Machine is one shoal daemon with everything of its own: directories, cgroup
// parent, and network and UTS namespaces. Its methods return errors, for the lab
// command and TestMain; Node binds a Machine to a test and fails the test instead.
type Machine struct {
	// Name is the machine's name and its hostname.
	Name string
	// Dir holds the machine's data root, exec root, API socket and daemon log.
	Dir string
	// DataRoot and ExecRoot are the daemon's --data-root and --exec-root.
	DataRoot string
	ExecRoot string
	// Socket is the daemon's API socket (DOCKER_HOST=unix://<Socket>).
	Socket string
	// CgroupParent is the daemon's --cgroup-parent, under which its
	// containers' cgroups are.
	CgroupParent string

	binary string
	args   []string
	// template is the daemon's command line with placeholders (LabOptions.
	// Command), used instead of binary and args when set.
	template []string
	// addr is the address on the lab's switch (10.99.0.x); empty for a lone node.
	addr string
	// netNS and utsNS pin the machine's persistent namespaces; empty when every
	// start of the daemon gets fresh ones (StartNode's lone nodes).
	netNS, utsNS string
	// noLogLevel leaves --log-level out of the daemon's flags.
	noLogLevel bool
	// detached daemons outlive the process that starts them (the lab command).
	detached bool
	// dockerd makes the machine run Docker Engine's dockerd instead of shoal
	// (StartDockerd), to compare the two.
	dockerd bool
	// daemonNetNS is the inode of the network namespace a dockerd runs in, so
	// that its containerd and shims, which outlive it, can be found and killed.
	daemonNetNS uint64

	mu   sync.Mutex
	proc *process
}

// newMachine lays out a machine's paths under dir.
func newMachine(name, dir, cgroupParent, binary string, args []string) *Machine {
	return &Machine{
		Name:         name,
		Dir:          dir,
		DataRoot:     filepath.Join(dir, "data"),
		ExecRoot:     filepath.Join(dir, "exec"),
		Socket:       filepath.Join(dir, "api.sock"),
		CgroupParent: cgroupParent,
		binary:       binary,
		args:         args,
	}
}

// Addr is the machine's address on the lab's switch (10.99.0.x), or "" for a
// lone node, which has only its loopback.
func (m *Machine) Addr() string { return m.addr }

func (m *Machine) logPath() string { return filepath.Join(m.Dir, "daemon.log") }
func (m *Machine) pidPath() string { return filepath.Join(m.Dir, "daemon.pid") }

// command is the daemon's command line, entering the machine's namespaces.
func (m *Machine) command() *exec.Cmd {
	if m.dockerd {
		return m.dockerdCommand()
	}
	daemon := []string{m.binary, "daemon",
		"-H", "unix://" + m.Socket,
		"--data-root", m.DataRoot,
		"--exec-root", m.ExecRoot,
		"--cgroup-parent", m.CgroupParent,
	}
	if !m.noLogLevel {
		daemon = append(daemon, "--log-level", "debug")
	}
	daemon = append(daemon, m.args...)
	if len(m.template) > 0 {
		daemon = m.expand(m.template)
	}
	if m.netNS == "" {
		script := fmt.Sprintf("ip link set lo up && hostname %s && exec %s", shellJoin([]string{m.Name}), shellJoin(daemon))
		return exec.Command("unshare", "--net", "--uts", "sh", "-c", script)
	}
	// nsenter execs the daemon in place (it forks only to enter a PID
	// namespace), so the pid we get is the daemon's.
	return exec.Command("nsenter", append([]string{"--net=" + m.netNS, "--uts=" + m.utsNS, "--"}, daemon...)...)
}

// Start starts the daemon (again, after Kill or Stop) and waits until its API
// answers.
func (m *Machine) Start(ctx context.Context) error {
	m.mu.Lock()
	if m.proc != nil && !m.proc.exited() {
		m.mu.Unlock()
		return fmt.Errorf("start %s: already running", m.Name)
	}
	if err := os.MkdirAll(m.Dir, 0o755); err != nil {
		m.mu.Unlock()
		return fmt.Errorf("start %s: %w", m.Name, err)
	}
	logFile, err := os.OpenFile(m.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		m.mu.Unlock()
		return fmt.Errorf("start %s: open log: %w", m.Name, err)
	}
	cmd := m.command()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	proc, err := startProcess(cmd, m.detached)
	logFile.Close() // the daemon has its own copy
	if err != nil {
		m.mu.Unlock()
		return fmt.Errorf("start %s: %w", m.Name, err)
	}
	m.proc = proc
	m.mu.Unlock()
	if err := proc.writePidFile(m.pidPath()); err != nil {
		return fmt.Errorf("start %s: %w", m.Name, err)
	}
	if err := m.waitReady(ctx, proc); err != nil {
		return fmt.Errorf("start %s: %w", m.Name, err)
	}
	return nil
}

// waitReady polls /_ping until it answers or the deadline passes.
func (m *Machine) waitReady(ctx context.Context, proc *process) error {
	timeout := readyTimeout
	if m.dockerd {
		timeout = dockerdReadyTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if proc.exited() {
			return errors.New("daemon exited before it was ready")
		}
		if m.Ping(ctx) == nil {
			if m.dockerd {
				m.daemonNetNS = netNSInode(proc.pid)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("daemon API not ready: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Ping asks the daemon's API for /_ping.
func (m *Machine) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://shoal/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := m.HTTPClient().Do(req)
	if err != nil {
		return fmt.Errorf("ping %s: %w", m.Name, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ping %s: %s", m.Name, resp.Status)
	}
	return nil
}

// HTTPClient talks to the daemon's API socket.
func (m *Machine) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", m.Socket)
		},
	}, Timeout: 30 * time.Second}
}

// Pid is the daemon's process ID (0 when it is not running).
func (m *Machine) Pid() int {
	if p := m.running(); p != nil {
		return p.pid
	}
	return 0
}

// running is the daemon's process, or nil when it is not running.
func (m *Machine) running() *process {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil || m.proc.exited() {
		return nil
	}
	return m.proc
}

// State is "running", "frozen" or "stopped".
func (m *Machine) State() string {
	p := m.running()
	switch {
	case p == nil:
		return "stopped"
	case p.frozen():
		return "frozen"
	default:
		return "running"
	}
}

// Kill stops the daemon with SIGKILL, as a crash would, and waits for it to go;
// its containers keep running.
func (m *Machine) Kill(ctx context.Context) error {
	return m.halt(ctx, syscall.SIGKILL)
}

// Stop stops the daemon with SIGTERM and waits for it to exit; its containers
// keep running. A daemon still there after 20 seconds is killed, and Stop
// says so: a daemon that does not stop when asked is a bug.
func (m *Machine) Stop(ctx context.Context) error {
	return m.halt(ctx, syscall.SIGTERM)
}

func (m *Machine) halt(ctx context.Context, sig syscall.Signal) error {
	m.mu.Lock()
	proc := m.proc
	m.proc = nil
	m.mu.Unlock()
	if proc == nil {
		return nil
	}
	if err := proc.signal(sig); err != nil {
		return fmt.Errorf("stop %s: %w", m.Name, err)
	}
	// A frozen daemon acts on SIGTERM only once it runs again.
	_ = proc.signal(syscall.SIGCONT)
	waitCtx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	var hung error
	if err := proc.wait(waitCtx); err != nil {
		if sig != syscall.SIGKILL {
			hung = fmt.Errorf("stop %s: the daemon did not exit within %s of %s; killed it", m.Name, stopTimeout, sig)
		}
		_ = proc.signal(syscall.SIGKILL)
		if err := proc.wait(context.WithoutCancel(ctx)); err != nil {
			return fmt.Errorf("stop %s: %w", m.Name, err)
		}
	}
	_ = os.Remove(m.pidPath())
	return hung
}

// Restart kills the daemon (SIGKILL) and starts it again on the same state.
func (m *Machine) Restart(ctx context.Context) error {
	if err := m.Kill(ctx); err != nil {
		return err
	}
	return m.Start(ctx)
}

// Freeze stops the daemon with SIGSTOP: it answers nothing, as a hung process
// would, while its containers keep running.
func (m *Machine) Freeze() error {
	p := m.running()
	if p == nil {
		return fmt.Errorf("freeze %s: not running", m.Name)
	}
	if err := p.signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("freeze %s: %w", m.Name, err)
	}
	if err := p.waitFrozen(true); err != nil {
		return fmt.Errorf("freeze %s: %w", m.Name, err)
	}
	return nil
}

// Thaw lets a frozen daemon run again (SIGCONT).
func (m *Machine) Thaw() error {
	p := m.running()
	if p == nil {
		return fmt.Errorf("thaw %s: not running", m.Name)
	}
	if err := p.signal(syscall.SIGCONT); err != nil {
		return fmt.Errorf("thaw %s: %w", m.Name, err)
	}
	if err := p.waitFrozen(false); err != nil {
		return fmt.Errorf("thaw %s: %w", m.Name, err)
	}
	return nil
}

// Reset kills the daemon and its containers, wipes its data and exec roots and
// what it made in its network namespace, and starts it fresh: the same name,
// address and namespaces, nothing else kept.
func (m *Machine) Reset(ctx context.Context) error {
	if err := m.Kill(ctx); err != nil {
		return err
	}
	if err := m.wipe(ctx); err != nil {
		return fmt.Errorf("reset %s: %w", m.Name, err)
	}
	if f, err := os.OpenFile(m.logPath(), os.O_WRONLY|os.O_APPEND, 0); err == nil {
		fmt.Fprintf(f, "--- testenv: reset %s at %s ---\n", m.Name, time.Now().Format(time.RFC3339Nano))
		f.Close()
	}
	return m.Start(ctx)
}

// wipe removes the stopped daemon's containers, state and network leftovers.
func (m *Machine) wipe(ctx context.Context) error {
	killCgroup(m.CgroupParent)
	unmountUnder(m.DataRoot)
	unmountUnder(m.ExecRoot)
	removeCgroup(m.CgroupParent)
	for _, dir := range []string{m.DataRoot, m.ExecRoot, filepath.Join(m.Dir, "docker-config")} {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove %s: %w", dir, err)
		}
	}
	if m.netNS != "" {
		return m.cleanNetNS(ctx)
	}
	return nil
}

// Log is the daemon's output so far.
func (m *Machine) Log() string {
	data, _ := os.ReadFile(m.logPath())
	return string(data)
}
