// Package testenv is a lab for end-to-end tests: each node is a real `shoal daemon`
// in its own network and UTS namespace on this machine, with its own data root,
// driven by the real docker CLI. It depends on nothing of shoal but the binary it
// starts, and cleans up everything a node made (processes, mounts, cgroups), even
// when a test fails.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Node is one shoal daemon under test.
type Node struct {
	Name string
	// Dir holds the node's data root, exec root and API socket.
	Dir          string
	DataRoot     string
	ExecRoot     string
	Socket       string
	CgroupParent string

	t    testing.TB
	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

// Options change how a node's daemon starts.
type Options struct {
	// Args are extra `shoal daemon` flags.
	Args []string
}

// StartNode starts a shoal daemon in fresh network and UTS namespaces, with the
// hostname name, and waits until its API answers. The node is stopped and every
// trace of it removed when the test ends.
func StartNode(t testing.TB, name string, opts Options) *Node {
	t.Helper()
	dir, err := os.MkdirTemp("", "shoal-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	suffix := randomSuffix()
	n := &Node{
		Name:         name,
		Dir:          dir,
		DataRoot:     filepath.Join(dir, "data"),
		ExecRoot:     filepath.Join(dir, "exec"),
		Socket:       filepath.Join(dir, "api.sock"),
		CgroupParent: "shoal-test-" + suffix,
		t:            t,
		args:         opts.Args,
	}
	t.Cleanup(n.destroy)
	n.Start()
	return n
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Start starts the node's daemon (again, after Kill) and waits for its API.
func (n *Node) Start() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		n.t.Fatalf("node %s: already running", n.Name)
	}
	logFile, err := os.OpenFile(filepath.Join(n.Dir, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	daemon := append([]string{Binary(n.t), "daemon",
		"-H", "unix://" + n.Socket,
		"--data-root", n.DataRoot,
		"--exec-root", n.ExecRoot,
		"--cgroup-parent", n.CgroupParent,
		"--log-level", "debug",
	}, n.args...)
	script := fmt.Sprintf("ip link set lo up && hostname %s && exec %s", n.Name, shellJoin(daemon))
	cmd := exec.Command("unshare", "--net", "--uts", "sh", "-c", script)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	done, started := make(chan struct{}), make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that forked the daemon ends, and Go
		// ends the thread of a goroutine that exits while locked to it (as
		// DialContext's do): keep the forking thread to this goroutine alone
		// until the daemon has exited.
		runtime.LockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			_ = cmd.Wait()
		}
		close(done)
	}()
	if err := <-started; err != nil {
		logFile.Close()
		n.t.Fatalf("node %s: start daemon: %v", n.Name, err)
	}
	n.cmd, n.log, n.done = cmd, logFile, done
	if err := n.waitReady(10 * time.Second); err != nil {
		n.t.Fatalf("node %s: %v\n%s", n.Name, err, n.Log())
	}
}

// waitReady polls /_ping until it answers or the deadline passes.
func (n *Node) waitReady(timeout time.Duration) error {
	client := n.HTTPClient()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-n.done:
			return fmt.Errorf("daemon exited before it was ready")
		default:
		}
		resp, err := client.Get("http://shoal/_ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("daemon API not ready after %s", timeout)
}

// HTTPClient talks to the node's API socket.
func (n *Node) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", n.Socket)
		},
	}, Timeout: 30 * time.Second}
}

// Pid is the daemon's process ID (0 when it is not running).
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Kill stops the daemon with SIGKILL, as a crash would; its containers keep running.
func (n *Node) Kill() { n.signal(syscall.SIGKILL) }

// Stop stops the daemon with SIGTERM and waits for it to exit.
func (n *Node) Stop() { n.signal(syscall.SIGTERM) }

func (n *Node) signal(sig syscall.Signal) {
	n.t.Helper()
	n.mu.Lock()
	cmd, done, logFile := n.cmd, n.done, n.log
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	logFile.Close()
}

// Restart kills the daemon (SIGKILL) and starts it again on the same state.
func (n *Node) Restart() {
	n.t.Helper()
	n.Kill()
	n.Start()
}

// Log is the daemon's output so far.
func (n *Node) Log() string {
	data, _ := os.ReadFile(filepath.Join(n.Dir, "daemon.log"))
	return string(data)
}

// Docker runs the docker CLI against the node and returns its combined output.
func (n *Node) Docker(args ...string) (string, error) {
	return n.DockerContext(context.Background(), args...)
}

// DockerContext is Docker with a context that bounds the command.
func (n *Node) DockerContext(ctx context.Context, args ...string) (string, error) {
	return n.RunCLI(ctx, "docker", args...)
}

// RunCLI runs a docker CLI binary (another version than the one first on PATH, say)
// against the node and returns its combined output.
func (n *Node) RunCLI(ctx context.Context, cli string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+n.Socket, "DOCKER_CONFIG="+filepath.Join(n.Dir, "docker-config"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", cli, strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// MustDocker is Docker that fails the test on error (with 2 minutes at most).
func (n *Node) MustDocker(args ...string) string {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := n.DockerContext(ctx, args...)
	if err != nil {
		n.t.Fatalf("node %s: %v", n.Name, err)
	}
	return out
}

// shellJoin quotes args for sh -c.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(quoted, " ")
}
