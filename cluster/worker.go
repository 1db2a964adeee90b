package cluster

import (
	"context"
	"maps"
	"net"
	"runtime"

	"github.com/moby/moby/api/types/swarm"
	"golang.org/x/sys/unix"

	"github.com/shoal-project/shoal/cluster/agent"
	"github.com/shoal-project/shoal/cluster/session"
)

// agentState is the node's running agent and its session follower.
type agentState struct {
	*agent.Agent
	follower *session.Follower
}

// startAgent runs the node's agent until ctx is done. It holds its session with
// the leader: in-process while this node's own manager leads, else over the
// control port. Callers hold c.mu or run before the node is shared.
func (c *Cluster) startAgent(ctx context.Context) {
	st := c.node
	local := func() session.Server {
		if lead := c.leadership(); lead != nil {
			if d := lead.dispatcher(); d != nil {
				return d
			}
		}
		return nil
	}
	managers := st.Managers
	if len(managers) == 0 && st.manager() {
		managers = []string{st.AdvertiseAddr}
	}
	follower := session.NewFollower(session.FollowerConfig{
		NodeID:   st.NodeID,
		Client:   c.creds.HTTPClient(false),
		Managers: managers,
		Local:    local,
		Candidates: func() []string {
			if lead := c.leadership(); lead != nil {
				return lead.managers()
			}
			return nil
		},
		OnManagers: func(list []string) { go c.saveManagers(list) },
	})
	if c.mesh == nil || c.mesh.nodeID != st.NodeID {
		if c.mesh != nil {
			c.mesh.close()
		}
		m, err := newMesh(st.NodeID, c.log.With("component", "mesh"))
		if err != nil {
			c.log.Warn("no WireGuard mesh for this node", "err", err)
		}
		c.mesh = m
	}
	m := c.mesh
	if m != nil {
		m.underlay(dataPathHost(st))
	}
	ag := agent.New(agent.Config{
		NodeID:     st.NodeID,
		Dispatcher: follower,
		Hello:      func() session.Hello { return c.hello(st, m) },
		OnNode:     c.onNode,
		OnCA:       c.onCA,
		OnMesh: func(nodes []session.MeshPeer) {
			if m != nil {
				m.follow(nodes)
			}
		},
		OnOverlay: func(v *session.Overlay) {
			if m != nil {
				m.followOverlay(v)
			}
		},
		MeshDevice: func() string {
			if m == nil {
				return ""
			}
			return m.device()
		},
		OverlayMTU: func() int {
			if m == nil {
				return 0
			}
			return m.MTU()
		},
		Overlay:    c.cfg.Overlay,
		DNS:        c.cfg.DNS,
		Containers: c.cfg.Containers,
		Images:     c.cfg.Images,
		Network:    c.cfg.Network,
		// Images are fetched from any node of the swarm, not only managers.
		PeerTransport: c.creds.RoundTripper(true),
		Logger:        c.log.With("component", "agent"),
	})
	c.agent = &agentState{Agent: ag, follower: follower}
	if m != nil && c.cfg.MeshKeyRotation > 0 {
		c.loops.Add(1)
		go func() {
			defer c.loops.Done()
			m.rotateKeys(ctx, c.cfg.MeshKeyRotation, ag.Reopen)
		}()
	}
	c.loops.Add(1)
	go func() {
		defer c.loops.Done()
		if err := ag.Run(ctx); err != nil && ctx.Err() == nil {
			c.log.Error("agent stopped", "err", err)
		}
	}()
}

// hello is what this node says of itself when a session opens.
func (c *Cluster) hello(st *nodeState, m *mesh) session.Hello {
	desc := c.description()
	c.mu.RLock()
	if c.creds != nil {
		desc.TLSInfo = c.creds.TLSInfo()
	}
	c.mu.RUnlock()
	h := session.Hello{
		Description: desc,
		Addr:        hostOf(st.AdvertiseAddr),
		ControlAddr: st.AdvertiseAddr,
	}
	if m != nil {
		h.MeshKey, h.MeshEndpoint = m.hello(dataPathHost(st))
	}
	return h
}

// dataPathHost is the address other nodes reach this one's data plane at: the
// --data-path-addr when it is an address, else the advertised one.
func dataPathHost(st *nodeState) string {
	if ip := net.ParseIP(st.DataPathAddr); ip != nil {
		return st.DataPathAddr
	}
	return hostOf(st.AdvertiseAddr)
}

// SetEngineLabels replaces the daemon's labels (SIGHUP). The node reports them
// when its next session with the leader opens.
func (c *Cluster) SetEngineLabels(labels map[string]string) {
	labels = maps.Clone(labels)
	c.engineLabels.Store(&labels)
}

// description is what the node reports of itself.
func (c *Cluster) description() swarm.NodeDescription {
	var si unix.Sysinfo_t
	_ = unix.Sysinfo(&si)
	return swarm.NodeDescription{
		Hostname: c.cfg.Hostname,
		Platform: swarm.Platform{Architecture: archName(), OS: runtime.GOOS},
		Resources: swarm.Resources{
			NanoCPUs:         int64(runtime.NumCPU()) * 1e9,
			MemoryBytes:      int64(si.Totalram) * int64(si.Unit),
			GenericResources: c.cfg.Resources,
		},
		Engine: swarm.EngineDescription{
			EngineVersion: c.cfg.EngineVersion,
			Labels:        *c.engineLabels.Load(),
			Plugins: []swarm.PluginDescription{
				{Type: "Log", Name: "json-file"},
				{Type: "Network", Name: "bridge"}, {Type: "Network", Name: "host"},
				{Type: "Network", Name: "null"}, {Type: "Network", Name: "overlay"},
				{Type: "Volume", Name: "local"},
			},
		},
	}
}

// archName is the architecture as Docker reports it (uname -m).
func archName() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}

func hostOf(hostport string) string {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	return host
}
