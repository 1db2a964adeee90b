package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// VIP timing (issue 7): a service vweb of busybox httpd tasks answering with
// their hostnames (the container's short ID), on the bench's overlay network
// (Docker's unencrypted one, since its encrypted one carries nothing in the
// lab: vipNetwork), never on node3; a client in the network namespace of a task on node3
// connects to vweb's VIP every vipEvery and notes which backend answered.
//
//	up_ms    a task added by scaling 1 -> 2 turning running (its task status
//	         timestamp, from the manager) to the first answer from it
//	down_ms  that task's container SIGKILLed (the moment the bench starts the
//	         kill) to the last connection the VIP still sent to it: the last
//	         failed connection before the answers come from the others only
const (
	vipEvery   = 20 * time.Millisecond
	vipTimeout = 200 * time.Millisecond
	webCommand = "mkdir -p /w && hostname >/w/index.html && exec httpd -f -p 80 -h /w"
)

// probe is one connection of the client: when it started and who answered
// ("" when it failed).
type probe struct {
	at     time.Time
	answer string
}

// vipClient connects to addr from a namespace, over and over, until stopped.
type vipClient struct {
	mu     sync.Mutex
	probes []probe
	stop   chan struct{}
	done   chan struct{}
}

// startVIPClient runs the loop on a thread of its own inside the namespace at
// ns; each connection is made there, its answer read elsewhere.
func startVIPClient(ns, addr string) (*vipClient, error) {
	c := &vipClient{stop: make(chan struct{}), done: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		defer close(c.done)
		runtime.LockOSThread()
		target, err := os.Open(ns)
		if err != nil {
			ready <- err
			return
		}
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			target.Close()
			ready <- err
			return
		}
		defer own.Close()
		err = unix.Setns(int(target.Fd()), unix.CLONE_NEWNET)
		target.Close()
		if err != nil {
			ready <- err
			return
		}
		ready <- nil
		c.loop(addr)
		if unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return c, <-ready
}

func (c *vipClient) loop(addr string) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		at := time.Now()
		conn, err := net.DialTimeout("tcp4", addr, vipTimeout)
		if err != nil {
			c.add(probe{at: at})
		} else {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(time.Second))
				_, _ = io.WriteString(conn, "GET / HTTP/1.0\r\n\r\n")
				body, _ := io.ReadAll(conn)
				lines := strings.Split(strings.TrimSpace(string(body)), "\n")
				answer := strings.TrimSpace(lines[len(lines)-1])
				if !strings.HasPrefix(string(body), "HTTP/") {
					answer = ""
				}
				c.add(probe{at: at, answer: answer})
			}()
		}
		if d := vipEvery - time.Since(at); d > 0 {
			time.Sleep(d)
		}
	}
}

func (c *vipClient) add(p probe) {
	c.mu.Lock()
	c.probes = append(c.probes, p)
	c.mu.Unlock()
}

func (c *vipClient) snapshot() []probe {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]probe(nil), c.probes...)
}

func (c *vipClient) close() {
	close(c.stop)
	<-c.done
}

// vipTask is what the bench reads of a task for the VIP measure.
type vipTask struct {
	ID           string
	NodeID       string
	DesiredState string
	Status       struct {
		State           string
		Timestamp       time.Time
		ContainerStatus *struct{ ContainerID string }
	}
}

// vip measures one scale-up and one kill of vweb's added task.
func (b *bench) vip(ctx context.Context, e *engine, run int) error {
	n1 := e.nodes[0]
	a := newAPI(n1.Socket, 5*time.Second)
	first, client, oldAnswer, err := b.vipSetup(ctx, e)
	if err != nil {
		return err
	}
	defer client.close()

	if _, err := e.docker(ctx, n1, "service", "scale", "-d", "vweb=2"); err != nil {
		return err
	}
	var added vipTask
	if err := pollUntil(ctx, 2*time.Minute, 50*time.Millisecond, func() (bool, error) {
		ts, err := vwebTasks(ctx, a)
		for _, t := range running(ts) {
			if t.ID != first.ID {
				added = t
				return true, nil
			}
		}
		return false, err
	}); err != nil {
		return fmt.Errorf("the added task running: %w", err)
	}
	runningAt, cid := added.Status.Timestamp, added.Status.ContainerStatus.ContainerID
	if runningAt.IsZero() {
		runningAt = time.Now()
	}
	// The first task's answer is its hostname; the added task's is any other.
	var firstAt time.Time
	var newAnswer string
	err = pollUntil(ctx, 30*time.Second, 50*time.Millisecond, func() (bool, error) {
		for _, p := range client.snapshot() {
			if p.answer != "" && p.answer != oldAnswer {
				firstAt, newAnswer = p.at, p.answer
				return true, nil
			}
		}
		return false, nil
	})
	upMS := "FAIL"
	if err == nil {
		upMS = ms(firstAt.Sub(runningAt))
	}

	facts, err := e.nodeFacts(ctx, a)
	if err != nil {
		return err
	}
	node := e.node(facts[added.NodeID].host)
	killAt := time.Now()
	if _, err := e.docker(ctx, node, "kill", cid); err != nil {
		return fmt.Errorf("kill %s on %s: %w", cid, node.Name, err)
	}
	killMS := ms(time.Since(killAt))
	// Wait until three seconds pass without a failed connection.
	if err := sleep(ctx, 3*time.Second); err != nil {
		return err
	}
	var lastFail time.Time
	fails := 0
	_ = pollUntil(ctx, 30*time.Second, 200*time.Millisecond, func() (bool, error) {
		fails, lastFail = failuresSince(client.snapshot(), killAt)
		return lastFail.IsZero() || time.Since(lastFail) > 3*time.Second, nil
	})
	downMS := "0.0"
	if !lastFail.IsZero() {
		downMS = ms(lastFail.Sub(killAt))
	}
	probes := client.snapshot()
	b.rec.line("vip", e.name, fmt.Sprintf("run=%d", run), "network="+vipNetwork(e), "up_ms="+upMS, "down_ms="+downMS,
		fmt.Sprintf("fails_after_kill=%d", fails), "kill_cli_ms="+killMS,
		fmt.Sprintf("answers_after_kill=%d", answeredBy(probes, newAnswer, killAt)), fmt.Sprintf("probes=%d", len(probes)),
		"node="+node.Name, "load="+loadavg())
	if upMS == "FAIL" {
		b.rec.note(e.name, "vip", run, "no answer through the VIP from the added task within 30 s")
	}
	return nil
}

