package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/nodenet"
	"github.com/shoal-project/shoal/cluster/session"
	"github.com/shoal-project/shoal/cluster/taskstate"
	"github.com/shoal-project/shoal/netplane/bridge"
	"github.com/shoal-project/shoal/runtime/container"
	"github.com/shoal-project/shoal/runtime/image"
)

// StateLessTask reports whether task state a comes before b.
func StateLessTask(a, b swarm.TaskState) bool { return taskstate.Less(a, b) }

func terminal(s swarm.TaskState) bool { return taskstate.Terminal(s) }

// opKind names the blocking operations the agent runs off its loop.
type opKind int

const (
	opPrepare opKind = iota
	opStart
	opStop
	opRemove
	opProgress
	opRestart // a restart on the node's own, while no manager is reachable
	opDiscard // removes a stale container of a task that is not to run
	opRelease // removes the network sandbox of a task that has ended
)

// opResult is what an operation tells the loop.
type opResult struct {
	taskID      string
	kind        opKind
	state       swarm.TaskState // opProgress: the state reached; opStart failure: rejected/failed
	message     string
	err         error
	containerID string
	pid         int
	exitCode    int
	health      bool
	ports       []swarm.PortConfig
}

// reconcile decides the next step for a task. It never blocks.
func (a *Agent) reconcile(ctx context.Context, t *taskState) {
	if t.busy {
		return
	}
	task := t.a.Task
	switch {
	case t.removed:
		a.launch(ctx, t, opRemove)
	case taskstate.Wanted(task.DesiredState):
		if t.started || terminal(t.reported) || task.NodeID == "" {
			break
		}
		if task.DesiredState == swarm.TaskStateReady {
			// A replacement waiting for its slot's old task to stop (a stop-first
			// update): its image is pulled meanwhile; it starts once desired running.
			if !t.prepared {
				t.prepared = true
				a.launch(ctx, t, opPrepare)
			}
			break
		}
		t.started = true
		a.launch(ctx, t, opStart)
	default:
		if t.stale != "" {
			a.launch(ctx, t, opDiscard)
			return
		}
		if t.containerID != "" && !t.exited {
			a.launch(ctx, t, opStop)
			return
		}
		if !terminal(t.reported) {
			a.report(t, swarm.TaskStateShutdown, "shutdown", "")
		}
		// The task will not run again: its address, veth and namespace go now,
		// not when the task leaves the history (as Docker releases a stopped
		// container's network).
		if _, ok := a.cfg.Network.Sandbox(task.ID); ok && !t.released {
			t.released = true
			a.launch(ctx, t, opRelease)
		}
	}
}

func (a *Agent) launch(ctx context.Context, t *taskState, kind opKind) {
	t.busy = true
	as, containerID, stale := t.a, t.containerID, t.stale
	a.ops.Add(1)
	go func() {
		defer a.ops.Done()
		var r opResult
		switch kind {
		case opPrepare:
			r = a.prepare(ctx, as)
		case opStart:
			r = a.start(ctx, as, stale)
		case opStop:
			r = a.stop(ctx, as, containerID)
		case opRemove:
			r = a.remove(ctx, as, cmp.Or(containerID, stale))
		case opRelease:
			a.detachOverlay(ctx, as.Task.ID)
			if err := a.cfg.Network.RemoveSandbox(ctx, as.Task.ID); err != nil {
				a.log.Warn("remove the sandbox of an ended task", "task", as.Task.ID, "err", err)
			}
		case opDiscard:
			if err := a.cfg.Containers.Remove(ctx, stale, true); err != nil && !isNotFound(err) {
				a.log.Warn("remove the container of an earlier start", "task", as.Task.ID, "err", err)
			}
		}
		r.taskID, r.kind = as.Task.ID, kind
		select {
		case a.results <- r:
		case <-ctx.Done():
		}
	}()
}

// progress tells the loop an operation reached a state.
func (a *Agent) progress(ctx context.Context, taskID string, state swarm.TaskState, msg string) {
	select {
	case a.results <- opResult{taskID: taskID, kind: opProgress, state: state, message: msg}:
	case <-ctx.Done():
	}
}

// prepare readies a task that may not start yet: its image is on the node.
func (a *Agent) prepare(ctx context.Context, as session.Assignment) opResult {
	if r, ok := a.pullImage(ctx, as); !ok {
		return r
	}
	return opResult{state: swarm.TaskStateReady}
}

