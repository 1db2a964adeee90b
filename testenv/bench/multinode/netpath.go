package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// An endpoint is one end of a measured path: a network namespace (a task's, by
// its pid, or a lab node's) and the IPv4 address the other end reaches it at.
type endpoint struct {
	ns   string // /proc/<pid>/ns/net or a node's pinned namespace
	addr string
}

// inNS runs fn on a thread inside the network namespace at path. Sockets made by
// fn stay in that namespace. If the thread cannot go back, it stays locked and
// dies with its goroutine.
func inNS(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer own.Close()
		target, err := os.Open(path)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter %s: %w", path, err)
			return
		}
		fnErr := fn()
		if err := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		runtime.UnlockOSThread()
		errc <- fnErr
	}()
	return <-errc
}

// listenIn opens a TCP listener on port in the namespace at path.
func listenIn(path string, port int) (net.Listener, error) {
	var l net.Listener
	err := inNS(path, func() error {
		var err error
		l, err = net.Listen("tcp4", ":"+strconv.Itoa(port))
		return err
	})
	return l, err
}

// dialIn connects to addr from the namespace at path.
func dialIn(ctx context.Context, path, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := inNS(path, func() error {
		var err error
		d := net.Dialer{Timeout: timeout}
		c, err = d.DialContext(ctx, "tcp4", addr)
		return err
	})
	return c, err
}

// iperf3 measures one TCP stream from client to server for secs seconds with
// iperf3, both run in their namespaces with nsenter; it returns Mbit/s as the
// receiver counted them.
func iperf3(ctx context.Context, server, client endpoint, secs int) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs+25)*time.Second)
	defer cancel()
	srv := exec.CommandContext(ctx, "nsenter", "--net="+server.ns, "--", "iperf3", "-s", "-1", "-p", "5201")
	var srvOut bytes.Buffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		return 0, err
	}
	defer func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
	}()
	time.Sleep(300 * time.Millisecond)
	out, err := exec.CommandContext(ctx, "nsenter", "--net="+client.ns, "--", "iperf3", "-c", server.addr, "-p", "5201",
		"-t", strconv.Itoa(secs), "-J", "--connect-timeout", "5000").Output()
	var res struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		if err != nil {
			return 0, fmt.Errorf("iperf3: %w", err)
		}
		return 0, fmt.Errorf("iperf3: %w", jerr)
	}
	if res.Error != "" {
		return 0, errors.New("iperf3: " + res.Error)
	}
	if err != nil {
		return 0, fmt.Errorf("iperf3: %w", err)
	}
	return res.End.SumReceived.BitsPerSecond / 1e6, nil
}

// goStream is the fallback when iperf3 is missing: one TCP stream of 128 KiB
// writes for d, timed until the receiver has read everything; Mbit/s.
func goStream(ctx context.Context, server, client endpoint, d time.Duration) (float64, error) {
	l, err := listenIn(server.ns, 5202)
	if err != nil {
		return 0, err
	}
	defer l.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	c, err := dialIn(ctx, client.ns, net.JoinHostPort(server.addr, "5202"), 5*time.Second)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 128<<10)
	start := time.Now()
	for time.Since(start) < d {
		if _, err := c.Write(buf); err != nil {
			c.Close()
			return 0, err
		}
	}
	c.Close()
	n := <-got
	if n < 0 {
		return 0, errors.New("receiver failed")
	}
	return float64(n) * 8 / 1e6 / time.Since(start).Seconds(), nil
}

// throughput uses iperf3 when it is installed, else goStream; tool names which.
func throughput(ctx context.Context, server, client endpoint, secs int) (mbps float64, tool string, err error) {
	if _, err := exec.LookPath("iperf3"); err == nil {
		mbps, err := iperf3(ctx, server, client, secs)
		return mbps, "iperf3", err
	}
	mbps, err = goStream(ctx, server, client, time.Duration(secs)*time.Second)
	return mbps, "go", err
}

// pingPong measures round trips of one byte over one TCP connection (Nagle
// off) from client to server: n round trips after 50 unmeasured ones; it
// returns them in microseconds, sorted.
func pingPong(ctx context.Context, server, client endpoint, n int) ([]float64, error) {
	l, err := listenIn(server.ns, 5203)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	c, err := dialIn(ctx, client.ns, net.JoinHostPort(server.addr, "5203"), 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	b := []byte{1}
	var rtts []float64
	for i := 0; i < n+50; i++ {
		t0 := time.Now()
		if _, err := c.Write(b); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return nil, err
		}
		if i >= 50 {
			rtts = append(rtts, float64(time.Since(t0).Nanoseconds())/1000)
		}
	}
	sort.Float64s(rtts)
	return rtts, nil
}

// percentile of sorted xs (nearest rank).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p/100*float64(len(sorted))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}