// vipSetup brings vweb to one running task (making vweb and the client's
// service vcli on the first run), starts the client in vcli's task, and waits
// for the first answer through the VIP: the task's, answer its hostname.
func (b *bench) vipSetup(ctx context.Context, e *engine) (task vipTask, client *vipClient, answer string, err error) {
	n1, n3 := e.nodes[0], e.nodes[2]
	a := newAPI(n1.Socket, 5*time.Second)
	network := vipNetwork(e)
	if _, err := e.docker(ctx, n1, "service", "inspect", "-f", "{{.ID}}", "vweb"); err != nil {
		if _, err := e.docker(ctx, n1, "service", "create", "-d", "-q", "--no-resolve-image", "--stop-signal", "SIGKILL",
			"--name", "vcli", "--network", network, "--constraint", "node.hostname=="+n3.Name, "busybox", "sleep", "3600"); err != nil {
			return task, nil, "", err
		}
		if _, err := e.docker(ctx, n1, "service", "create", "-d", "-q", "--no-resolve-image", "--stop-signal", "SIGKILL",
			"--name", "vweb", "--network", network, "--constraint", "node.hostname!="+n3.Name, "busybox", "sh", "-c", webCommand); err != nil {
			return task, nil, "", err
		}
	} else if _, err := e.docker(ctx, n1, "service", "scale", "-d", "vweb=1"); err != nil {
		return task, nil, "", err
	}
	if err := pollUntil(ctx, 2*time.Minute, 100*time.Millisecond, func() (bool, error) {
		ts, err := vwebTasks(ctx, a)
		r := running(ts)
		if len(ts) == 1 && len(r) == 1 {
			task = r[0]
			return true, nil
		}
		return false, err
	}); err != nil {
		return task, nil, "", fmt.Errorf("vweb at one task: %w", err)
	}
	cliEnd, err := e.taskEnd(ctx, n3, "vcli", network)
	if err != nil {
		return task, nil, "", err
	}
	out, err := e.docker(ctx, n1, "service", "inspect", "-f", "{{range .Endpoint.VirtualIPs}}{{.Addr}} {{end}}", "vweb")
	if err != nil || len(strings.Fields(out)) == 0 {
		return task, nil, "", fmt.Errorf("vweb's VIP (%q): %v", out, err)
	}
	vip := strings.SplitN(strings.Fields(out)[0], "/", 2)[0]
	client, err = startVIPClient(cliEnd.ns, net.JoinHostPort(vip, "80"))
	if err != nil {
		return task, nil, "", err
	}
	if err := pollUntil(ctx, 30*time.Second, 100*time.Millisecond, func() (bool, error) {
		for _, p := range client.snapshot() {
			if p.answer != "" {
				answer = p.answer
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		client.close()
		return task, nil, "", fmt.Errorf("no answer through the VIP %s from the first task: %w", vip, err)
	}
	return task, client, answer, nil
}

// vwebTasks lists vweb's tasks desired running.
func vwebTasks(ctx context.Context, a *api) ([]vipTask, error) {
	var ts []vipTask
	err := a.get(ctx, "/tasks?filters="+urlFilter(`{"service":{"vweb":true},"desired-state":{"running":true}}`), &ts)
	return ts, err
}

// running keeps the tasks observed running, with a container.
func running(ts []vipTask) []vipTask {
	var r []vipTask
	for _, t := range ts {
		if t.Status.State == "running" && t.Status.ContainerStatus != nil {
			r = append(r, t)
		}
	}
	return r
}

// failuresSince counts the failed connections started after since, and the
// start of the last one.
func failuresSince(probes []probe, since time.Time) (n int, last time.Time) {
	for _, p := range probes {
		if p.at.After(since) && p.answer == "" {
			n++
			if p.at.After(last) {
				last = p.at
			}
		}
	}
	return n, last
}

// answeredBy counts the answers of one backend at or after since.
func answeredBy(probes []probe, answer string, since time.Time) int {
	n := 0
	for _, p := range probes {
		if answer != "" && p.answer == answer && !p.at.Before(since) {
			n++
		}
	}
	return n
}

// vipNetwork is the network of the VIP measure: shoal's overlay; Docker's
// without encryption.
func vipNetwork(e *engine) string {
	if e.name == "docker" {
		return plainNetName
	}
	return netName
}

// urlFilter escapes a filters argument for a query string.
func urlFilter(f string) string { return url.QueryEscape(f) }