// pullImage reports the task accepted and preparing, and makes sure its image is
// on the node; when it cannot, ok is false and r rejects the task.
func (a *Agent) pullImage(ctx context.Context, as session.Assignment) (r opResult, ok bool) {
	task := as.Task
	a.progress(ctx, task.ID, swarm.TaskStateAccepted, "accepted")
	a.progress(ctx, task.ID, swarm.TaskStatePreparing, "preparing")
	cs := task.Spec.ContainerSpec
	if cs == nil || cs.Image == "" {
		return opResult{state: swarm.TaskStateRejected, err: errors.New("task has no container image")}, false
	}
	if err := a.ensureImage(ctx, cs.Image, as.RegistryAuth); err != nil {
		a.log.Warn("pull task image", "task", task.ID, "image", cs.Image, "err", err)
		return opResult{state: swarm.TaskStateRejected, err: fmt.Errorf("No such image: %s", cs.Image)}, false
	}
	return opResult{}, true
}

// start prepares and starts a task's container, after removing stale, a
// container of an earlier attempt that never ran ("" if none).
func (a *Agent) start(ctx context.Context, as session.Assignment, stale string) opResult {
	task := as.Task
	if stale != "" {
		if err := a.cfg.Containers.Remove(ctx, stale, true); err != nil && !isNotFound(err) {
			return opResult{state: swarm.TaskStateRejected, err: fmt.Errorf("remove the container of an earlier start: %w", err)}
		}
	}
	if r, ok := a.pullImage(ctx, as); !ok {
		return r
	}
	req, ports, err := a.containerRequest(ctx, as)
	if err != nil {
		return opResult{state: swarm.TaskStateRejected, err: err}
	}
	id, err := a.cfg.Containers.Create(ctx, req)
	if err != nil {
		return opResult{state: swarm.TaskStateRejected, err: fmt.Errorf("create container: %w", err), ports: ports}
	}
	a.progress(ctx, task.ID, swarm.TaskStateStarting, "starting")
	if err := a.cfg.Containers.Start(ctx, id); err != nil {
		return opResult{state: swarm.TaskStateFailed, err: fmt.Errorf("starting container failed: %w", err), containerID: id, ports: ports}
	}
	r := opResult{state: swarm.TaskStateRunning, containerID: id, ports: ports}
	if info, err := a.cfg.Containers.Inspect(ctx, id); err == nil && info.State != nil {
		r.pid = info.State.Pid
		r.health = info.State.Health != nil
	}
	return r
}

// containerRequest is the container to create for a task, in its networks: a
// sandbox on the node's bridge joined to the task's overlay networks, with
// its host-mode ports published; or, on the host network, the node's own
// network namespace, where the task listens on its ports itself.
func (a *Agent) containerRequest(ctx context.Context, as session.Assignment) (container.CreateRequest, []swarm.PortConfig, error) {
	task := as.Task
	if nodenet.UsesHost(task.Spec) {
		req, err := createRequest(as, a.cfg.NodeID, bridge.Sandbox{})
		req.HostConfig.NetworkMode = nodenet.Host
		req.NetworkID = nodenet.ID(nodenet.Host)
		return req, hostNetworkPorts(task), err
	}
	sb, err := a.cfg.Network.CreateSandbox(ctx, task.ID)
	if err != nil {
		return container.CreateRequest{}, nil, fmt.Errorf("create network sandbox: %w", err)
	}
	ports, err := a.publish(ctx, task)
	if err != nil {
		return container.CreateRequest{}, nil, err
	}
	req, err := createRequest(as, a.cfg.NodeID, sb)
	if err != nil {
		return container.CreateRequest{}, nil, err
	}
	if req.Networks, err = a.attachOverlay(ctx, task, sb.NetNSPath); err != nil {
		return container.CreateRequest{}, nil, err
	}
	if internalOnly(task) {
		if err := a.cfg.Network.Isolate(ctx, task.ID); err != nil {
			return container.CreateRequest{}, nil, err
		}
	}
	if a.usesEmbeddedDNS(task) {
		req.HostConfig.DNS = []netip.Addr{embeddedDNS}
	}
	req.HostConfig.PortBindings = portBindings(ports)
	return req, ports, nil
}

// hostNetworkPorts are a task's ports on the host network: each published on
// its own number of the node, where the task listens (the cluster refuses
// any other).
func hostNetworkPorts(task *swarm.Task) []swarm.PortConfig {
	ports := append([]swarm.PortConfig(nil), task.Status.PortStatus.Ports...)
	for i := range ports {
		if ports[i].PublishedPort == 0 {
			ports[i].PublishedPort = ports[i].TargetPort
		}
	}
	return ports
}

