package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoal-project/shoal/testenv"
)

// apiPrefix pins an API version both engines speak (dockerd 20.10 tops out at 1.41).
const apiPrefix = "/v1.41"

// Lab names: fixed, so that cleanup finds what a killed run left.
var labNames = map[string]string{"shoal": "bmshoal", "docker": "bmdocker"}

// engine is one engine's lab: five nodes of one swarm.
type engine struct {
	name  string // "shoal" or "docker"
	cli   string // the docker CLI
	lab   *testenv.Lab
	nodes []*testenv.Machine
	image string // the busybox archive loaded on every node

	workerToken, managerToken string

	// brokenErr says why the engine's swarm could not be mended after a
	// failed run; it sits out the rest of the bench.
	brokenErr error
}

func (e *engine) broken() bool   { return e.brokenErr != nil }
func (e *engine) fail(err error) { e.brokenErr = err }

// mend brings the swarm back after a failed run: every stopped node started
// again, every service but fo removed, all nodes ready.
func (e *engine) mend(ctx context.Context) error {
	for _, m := range e.nodes {
		if m.State() == "stopped" {
			if err := m.Start(ctx); err != nil {
				return err
			}
		}
	}
	var errs []error
	for _, m := range e.nodes[:3] {
		if err := e.waitHealthy(ctx, m, len(e.nodes), 3, 3*time.Minute); err != nil {
			errs = append(errs, err)
			continue
		}
		names, err := e.docker(ctx, m, "service", "ls", "--format", "{{.Name}}")
		if err != nil {
			return err
		}
		for _, name := range strings.Fields(names) {
			if name != "fo" {
				if err := e.removeService(ctx, m, name, 3*time.Minute); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return errors.Join(errs...)
}

// startEngine starts the engine's lab of n nodes, removing a leftover lab of the
// same name first.
func startEngine(ctx context.Context, name, shoalBinary, cli, image string, n int) (*engine, error) {
	opts := testenv.LabOptions{Nodes: n, Name: labNames[name]}
	switch name {
	case "shoal":
		// The lab's daemons log at debug level; a benchmark runs them at the
		// default level, as the single-node bench does (the later flag wins).
		opts.Binary, opts.Args = shoalBinary, []string{"--log-level", "info"}
	case "docker":
		opts.Command = testenv.LabDockerd
	default:
		return nil, fmt.Errorf("unknown engine %q", name)
	}
	_ = testenv.DestroyLab("", opts.Name)
	lab, err := testenv.StartLab(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &engine{name: name, cli: cli, lab: lab, nodes: lab.Machines(), image: image}, nil
}

// node is the engine's node called name (node1 ...).
func (e *engine) node(name string) *testenv.Machine {
	for _, m := range e.nodes {
		if m.Name == name {
			return m
		}
	}
	panic("no node " + name)
}

// docker runs the docker CLI against node m, for at most two minutes.
func (e *engine) docker(ctx context.Context, m *testenv.Machine, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := m.RunCLI(ctx, e.cli, args...)
	return strings.TrimSpace(out), err
}

// loadImage loads the busybox archive on node m.
func (e *engine) loadImage(ctx context.Context, m *testenv.Machine) error {
	_, err := e.docker(ctx, m, "load", "-i", e.image)
	return err
}

// joinCommand is the `docker swarm join` arguments for node m.
func (e *engine) joinArgs(m *testenv.Machine, manager bool) []string {
	token := e.workerToken
	if manager {
		token = e.managerToken
	}
	return []string{"swarm", "join", "--token", token, "--advertise-addr", m.Addr(), e.nodes[0].Addr() + ":2377"}
}

// setupSwarm makes the swarm: node1 inits it, the next managers-1 nodes join as
// managers, the rest as workers; every node loads the busybox image. It logs how
// long each step took.
func (e *engine) setupSwarm(ctx context.Context, rec *recorder, managers int) error {
	n1 := e.nodes[0]
	t0 := time.Now()
	if _, err := e.docker(ctx, n1, "swarm", "init", "--advertise-addr", n1.Addr()); err != nil {
		return err
	}
	rec.line("setup", e.name, "step=init", "ms="+ms(time.Since(t0)))
	var err error
	if e.workerToken, err = e.docker(ctx, n1, "swarm", "join-token", "-q", "worker"); err != nil {
		return err
	}
	if e.managerToken, err = e.docker(ctx, n1, "swarm", "join-token", "-q", "manager"); err != nil {
		return err
	}
	for i, m := range e.nodes {
		t0 := time.Now()
		if err := e.loadImage(ctx, m); err != nil {
			return err
		}
		rec.line("setup", e.name, "step=load", "node="+m.Name, "ms="+ms(time.Since(t0)))
		if i == 0 {
			continue
		}
		t0 = time.Now()
		if _, err := e.docker(ctx, m, e.joinArgs(m, i < managers)...); err != nil {
			return err
		}
		rec.line("setup", e.name, "step=join", "node="+m.Name, fmt.Sprintf("manager=%t", i < managers), "ms="+ms(time.Since(t0)))
	}
	return e.waitHealthy(ctx, n1, len(e.nodes), managers, 2*time.Minute)
}

// waitHealthy waits until node m's API lists count nodes, all ready, managers of
// them managers, all reachable, one the leader.
func (e *engine) waitHealthy(ctx context.Context, m *testenv.Machine, count, managers int, timeout time.Duration) error {
	a := newAPI(m.Socket, 5*time.Second)
	var last string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		nodes, err := a.nodes(ctx)
		if err != nil {
			last = err.Error()
		} else {
			ready, mgrs, reachable, leaders := 0, 0, 0, 0
			for _, n := range nodes {
				if n.Status.State == "ready" {
					ready++
				}
				if n.ManagerStatus != nil {
					mgrs++
					if n.ManagerStatus.Reachability == "reachable" {
						reachable++
					}
					if n.ManagerStatus.Leader {
						leaders++
					}
				}
			}
			if len(nodes) == count && ready == count && mgrs == managers && reachable == managers && leaders == 1 {
				return nil
			}
			last = fmt.Sprintf("%d nodes, %d ready, %d managers, %d reachable, %d leaders", len(nodes), ready, mgrs, reachable, leaders)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s: swarm not healthy after %s (as %s sees it): %s", e.name, timeout, m.Name, last)
}

// leader names the leader as manager m sees it ("" when none).
func (e *engine) leader(ctx context.Context, m *testenv.Machine) (string, error) {
	nodes, err := newAPI(m.Socket, 5*time.Second).nodes(ctx)
	if err != nil {
		return "", err
	}
	for _, n := range nodes {
		if n.ManagerStatus != nil && n.ManagerStatus.Leader {
			return n.Description.Hostname, nil
		}
	}
	return "", nil
}

// removeService removes a service (through node m) and waits until no node has
// a container of it left.
func (e *engine) removeService(ctx context.Context, m *testenv.Machine, name string, timeout time.Duration) error {
	if out, err := e.docker(ctx, m, "service", "rm", name); err != nil && !strings.Contains(out, "not found") {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		left := 0
		for _, n := range e.nodes {
			if n.State() != "running" {
				continue
			}
			c, err := newAPI(n.Socket, 5*time.Second).containers(ctx, name)
			if err != nil {
				left++
				continue
			}
			left += c
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d containers of %s left after %s", e.name, left, name, timeout)
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
}

// saveLogs appends every node's daemon log to prefix-<engine>.log.
func (e *engine) saveLogs(prefix string) {
	if prefix == "" {
		return
	}
	f, err := os.OpenFile(prefix+"-"+e.name+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	for _, m := range e.nodes {
		fmt.Fprintf(f, "===== %s %s =====\n", e.name, m.Name)
		io.WriteString(f, m.Log())
	}
}

// close removes the engine's lab and all it started.
func (e *engine) close() error {
	if e == nil || e.lab == nil {
		return nil
	}
	return e.lab.Close()
}

// cleanupLabs removes the labs a killed run left behind.
func cleanupLabs() error {
	var errs []error
	for _, name := range labNames {
		if _, err := os.Stat(filepath.Join(testenv.DefaultLabRoot, name)); err == nil {
			errs = append(errs, testenv.DestroyLab("", name))
		}
	}
	return errors.Join(errs...)
}

// api talks HTTP to one engine's API socket.
type api struct{ c *http.Client }

func newAPI(sock string, timeout time.Duration) *api {
	var d net.Dialer
	return &api{c: &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "unix", sock)
			},
			DisableKeepAlives: true,
		},
	}}
}

// do sends a request and decodes a JSON answer into v (when v is not nil).
func (a *api) do(ctx context.Context, method, path string, body, v any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://engine"+apiPrefix+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if v == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (a *api) get(ctx context.Context, path string, v any) error {
	return a.do(ctx, http.MethodGet, path, nil, v)
}

// nodeInfo is what the bench reads of GET /nodes.
type nodeInfo struct {
	ID          string
	Description struct{ Hostname string }
	Spec        struct{ Role string }
	Status      struct{ State string }
	// ManagerStatus is nil for workers.
	ManagerStatus *struct {
		Leader       bool
		Reachability string
	}
}

func (a *api) nodes(ctx context.Context) ([]nodeInfo, error) {
	var nodes []nodeInfo
	err := a.get(ctx, "/nodes", &nodes)
	return nodes, err
}

// taskInfo is what the bench reads of GET /tasks.
type taskInfo struct {
	ID           string
	ServiceID    string
	NodeID       string
	DesiredState string
	Status       struct{ State string }
}

// runningTasks lists the service's tasks desired running.
func (a *api) runningTasks(ctx context.Context, service string) ([]taskInfo, error) {
	f := url.QueryEscape(fmt.Sprintf(`{"service":{%q:true},"desired-state":{"running":true}}`, service))
	var tasks []taskInfo
	err := a.get(ctx, "/tasks?filters="+f, &tasks)
	return tasks, err
}

// containers counts the node's containers of the service, running or not.
func (a *api) containers(ctx context.Context, service string) (int, error) {
	f := url.QueryEscape(fmt.Sprintf(`{"label":{"com.docker.swarm.service.name=%s":true}}`, service))
	var cs []json.RawMessage
	err := a.get(ctx, "/containers/json?all=1&filters="+f, &cs)
	return len(cs), err
}

// sleep waits d, or less when ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// ms formats a duration in milliseconds with one decimal.
func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }
