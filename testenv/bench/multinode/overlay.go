package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shoal-project/shoal/testenv"
)

// The overlay measures (issue 7): throughput and round trips task to task
// across two lab nodes, over the engine's overlay and, for comparison, over
// what lies beneath it; then how fast a service's VIP follows its tasks.
//
// Paths, each from node2 (client) to node1 (server):
//
//	overlay   two tasks on one overlay network (Docker's with --opt encrypted)
//	overlay-plain  Docker only: the same on an overlay network without
//	          encryption, to tell a broken IPsec from a broken overlay
//	mesh      shoal only: node to node at the mesh addresses (10.254.x), i.e.
//	          through the daemons' WireGuard devices (wireguard-go) alone
//	underlay  node to node on the lab's bridge, no encryption
const (
	netName      = "bnet"
	plainNetName = "bnetplain"
)

// netPaths is one engine's measured paths: name to (server, client).
type netPaths struct {
	names   []string
	servers map[string]endpoint
	clients map[string]endpoint
	// failed says why a path could not be set up (it is then recorded as failed).
	failed map[string]string
}

// setupNet makes the engine's overlay network and the two pinned tasks, and
// finds every path's ends.
func (b *bench) setupNet(ctx context.Context, e *engine) (*netPaths, error) {
	n1, n2 := e.nodes[0], e.nodes[1]
	p := &netPaths{servers: map[string]endpoint{}, clients: map[string]endpoint{}, failed: map[string]string{}}
	args := []string{"network", "create", "-d", "overlay", "--attachable"}
	if e.name == "docker" {
		args = append(args, "--opt", "encrypted")
	}
	if _, err := e.docker(ctx, n1, append(args, netName)...); err != nil {
		return nil, err
	}
	if err := e.pinnedPair(ctx, netName, "bsrv", "bcli"); err != nil {
		return nil, err
	}
	srv, err := e.taskEnd(ctx, n1, "bsrv", netName)
	if err != nil {
		return nil, err
	}
	cli, err := e.taskEnd(ctx, n2, "bcli", netName)
	if err != nil {
		return nil, err
	}
	p.add("overlay", srv, cli)
	if e.name == "docker" {
		if _, err := e.docker(ctx, n1, "network", "create", "-d", "overlay", "--attachable", plainNetName); err != nil {
			return nil, err
		}
		if err := e.pinnedPair(ctx, plainNetName, "psrv", "pcli"); err != nil {
			return nil, err
		}
		srv, err := e.taskEnd(ctx, n1, "psrv", plainNetName)
		if err != nil {
			return nil, err
		}
		cli, err := e.taskEnd(ctx, n2, "pcli", plainNetName)
		if err != nil {
			return nil, err
		}
		p.add("overlay-plain", srv, cli)
	}
	if e.name == "shoal" {
		a1, err1 := meshAddr(ctx, n1)
		_, err2 := meshAddr(ctx, n2)
		if err := errors.Join(err1, err2); err != nil {
			p.names = append(p.names, "mesh")
			p.failed["mesh"] = err.Error()
		} else {
			p.add("mesh", endpoint{ns: n1.NetNS(), addr: a1}, endpoint{ns: n2.NetNS()})
		}
	}
	p.add("underlay", endpoint{ns: n1.NetNS(), addr: n1.Addr()}, endpoint{ns: n2.NetNS()})
	return p, nil
}

// pinnedPair creates two services of one sleeping task on network: server on
// node1, client on node2.
func (e *engine) pinnedPair(ctx context.Context, network, server, client string) error {
	for _, s := range []struct{ name, node string }{{server, e.nodes[0].Name}, {client, e.nodes[1].Name}} {
		if _, err := e.docker(ctx, e.nodes[0], "service", "create", "-d", "-q", "--no-resolve-image", "--stop-signal", "SIGKILL",
			"--name", s.name, "--network", network, "--constraint", "node.hostname=="+s.node, "busybox", "sleep", "3600"); err != nil {
			return err
		}
	}
	return nil
}

func (p *netPaths) add(name string, server, client endpoint) {
	p.names = append(p.names, name)
	p.servers[name], p.clients[name] = server, client
}

// taskEnd waits for the service's task container on node m and returns its
// network namespace (by its pid, as `docker inspect` tells) and its address on
// the overlay network.
func (e *engine) taskEnd(ctx context.Context, m *testenv.Machine, service, network string) (endpoint, error) {
	var ep endpoint
	var last string
	err := pollUntil(ctx, 2*time.Minute, 250*time.Millisecond, func() (bool, error) {
		id, err := e.docker(ctx, m, "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+service)
		if err != nil || id == "" {
			return false, err
		}
		out, err := e.docker(ctx, m, "inspect", "-f",
			`{{.State.Pid}} {{with index .NetworkSettings.Networks "`+network+`"}}{{.IPAddress}}{{end}}`, strings.Fields(id)[0])
		if err != nil {
			return false, err
		}
		last = out
		f := strings.Fields(out)
		if len(f) != 2 || f[0] == "0" {
			return false, nil
		}
		ep = endpoint{ns: "/proc/" + f[0] + "/ns/net", addr: f[1]}
		return true, nil
	})
	if err != nil {
		return ep, fmt.Errorf("%s's task on %s (inspect said %q): %w", service, m.Name, last, err)
	}
	return ep, nil
}

// meshAddr is node m's address in the mesh range (on its WireGuard device).
func meshAddr(ctx context.Context, m *testenv.Machine) (string, error) {
	out, err := m.Command(ctx, "ip", "-4", "-o", "addr", "show").Output()
	if err != nil {
		return "", fmt.Errorf("%s: ip addr: %w", m.Name, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		for i, w := range f {
			if w == "inet" && i+1 < len(f) && strings.HasPrefix(f[i+1], "10.254.") {
				return strings.SplitN(f[i+1], "/", 2)[0], nil
			}
		}
	}
	return "", fmt.Errorf("%s: no 10.254.x address", m.Name)
}

// netRun measures every path of the engine once: one stream, then round trips.
func (b *bench) netRun(ctx context.Context, e *engine, p *netPaths, run int) {
	for _, name := range p.names {
		if ctx.Err() != nil {
			return
		}
		if why, ok := p.failed[name]; ok {
			b.rec.line("net", e.name, "path="+name, fmt.Sprintf("run=%d", run), "mbps=FAIL")
			b.rec.line("rtt", e.name, "path="+name, fmt.Sprintf("run=%d", run), "p50_us=FAIL", "p99_us=FAIL")
			if run == 1 {
				b.rec.note(e.name, "net-"+name, run, why)
			}
			continue
		}
		srv, cli := p.servers[name], p.clients[name]
		load := "load=" + loadavg()
		mbps, tool, err := throughput(ctx, srv, cli, b.c.netSecs)
		if err != nil {
			b.rec.line("net", e.name, "path="+name, fmt.Sprintf("run=%d", run), "mbps=FAIL", "tool="+tool, load)
			b.rec.note(e.name, "net-"+name, run, err.Error())
		} else {
			b.rec.line("net", e.name, "path="+name, fmt.Sprintf("run=%d", run), fmt.Sprintf("mbps=%.0f", mbps), "tool="+tool, load)
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		rtts, err := pingPong(pctx, srv, cli, b.c.pingCount)
		cancel()
		if err != nil {
			b.rec.line("rtt", e.name, "path="+name, fmt.Sprintf("run=%d", run), "p50_us=FAIL", "p99_us=FAIL", load)
			b.rec.note(e.name, "rtt-"+name, run, err.Error())
			continue
		}
		b.rec.line("rtt", e.name, "path="+name, fmt.Sprintf("run=%d", run), fmt.Sprintf("n=%d", len(rtts)),
			fmt.Sprintf("p50_us=%.0f", percentile(rtts, 50)), fmt.Sprintf("p99_us=%.0f", percentile(rtts, 99)), load)
	}
}

// netPhase sets up both engines' paths, measures them run by run, the engines
// taking turns, and removes the services and the network.
func (b *bench) netPhase(ctx context.Context) {
	paths := map[*engine]*netPaths{}
	for _, e := range b.engines {
		if e.broken() {
			continue
		}
		b.rec.say("%s: overlay network and two pinned tasks", e.name)
		p, err := b.setupNet(ctx, e)
		if err != nil {
			b.rec.line("net", e.name, "path=overlay", "run=1", "mbps=FAIL", "reason=setup")
			b.rec.note(e.name, "net", 1, err.Error())
			continue
		}
		paths[e] = p
	}
	b.phase(ctx, "net", b.c.netRuns, func(ctx context.Context, e *engine, run int) error {
		if p := paths[e]; p != nil {
			b.netRun(ctx, e, p, run)
		}
		return nil
	})
	if b.wants("vip") {
		b.phase(ctx, "vip", b.c.vipRuns, func(ctx context.Context, e *engine, run int) error {
			if paths[e] == nil {
				return errors.New("no overlay network")
			}
			return b.vip(ctx, e, run)
		})
	}
	for _, e := range b.engines {
		if e.broken() {
			continue
		}
		for _, s := range []string{"vweb", "vcli", "bsrv", "bcli", "psrv", "pcli"} {
			if err := e.removeService(ctx, e.nodes[0], s, 2*time.Minute); err != nil {
				b.rec.note(e.name, "net", 0, err.Error())
			}
		}
		for _, n := range []string{netName, plainNetName} {
			if out, err := e.docker(ctx, e.nodes[0], "network", "rm", n); err != nil && !strings.Contains(out, "No such") && !strings.Contains(out, "not found") {
				b.rec.note(e.name, "net", 0, "network rm: "+out)
			}
		}
	}
}
