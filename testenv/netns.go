package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// NetNS is the path of the machine's network namespace: its pinned namespace in a
// lab (there while the daemon is down), the daemon's own for a lone node.
func (m *Machine) NetNS() string {
	if m.netNS != "" {
		return m.netNS
	}
	return "/proc/" + strconv.Itoa(m.Pid()) + "/ns/net"
}

// inNetNS runs fn on an OS thread that has entered the network namespace at path;
// sockets that fn makes stay in that namespace. The thread goes back to its own
// namespace afterwards, or, should that fail, is thrown away with its goroutine.
// (A thread must not just be thrown away: when it is the main thread, Go keeps it,
// and with it the namespace, for the life of the process.)
func inNetNS(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- func() error {
			restore, err := enterNamespace(path)
			if err != nil {
				return err
			}
			fnErr := fn()
			if err := restore(); err != nil {
				return err // the thread stays locked, and dies
			}
			runtime.UnlockOSThread()
			return fnErr
		}()
	}()
	return <-errc
}

// enterNamespace moves the calling (locked) thread into the network namespace at
// path; restore moves it back.
func enterNamespace(path string) (restore func() error, err error) {
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("open own netns: %w", err)
	}
	target, err := os.Open(path)
	if err != nil {
		orig.Close()
		return nil, fmt.Errorf("open netns: %w", err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		orig.Close()
		return nil, fmt.Errorf("enter netns %s: %w", path, err)
	}
	return func() error {
		defer orig.Close()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("leave netns %s: %w", path, err)
		}
		return nil
	}, nil
}

// DialContext connects from inside the machine's network namespace, as a process
// on the machine would: to its loopback, its bridge, its containers' addresses
// and, in a lab, the other machines.
func (m *Machine) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := inNetNS(m.NetNS(), func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		conn = c
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", m.Name, err)
	}
	return conn, nil
}

// Listen listens inside the machine's network namespace (net.Listen's network and
// address, "tcp" and ":0" say).
func (m *Machine) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := inNetNS(m.NetNS(), func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", m.Name, err)
	}
	return l, nil
}

// ListenPacket is Listen for packet networks ("udp").
func (m *Machine) ListenPacket(network, addr string) (net.PacketConn, error) {
	var c net.PacketConn
	err := inNetNS(m.NetNS(), func() error {
		var err error
		c, err = net.ListenPacket(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", m.Name, err)
	}
	return c, nil
}

// HTTPGet fetches url from inside the machine's network namespace.
func (m *Machine) HTTPGet(ctx context.Context, url string) (*http.Response, error) {
	client := &http.Client{
		Transport: &http.Transport{DialContext: m.DialContext, DisableKeepAlives: true},
		Timeout:   10 * time.Second,
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return client.Do(req)
}

// Command runs a program inside the machine's network namespace (and, in a lab,
// its UTS namespace) with nsenter, which keeps the host's /sys and cgroup mounts,
// unlike ip netns exec.
func (m *Machine) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	enter := []string{"--net=" + m.NetNS()}
	if m.utsNS != "" {
		enter = append(enter, "--uts="+m.utsNS)
	}
	return exec.CommandContext(ctx, "nsenter", append(append(enter, "--", name), args...)...)
}
