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

// NetNS is the path of the daemon's network namespace.
func (n *Node) NetNS() string {
	return "/proc/" + strconv.Itoa(n.Pid()) + "/ns/net"
}

// DialContext connects from inside the node's network namespace, as a process on
// the node would: to its loopback, its bridge and its containers' addresses.
func (n *Node) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	path := n.NetNS()
	go func() {
		// The socket is made in the namespace the thread is in; the thread is
		// thrown away afterwards rather than switched back.
		runtime.LockOSThread()
		fd, err := os.Open(path)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer fd.Close()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			ch <- result{err: err}
			return
		}
		if err := unix.Setns(int(fd.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("enter node %s netns: %w", n.Name, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.conn, r.err
}

// HTTPGet fetches url from inside the node's network namespace.
func (n *Node) HTTPGet(ctx context.Context, url string) (*http.Response, error) {
	client := &http.Client{
		Transport: &http.Transport{DialContext: n.DialContext, DisableKeepAlives: true},
		Timeout:   10 * time.Second,
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return client.Do(req)
}

// Command runs a program inside the node's network namespace (nsenter --net, which
// keeps the host's /sys and cgroup mounts, unlike ip netns exec).
func (n *Node) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + n.NetNS(), "--", name}, args...)...)
}