// ensureImage makes sure the task's image is on the node, pulling it (with the
// service's registry credentials) if not.
func (a *Agent) ensureImage(ctx context.Context, ref, auth string) error {
	if _, err := a.cfg.Images.Get(ctx, ref); err == nil {
		return nil
	}
	if name, _, ok := strings.Cut(ref, "@"); ok {
		if _, err := a.cfg.Images.Get(ctx, name); err == nil {
			return nil
		}
	}
	err := a.pullFromPeers(ctx, ref)
	if err == nil {
		return nil
	}
	if !errors.Is(err, errNoPeerHasImage) {
		a.log.Warn("fetch image from a peer node; trying its registry", "image", ref, "err", err)
	}
	_, err = a.cfg.Images.Pull(ctx, ref, image.DecodeAuth(auth), nil)
	return err
}

// publish maps the task's host-mode ports on this node.
func (a *Agent) publish(ctx context.Context, task *swarm.Task) ([]swarm.PortConfig, error) {
	var want []bridge.PortMapping
	var idx []int
	ports := append([]swarm.PortConfig(nil), task.Status.PortStatus.Ports...)
	for i, p := range ports {
		if p.PublishMode != swarm.PortConfigPublishModeHost {
			continue
		}
		proto := string(p.Protocol)
		if proto == "" {
			proto = string(network.TCP)
		}
		want = append(want, bridge.PortMapping{Protocol: proto, HostPort: uint16(p.PublishedPort), ContainerPort: uint16(p.TargetPort)})
		idx = append(idx, i)
	}
	if len(want) == 0 {
		return ports, nil
	}
	got, err := a.cfg.Network.PublishPorts(ctx, task.ID, want)
	if err != nil {
		return nil, fmt.Errorf("publish ports: %w", err)
	}
	for j, m := range got {
		ports[idx[j]].PublishedPort = uint32(m.HostPort)
	}
	return ports, nil
}

// portBindings are the host-mode ports published for a task, as `docker port`
// and `docker inspect` show them on its container.
func portBindings(ports []swarm.PortConfig) network.PortMap {
	var pm network.PortMap
	for _, p := range ports {
		if p.PublishMode != swarm.PortConfigPublishModeHost || p.PublishedPort == 0 {
			continue
		}
		proto := network.IPProtocol(p.Protocol)
		if proto == "" {
			proto = network.TCP
		}
		port, ok := network.PortFrom(uint16(p.TargetPort), proto)
		if !ok {
			continue
		}
		if pm == nil {
			pm = network.PortMap{}
		}
		pm[port] = append(pm[port], network.PortBinding{HostIP: netip.IPv4Unspecified(), HostPort: fmt.Sprint(p.PublishedPort)})
	}
	return pm
}

// stop stops a task's container with the task's grace period.
func (a *Agent) stop(ctx context.Context, as session.Assignment, containerID string) opResult {
	grace := stopGrace(as.Task)
	err := a.cfg.Containers.Stop(ctx, containerID, &grace)
	r := opResult{containerID: containerID, err: err, state: swarm.TaskStateShutdown}
	if info, ierr := a.cfg.Containers.Inspect(ctx, containerID); ierr == nil && info.State != nil {
		r.exitCode = info.State.ExitCode
	}
	return r
}

// remove stops and deletes a task's container and network sandbox.
func (a *Agent) remove(ctx context.Context, as session.Assignment, containerID string) opResult {
	if containerID != "" {
		grace := stopGrace(as.Task)
		if err := a.cfg.Containers.Stop(ctx, containerID, &grace); err != nil && !isNotFound(err) && !isNotModified(err) {
			a.log.Warn("stop removed task", "task", as.Task.ID, "err", err)
		}
		if err := a.cfg.Containers.Remove(ctx, containerID, true); err != nil && !isNotFound(err) {
			a.log.Warn("remove task container", "task", as.Task.ID, "err", err)
		}
	}
	a.detachOverlay(ctx, as.Task.ID)
	if err := a.cfg.Network.RemoveSandbox(ctx, as.Task.ID); err != nil {
		a.log.Warn("remove task sandbox", "task", as.Task.ID, "err", err)
	}
	return opResult{}
}

