// Package agent is the worker side of a node, run on every node, managers
// included: it holds a session with the leading manager, receives the node's
// task assignments, and drives the container runtime and the node's network to
// make them true, reporting every task state change back. One loop owns all
// task state; blocking work (pulls, creates, stops) runs in short-lived
// goroutines that report to the loop. A lost session is opened again with
// backoff while the tasks keep running, and the reports made meanwhile are
// delivered once it is back. Containers outlive the agent: a restarted agent
// re-adopts the task containers it finds running.
package agent

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/session"
	"github.com/shoal-project/shoal/netplane/bridge"
	"github.com/shoal-project/shoal/runtime/container"
	"github.com/shoal-project/shoal/runtime/image"
)

// Containers is what the agent needs of the node's container runtime.
type Containers interface {
	Create(ctx context.Context, req container.CreateRequest) (string, error)
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id string, timeout *time.Duration) error
	Remove(ctx context.Context, id string, force bool) error
	Inspect(ctx context.Context, id string) (ctypes.InspectResponse, error)
	List(ctx context.Context, all bool) ([]ctypes.Summary, error)
	Subscribe(ctx context.Context) <-chan container.Event
	Logs(ctx context.Context, idOrName string, opts container.LogOptions) (<-chan container.LogEntry, error)
	// RestoreFiles gives a stopped container its secrets and configs again (they
	// live in memory only while it runs), before a start of the same container.
	RestoreFiles(ctx context.Context, id string, files []container.File) error
}

// Images is what the agent needs of the node's image store.
type Images interface {
	Get(ctx context.Context, ref string) (image.Image, error)
	Pull(ctx context.Context, ref string, auth *registry.AuthConfig, progress func(jsonstream.Message)) (image.Image, error)
}

// Network is what the agent needs of the node's container networking.
type Network interface {
	CreateSandbox(ctx context.Context, id string) (bridge.Sandbox, error)
	PublishPorts(ctx context.Context, id string, ports []bridge.PortMapping) ([]bridge.PortMapping, error)
	RemoveSandbox(ctx context.Context, id string) error
	Sandbox(id string) (bridge.Sandbox, bool)
	// SandboxIDs lists every sandbox on the node.
	SandboxIDs() []string
	// Isolate cuts a sandbox off the bridge (no way out of the node).
	Isolate(ctx context.Context, id string) error
	// PublishService balances a service's ingress ports over the given task
	// addresses; no ports or no addresses unpublish it.
	PublishService(ctx context.Context, serviceID string, ports []bridge.ServicePort, backends []netip.Addr) error
}

// Config wires an agent.
type Config struct {
	NodeID string
	// Dispatcher opens sessions with the leading manager.
	Dispatcher session.Dispatcher
	// Hello is what the node says of itself when a session opens.
	Hello func() session.Hello
	// OnNode, if set, receives the node's own object whenever a session
	// brings it (at open, and when its spec changes: role, availability).
	OnNode func(*swarm.Node)
	// OnCA, if set, receives what the node's certificate should chain to
	// (at open, and when the swarm's root rotates).
	OnCA func(*session.CAState)
	// OnMesh, if set, receives the swarm's WireGuard mesh (at open, and when
	// it changes).
	OnMesh func([]session.MeshPeer)
	// OnOverlay, if set, receives each overlay view (the mesh routes other
	// nodes' task addresses to them).
	OnOverlay func(*session.Overlay)
	// Overlay is the node's overlay data plane and DNS the embedded DNS
	// server; nil: tasks run on the node's bridge only.
	Overlay Overlay
	DNS     Resolver
	// MeshDevice names the node's WireGuard interface, "" while it has none.
	MeshDevice func() string
	// OverlayMTU is the MTU of task interfaces on overlay networks (the
	// mesh's); nil or zero: netplane/overlay's default.
	OverlayMTU func() int
	Containers Containers
	Images     Images
	Network    Network
	// PeerTransport reaches other nodes' control ports, where their images
	// are served (Images must also be PeerImages); nil: no peers asked.
	PeerTransport http.RoundTripper
	Logger        *slog.Logger
}

// Agent runs the node's assigned tasks.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	tasks   map[string]*taskState
	results chan opResult
	ingress map[string]string // service -> what was last published for it
	// view is the last overlay view (the loop's); views brings new ones.
	view    *session.Overlay
	views   chan *session.Overlay
	reports chan session.StatusUpdate
	// sess is the open session (nil while there is none); reports go through it.
	sess     sessionHolder
	peers    peerList
	networks localNetworks
	// stopping is closed (the Run context's Done) when the agent stops, so that a
	// report never blocks a stopping agent.
	stopping <-chan struct{}
	ops      sync.WaitGroup
}

// taskState is what the agent knows of one assigned task. Only the loop touches it.
type taskState struct {
	a           session.Assignment
	containerID string
	// stale is a container of an earlier start that never ran (or could not be
	// read); the next start removes it first.
	stale      string
	busy       bool // an operation is in flight
	prepared   bool // a prepare was attempted (desired ready)
	started    bool // a start was attempted
	exited     bool // the container stopped
	exitCode   int
	oom        bool
	waitHealth bool              // running, waiting for the first healthy check
	unhealthy  bool              // stopped because its health check failed
	removed    bool              // the task is no longer assigned
	released   bool              // its network sandbox was removed (it ended)
	reported   swarm.TaskState   // the last state reported (or read from the store)
	last       *swarm.TaskStatus // the last status this agent reported
	// localRestarts are when this node restarted the task on its own (no
	// manager reachable), for the policy's attempts.
	localRestarts []time.Time
	ports         []swarm.PortConfig
	pid           int
}

// New returns an agent; Run starts it.
func New(cfg Config) *Agent {
	return &Agent{
		cfg:     cfg,
		log:     cfg.Logger,
		tasks:   map[string]*taskState{},
		results: make(chan opResult, 64),
		ingress: map[string]string{},
		views:   make(chan *session.Overlay, 1),
		reports: make(chan session.StatusUpdate, 1024),
	}
}

// Run drives the node's tasks until ctx is done. Containers are left running.
func (a *Agent) Run(ctx context.Context) error {
	a.stopping = ctx.Done()
	defer a.ops.Wait()
	local, err := a.localContainers(ctx)
	if err != nil {
		return err
	}
	events := a.cfg.Containers.Subscribe(ctx)
	sets := make(chan session.AssignmentSet)
	var helpers sync.WaitGroup
	defer helpers.Wait()
	helpers.Add(2)
	go func() {
		defer helpers.Done()
		a.holdSessions(ctx, sets)
	}()
	go func() {
		defer helpers.Done()
		a.reportLoop(ctx)
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case set := <-sets:
			a.applySet(ctx, set, local)
			local = nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			a.onEvent(ctx, ev)
		case r := <-a.results:
			a.onResult(ctx, r)
		case v := <-a.views:
			a.view = v
			a.networks.follow(a.cfg.NodeID, v)
			a.applyOverlay(ctx)
		}
	}
}

// localContainers maps task IDs to the task containers already on the node.
func (a *Agent) localContainers(ctx context.Context) (map[string]ctypes.Summary, error) {
	list, err := a.cfg.Containers.List(ctx, true)
	if err != nil {
		return nil, err
	}
	out := map[string]ctypes.Summary{}
	for _, c := range list {
		if id := c.Labels[LabelTaskID]; id != "" {
			out[id] = c
		}
	}
	return out, nil
}

func (a *Agent) applySet(ctx context.Context, set session.AssignmentSet, local map[string]ctypes.Summary) {
	services := map[string]bool{}
	defer func() {
		for id := range services {
			a.refreshIngress(ctx, id)
		}
	}()
	for _, as := range set.Tasks {
		services[as.Task.ServiceID] = true
	}
	for _, id := range set.Removed {
		if t := a.tasks[id]; t != nil && t.a.Task != nil {
			services[t.a.Task.ServiceID] = true
		}
	}
	if set.Full {
		seen := map[string]bool{}
		for _, as := range set.Tasks {
			seen[as.Task.ID] = true
		}
		for id, t := range a.tasks {
			if !seen[id] {
				t.removed = true
				a.reconcile(ctx, t)
			}
		}
		// Task containers nobody assigns any more go, and so do network
		// sandboxes of tasks that have no container and no state here (a
		// crash between making a sandbox and its container, or between
		// removing them).
		for id, c := range local {
			if !seen[id] {
				t := &taskState{containerID: c.ID, removed: true, a: session.Assignment{Task: &swarm.Task{ID: id}}}
				a.tasks[id] = t
				a.reconcile(ctx, t)
			}
		}
		for _, id := range a.cfg.Network.SandboxIDs() {
			if !seen[id] && a.tasks[id] == nil {
				t := &taskState{removed: true, a: session.Assignment{Task: &swarm.Task{ID: id}}}
				a.tasks[id] = t
				a.reconcile(ctx, t)
			}
		}
	}
	for _, as := range set.Tasks {
		t := a.tasks[as.Task.ID]
		if t == nil {
			t = &taskState{a: as, reported: as.Task.Status.State, ports: as.Task.Status.PortStatus.Ports}
			a.tasks[as.Task.ID] = t
			if c, ok := local[as.Task.ID]; ok {
				a.adopt(ctx, t, as, c)
			}
		} else if set.Full && t.last != nil && StateLessTask(as.Task.Status.State, t.reported) {
			// A new session: the managers missed what was reported while the
			// node had none.
			a.send(session.StatusUpdate{TaskID: as.Task.ID, Status: *t.last})
		}
		t.a = as
		a.reconcile(ctx, t)
	}
	for _, id := range set.Removed {
		if t := a.tasks[id]; t != nil {
			t.removed = true
			a.reconcile(ctx, t)
		}
	}
}

// adopt takes over a task container found on the node at start (live restore).
// A running container is the task's, running. A container that ran and exited
// while the daemon was down is reported exited, as if its exit had been seen,
// so the orchestrator applies the task's restart policy. A container that was
// created but never started (the daemon died between the two) never ran the
// task, which has not reached running: start removes it and runs the task
// afresh. Either way reconcile moves the task on; none waits for a user.
func (a *Agent) adopt(ctx context.Context, t *taskState, as session.Assignment, c ctypes.Summary) {
	info, err := a.cfg.Containers.Inspect(ctx, c.ID)
	if err != nil {
		a.log.Warn("inspect adopted container", "task", as.Task.ID, "err", err)
		t.stale = c.ID
		return
	}
	if info.State != nil && info.State.Status == ctypes.StateCreated {
		a.log.Info("task container was never started: starting the task afresh", "task", as.Task.ID, "container", c.ID)
		t.stale = c.ID
		return
	}
	t.containerID = c.ID
	t.started = true
	if info.State != nil && info.State.Running {
		t.pid = info.State.Pid
		a.log.Info("re-adopted running task container", "task", as.Task.ID, "container", c.ID)
		if sb, ok := a.cfg.Network.Sandbox(as.Task.ID); ok {
			// Attaching again keeps the task's interfaces and connections; the
			// embedded DNS needs sockets of this daemon.
			if _, err := a.attachOverlay(ctx, as.Task, sb.NetNSPath); err != nil {
				a.log.Warn("re-attach an adopted task to its overlay networks", "task", as.Task.ID, "err", err)
			}
		}
		if StateLessTask(t.reported, swarm.TaskStateRunning) {
			a.report(t, swarm.TaskStateRunning, "started", "")
		}
		return
	}
	t.exited = true
	if info.State != nil {
		t.exitCode = info.State.ExitCode
		t.oom = info.State.OOMKilled
	}
	a.log.Info("task container exited while the daemon was down", "task", as.Task.ID, "container", c.ID, "exit", t.exitCode)
	a.reportExit(t)
}