// onResult applies what an operation reports.
func (a *Agent) onResult(ctx context.Context, r opResult) {
	t := a.tasks[r.taskID]
	if t == nil {
		return
	}
	if t.a.Task != nil {
		defer a.refreshIngress(ctx, t.a.Task.ServiceID)
	}
	switch r.kind {
	case opProgress:
		a.report(t, r.state, r.message, "")
		return
	case opRemove:
		delete(a.tasks, r.taskID)
		return
	case opRestart:
		a.onRestarted(ctx, t, r)
		return
	}
	t.busy = false
	if r.kind == opStart || r.kind == opDiscard {
		t.stale = "" // removed, or past removing: the task has ended
	}
	if r.containerID != "" {
		t.containerID = r.containerID
	}
	if r.ports != nil {
		t.ports = r.ports
	}
	switch r.kind {
	case opPrepare:
		if r.err != nil {
			a.report(t, r.state, "", r.err.Error())
			break
		}
		a.report(t, swarm.TaskStateReady, "prepared", "")
	case opStart:
		if r.err != nil {
			a.report(t, r.state, "", r.err.Error())
			break
		}
		t.pid = r.pid
		switch {
		case t.exited:
			a.reportExit(t)
		case r.health:
			t.waitHealth = true
		default:
			a.report(t, swarm.TaskStateRunning, "started", "")
		}
	case opStop:
		if r.err != nil && !isNotFound(r.err) {
			a.log.Warn("stop task container", "task", r.taskID, "err", r.err)
		}
		t.exited = true
		if !terminal(t.reported) {
			t.exitCode = r.exitCode
			a.reportExit(t)
		}
	}
	a.reconcile(ctx, t)
}

// onEvent follows a task container's lifecycle events.
func (a *Agent) onEvent(ctx context.Context, ev container.Event) {
	t := a.tasks[ev.Labels[LabelTaskID]]
	if t == nil {
		return
	}
	defer a.refreshIngress(ctx, t.a.Task.ServiceID)
	switch ev.Action {
	case "oom":
		t.oom = true
	case "die":
		t.exited = true
		t.exitCode = ev.ExitCode
		if t.containerID == "" {
			t.containerID = ev.ID
		}
		if !t.busy && a.restartLocally(ctx, t) {
			return
		}
		if !t.busy || t.reported == swarm.TaskStateRunning || t.waitHealth {
			a.reportExit(t)
		}
		a.reconcile(ctx, t)
	case "health_status: healthy":
		if t.waitHealth {
			t.waitHealth = false
			a.report(t, swarm.TaskStateRunning, "started", "")
		}
	case "health_status: unhealthy":
		if !t.busy && !t.exited {
			// Stopped, then reported failed with its exit code, as Docker does.
			t.unhealthy = true
			t.waitHealth = false
			a.launch(ctx, t, opStop)
		}
	}
}

// reportExit reports how a task's container ended.
func (a *Agent) reportExit(t *taskState) {
	if terminal(t.reported) {
		return
	}
	desired := t.a.Task.DesiredState
	switch {
	case t.unhealthy:
		a.report(t, swarm.TaskStateFailed, "started", fmt.Sprintf("task: non-zero exit (%d): dockerexec: unhealthy container", t.exitCode))
	case !taskstate.Wanted(desired):
		a.report(t, swarm.TaskStateShutdown, "shutdown", "")
	case t.exitCode == 0 && !t.oom:
		a.report(t, swarm.TaskStateComplete, "finished", "")
	default:
		a.report(t, swarm.TaskStateFailed, "started", fmt.Sprintf("task: non-zero exit (%d)", t.exitCode))
	}
}

// report records a new state for a task, if it moves the task forward.
func (a *Agent) report(t *taskState, state swarm.TaskState, msg, errText string) {
	if !StateLessTask(t.reported, state) {
		return
	}
	t.reported = state
	st := swarm.TaskStatus{
		Timestamp:  time.Now(),
		State:      state,
		Message:    msg,
		Err:        errText,
		PortStatus: swarm.PortStatus{Ports: t.ports},
	}
	if t.containerID != "" {
		st.ContainerStatus = &swarm.ContainerStatus{ContainerID: t.containerID, PID: t.pid}
		if terminal(state) {
			st.ContainerStatus.PID = 0
			st.ContainerStatus.ExitCode = t.exitCode
		}
	}
	t.last = &st
	a.send(session.StatusUpdate{TaskID: t.a.Task.ID, Status: st})
}

// send queues a status update for the report loop.
func (a *Agent) send(u session.StatusUpdate) {
	select {
	case a.reports <- u:
	case <-a.stopping:
		// The agent is stopping: the next session reports from the runtime's state.
	}
}

// isNotModified tells a stop of a container that had stopped already: nothing
// for an operator to act on.
func isNotModified(err error) bool {
	var nm interface{ NotModified() bool }
	return errors.As(err, &nm) && nm.NotModified()
}

func isNotFound(err error) bool {
	var nf interface{ NotFound() bool }
	return errors.As(err, &nf) && nf.NotFound()
}
