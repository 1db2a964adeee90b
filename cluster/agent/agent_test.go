package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
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

// fakeNode is an in-memory runtime, image store, network and dispatcher.
type fakeNode struct {
	mu         sync.Mutex
	containers map[string]*fakeContainer
	events     chan container.Event
	sets       chan session.AssignmentSet
	reports    chan session.StatusUpdate
	sandboxes  map[string]bool
	images     map[string]bool
	pulls      []string
	published  []string      // PublishService calls
	offline    bool          // no manager reachable: sessions cannot open
	cut        chan struct{} // closed: the open session ends
	starts     int           // Start calls
	restored   map[string][]container.File
}

type fakeContainer struct {
	req     container.CreateRequest
	running bool
	started bool // it ran at least once
	exit    int
}

func newFakeNode() *fakeNode {
	return &fakeNode{
		containers: map[string]*fakeContainer{},
		events:     make(chan container.Event, 64),
		sets:       make(chan session.AssignmentSet, 16),
		cut:        make(chan struct{}),
		reports:    make(chan session.StatusUpdate, 256),
		sandboxes:  map[string]bool{},
		images:     map[string]bool{"busybox": true},
	}
}

type notFound struct{ error }

func (notFound) NotFound() bool { return true }

func (f *fakeNode) Create(_ context.Context, req container.CreateRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := fmt.Sprintf("c%d", len(f.containers)+1)
	f.containers[id] = &fakeContainer{req: req}
	return id, nil
}

func (f *fakeNode) Start(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[id].running = true
	f.containers[id].started = true
	f.starts++
	return nil
}

func (f *fakeNode) RestoreFiles(_ context.Context, id string, files []container.File) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.restored == nil {
		f.restored = map[string][]container.File{}
	}
	f.restored[id] = files
	return nil
}

// exit makes a running container stop with code, as the runtime reports it.
func (f *fakeNode) exit(id string, code int) {
	f.mu.Lock()
	c := f.containers[id]
	c.running, c.exit = false, code
	labels := c.req.Config.Labels
	f.mu.Unlock()
	f.events <- container.Event{ID: id, Action: "die", ExitCode: code, Labels: labels}
}

func (f *fakeNode) Stop(_ context.Context, id string, _ *time.Duration) error {
	f.mu.Lock()
	c, ok := f.containers[id]
	f.mu.Unlock()
	if !ok {
		return notFound{errors.New("no such container")}
	}
	if c.running {
		f.exit(id, 143)
	}
	return nil
}

func (f *fakeNode) Remove(_ context.Context, id string, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.containers, id)
	return nil
}

func (f *fakeNode) Inspect(_ context.Context, id string) (ctypes.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return ctypes.InspectResponse{}, notFound{errors.New("no such container")}
	}
	status := ctypes.StateExited
	switch {
	case c.running:
		status = ctypes.StateRunning
	case !c.started:
		status = ctypes.StateCreated
	}
	return ctypes.InspectResponse{ID: id, State: &ctypes.State{Status: status, Running: c.running, Pid: 42, ExitCode: c.exit}}, nil
}

func (f *fakeNode) List(context.Context, bool) ([]ctypes.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ctypes.Summary
	for id, c := range f.containers {
		out = append(out, ctypes.Summary{ID: id, Labels: c.req.Config.Labels})
	}
	return out, nil
}

func (f *fakeNode) Subscribe(context.Context) <-chan container.Event { return f.events }

func (f *fakeNode) Get(_ context.Context, ref string) (image.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.images[ref] {
		return image.Image{ID: "sha256:1"}, nil
	}
	return image.Image{}, notFound{errors.New("No such image: " + ref)}
}

func (f *fakeNode) Pull(_ context.Context, ref string, _ *registry.AuthConfig, _ func(jsonstream.Message)) (image.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pulls = append(f.pulls, ref)
	return image.Image{}, errors.New("manifest unknown")
}

func (f *fakeNode) CreateSandbox(_ context.Context, id string) (bridge.Sandbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sandboxes[id] = true
	return bridge.Sandbox{ID: id, NetNSPath: "/run/netns/" + id, IP: sandboxIP(id)}, nil
}

func (f *fakeNode) PublishPorts(_ context.Context, _ string, ports []bridge.PortMapping) ([]bridge.PortMapping, error) {
	return ports, nil
}

func (f *fakeNode) SandboxIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id := range f.sandboxes {
		ids = append(ids, id)
	}
	return ids
}

func (f *fakeNode) Sandbox(id string) (bridge.Sandbox, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.sandboxes[id] {
		return bridge.Sandbox{}, false
	}
	return bridge.Sandbox{ID: id, IP: sandboxIP(id)}, true
}

// sandboxIP gives each fake sandbox its own address.
func sandboxIP(id string) netip.Addr {
	return netip.AddrFrom4([4]byte{172, 30, 0, byte(2 + len(id) + int(id[len(id)-1]))})
}

func (f *fakeNode) Isolate(context.Context, string) error { return nil }

func (f *fakeNode) PublishService(_ context.Context, serviceID string, ports []bridge.ServicePort, backends []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.published = append(f.published, fmt.Sprint(serviceID, ports, backends))
	return nil
}

func (f *fakeNode) RemoveSandbox(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sandboxes, id)
	return nil
}

// Open serves the one session the fake manager holds: the sets a test sends.
func (f *fakeNode) Open(ctx context.Context, _ string, _ session.Hello) (string, <-chan session.Message, error) {
	f.mu.Lock()
	offline, cut := f.offline, f.cut
	f.mu.Unlock()
	if offline {
		return "", nil, errors.New("no manager reachable")
	}
	out := make(chan session.Message)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case <-cut:
				return
			case set := <-f.sets:
				select {
				case out <- session.Message{Assignments: &set}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return "s1", out, nil
}

func (f *fakeNode) UpdateTaskStatus(_ context.Context, _, _ string, updates []session.StatusUpdate) error {
	for _, u := range updates {
		f.reports <- u
	}
	return nil
}

func (f *fakeNode) Heartbeat(context.Context, string, string) error { return nil }

func startAgent(t *testing.T, f *fakeNode) *Agent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := New(Config{NodeID: "n1", Dispatcher: session.Local(f, "n1"), Containers: f, Images: f, Network: f, Logger: slog.New(slog.DiscardHandler)})
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return a
}

func assigned(id, img string, desired swarm.TaskState) session.Assignment {
	t := &swarm.Task{ID: id, ServiceID: "s1", Slot: 1, NodeID: "n1", DesiredState: desired}
	t.Status.State = swarm.TaskStateAssigned
	t.Spec.ContainerSpec = &swarm.ContainerSpec{Image: img}
	return session.Assignment{Task: t, ServiceName: "web"}
}

// expect waits for the next reports of a task to reach the last of states,
// each report one of states in order. States may be skipped: when several wait
// to be sent, the agent sends only the newest of each task.
func expect(t *testing.T, f *fakeNode, taskID string, states ...swarm.TaskState) session.StatusUpdate {
	t.Helper()
	var last session.StatusUpdate
	for i := 0; i < len(states); {
		select {
		case u := <-f.reports:
			j := i
			for j < len(states) && states[j] != u.Status.State {
				j++
			}
			if u.TaskID != taskID || j == len(states) {
				t.Fatalf("report %s %s (%q), want %s one of %v", u.TaskID, u.Status.State, u.Status.Err, taskID, states[i:])
			}
			last, i = u, j+1
		case <-time.After(5 * time.Second):
			t.Fatalf("no report %s for %s", states[i], taskID)
		}
	}
	return last
}

func TestTaskRunsAndFails(t *testing.T) {
	f := newFakeNode()
	startAgent(t, f)
	as := assigned("t1", "busybox", swarm.TaskStateRunning)
	f.sets <- session.AssignmentSet{Full: true, Tasks: []session.Assignment{as}}
	running := expect(t, f, "t1", swarm.TaskStateAccepted, swarm.TaskStatePreparing, swarm.TaskStateStarting, swarm.TaskStateRunning)
	cs := running.Status.ContainerStatus
	if cs == nil || cs.ContainerID != "c1" || cs.PID != 42 {
		t.Fatalf("container status %+v", cs)
	}
	f.mu.Lock()
	req := f.containers["c1"].req
	f.mu.Unlock()
	if req.Name != "web.1.t1" || req.Config.Labels[LabelTaskID] != "t1" || req.Config.Labels[LabelServiceName] != "web" || req.NetNSPath != "/run/netns/t1" {
		t.Fatalf("create request %+v", req)
	}
	f.exit("c1", 1)
	failed := expect(t, f, "t1", swarm.TaskStateFailed)
	if failed.Status.Err != "task: non-zero exit (1)" || failed.Status.ContainerStatus.ExitCode != 1 {
		t.Fatalf("failure report %+v", failed.Status)
	}
}

func TestShutdownAndRemove(t *testing.T) {
	f := newFakeNode()
	startAgent(t, f)
	f.sets <- session.AssignmentSet{Full: true, Tasks: []session.Assignment{assigned("t1", "busybox", swarm.TaskStateRunning)}}
	expect(t, f, "t1", swarm.TaskStateAccepted, swarm.TaskStatePreparing, swarm.TaskStateStarting, swarm.TaskStateRunning)
	f.sets <- session.AssignmentSet{Tasks: []session.Assignment{assigned("t1", "busybox", swarm.TaskStateShutdown)}}
	expect(t, f, "t1", swarm.TaskStateShutdown)
	// The ended task keeps its container (its logs, inspect) but not its network.
	waitUntil(t, "the shut down task's sandbox removed", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return !f.sandboxes["t1"] && len(f.containers) == 1
	})
	f.sets <- session.AssignmentSet{Removed: []string{"t1"}}
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		gone := len(f.containers) == 0 && len(f.sandboxes) == 0
		f.mu.Unlock()
		if gone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("container or sandbox of a removed task left behind")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMissingImageRejectsTask(t *testing.T) {
	f := newFakeNode()
	startAgent(t, f)
	f.sets <- session.AssignmentSet{Full: true, Tasks: []session.Assignment{assigned("t1", "nope:1", swarm.TaskStateRunning)}}
	rejected := expect(t, f, "t1", swarm.TaskStateAccepted, swarm.TaskStatePreparing, swarm.TaskStateRejected)
	if rejected.Status.Err != "No such image: nope:1" {
		t.Fatalf("rejection %q", rejected.Status.Err)
	}
	if len(f.pulls) != 1 {
		t.Fatalf("pulls %v", f.pulls)
	}
}

func TestAdoptsRunningContainer(t *testing.T) {
	f := newFakeNode()
	as := assigned("t1", "busybox", swarm.TaskStateRunning)
	req, err := createRequest(as, "n1", bridge.Sandbox{NetNSPath: "/run/netns/t1", IP: netip.MustParseAddr("172.30.0.2")})
	if err != nil {
		t.Fatal(err)
	}
	f.containers["c9"] = &fakeContainer{req: req, running: true, started: true}
	as.Task.Status.State = swarm.TaskStateStarting
	startAgent(t, f)
	f.sets <- session.AssignmentSet{Full: true, Tasks: []session.Assignment{as}}
	u := expect(t, f, "t1", swarm.TaskStateRunning)
	if u.Status.ContainerStatus.ContainerID != "c9" {
		t.Fatalf("adopted %+v", u.Status.ContainerStatus)
	}
	f.mu.Lock()
	n := len(f.containers)
	f.mu.Unlock()
	if n != 1 {
		t.Fatalf("a running task container was recreated: %d containers", n)
	}
}

// leftContainer puts a container of task t1 on the node, as a daemon that died
// left it, and returns t1's assignment in state.
func leftContainer(t *testing.T, f *fakeNode, c *fakeContainer, desired, state swarm.TaskState) session.Assignment {
	t.Helper()
	as := assigned("t1", "busybox", desired)
	req, err := createRequest(as, "n1", bridge.Sandbox{NetNSPath: "/run/netns/t1", IP: netip.MustParseAddr("172.30.0.2")})
	if err != nil {
		t.Fatal(err)
	}
	c.req = req
	f.containers["c9"] = c
	as.Task.Status.State = state
	return as
}

// A container created but never started when the daemon died is replaced by a
// new one that runs: the task was never running, so it just goes on.
func TestAdoptStartsNeverStartedTask(t *testing.T) {
	f := newFakeNode()
	as := leftContainer(t, f, &fakeContainer{}, swarm.TaskStateRunning, swarm.TaskStateStarting)
	startAgent(t, f)
	f.sets <- session.AssignmentSet{Full: true, Tasks: []session.Assignment{as}}
	u := expect(t, f, "t1", swarm.TaskStateRunning)
	if cs := u.Status.ContainerStatus; cs == nil || cs.ContainerID == "c9" {
		t.Fatalf("running in %+v, want a new container", cs)
	}
	f.mu.Lock()
	_, left := f.containers["c9"]
	n := len(f.containers)
	f.mu.Unlock()
	if left || n != 1 {
		t.Fatalf("the never started container is still there (%d containers)", n)
	}
}

// A task container that exited while the daemon was down is reported as
// exited, so its restart policy applies.
func TestAdoptReportsExitWhileDown(t *testing.T) {
	f := newFakeNode()
	as := leftContainer(t, f, &fakeContainer{started: true, exit: 255}, swarm.TaskStateRunning, swarm.TaskStateRunning)
	startAgent(t, f)
	f.sets <- session.AssignmentSet{Full: true, Tasks: []session.Assignment{as}}
	u := expect(t, f, "t1", swarm.TaskStateFailed)
	if u.Status.Err != "task: non-zero exit (255)" || u.Status.ContainerStatus.ContainerID != "c9" {
		t.Fatalf("report %+v", u.Status)
	}
}

// A never started container of a task that is not to run any more goes, and
// the task is reported shut down.
func TestAdoptDiscardsNeverStartedContainerOfStoppedTask(t *testing.T) {
	f := newFakeNode()
	as := leftContainer(t, f, &fakeContainer{}, swarm.TaskStateShutdown, swarm.TaskStateStarting)
	startAgent(t, f)
	f.sets <- session.AssignmentSet{Full: true, Tasks: []session.Assignment{as}}
	expect(t, f, "t1", swarm.TaskStateShutdown)
	waitUntil(t, "the never started container removed", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.containers) == 0
	})
}

// A network sandbox of a task no longer assigned, with no container (the
// daemon died between making the two, or removing them), is removed.
func TestRemovesSandboxOfUnassignedTask(t *testing.T) {
	f := newFakeNode()
	f.sandboxes["gone"] = true
	startAgent(t, f)
	f.sets <- session.AssignmentSet{Full: true, Tasks: []session.Assignment{assigned("t1", "busybox", swarm.TaskStateRunning)}}
	expect(t, f, "t1", swarm.TaskStateAccepted, swarm.TaskStatePreparing, swarm.TaskStateStarting, swarm.TaskStateRunning)
	waitUntil(t, "the sandbox of the unassigned task removed", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return !f.sandboxes["gone"] && f.sandboxes["t1"]
	})
}

func TestExpandTemplates(t *testing.T) {
	as := assigned("t1", "busybox", swarm.TaskStateRunning)
	as.Task.Spec.ContainerSpec.Hostname = "box-{{.Task.Slot}}"
	as.Task.Spec.ContainerSpec.Env = []string{"SVC={{ .Service.Name }}", "NODE={{.Node.ID}}", "PLAIN=x"}
	cs, err := expandTemplates(as, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if cs.Hostname != "box-1" || cs.Env[0] != "SVC=web" || cs.Env[1] != "NODE=n1" || cs.Env[2] != "PLAIN=x" {
		t.Fatalf("expanded %q %v", cs.Hostname, cs.Env)
	}
	if as.Task.Spec.ContainerSpec.Hostname != "box-{{.Task.Slot}}" {
		t.Fatal("the task's own spec was modified")
	}
	for _, bad := range []string{"{{.Task.Nope}}", `{{index .Service.Labels "a"}}`} {
		as.Task.Spec.ContainerSpec.Hostname = bad
		if _, err := expandTemplates(as, "n1"); err == nil {
			t.Errorf("template %q accepted", bad)
		}
	}
}

// The ingress ports of a service are balanced over its running tasks on the node,
// and follow them as they start, stop and go.
func TestIngressFollowsRunningTasks(t *testing.T) {
	f := newFakeNode()
	startAgent(t, f)
	withPort := func(id string) session.Assignment {
		as := assigned(id, "busybox", swarm.TaskStateRunning)
		as.Task.Status.PortStatus.Ports = []swarm.PortConfig{{Protocol: "tcp", TargetPort: 80, PublishedPort: 8080, PublishMode: swarm.PortConfigPublishModeIngress}}
		return as
	}
	f.sets <- session.AssignmentSet{Full: true, Tasks: []session.Assignment{withPort("t1"), withPort("t2")}}
	expectAll := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			f.mu.Lock()
			last := ""
			if n := len(f.published); n > 0 {
				last = f.published[n-1]
			}
			f.mu.Unlock()
			if last == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("last PublishService = %q, want %q", last, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	both := fmt.Sprint("s1", []bridge.ServicePort{{Protocol: "tcp", PublishedPort: 8080, TargetPort: 80}}, sortedAddrs(sandboxIP("t1"), sandboxIP("t2")))
	expectAll(both)
	f.mu.Lock()
	var c1 string
	for id, c := range f.containers {
		if c.req.Config.Labels[LabelTaskID] == "t1" {
			c1 = id
		}
	}
	f.mu.Unlock()
	f.exit(c1, 1)
	expectAll(fmt.Sprint("s1", []bridge.ServicePort{{Protocol: "tcp", PublishedPort: 8080, TargetPort: 80}}, []netip.Addr{sandboxIP("t2")}))
	f.sets <- session.AssignmentSet{Removed: []string{"t1", "t2"}}
	expectAll(fmt.Sprint("s1", []bridge.ServicePort(nil), []netip.Addr(nil)))
}

func sortedAddrs(a, b netip.Addr) []netip.Addr {
	if b.Less(a) {
		a, b = b, a
	}
	return []netip.Addr{a, b}
}

// A job's task is desired Complete: the agent runs it and reports Complete when
// it exits 0, not Shutdown.
func TestJobTaskRunsToCompletion(t *testing.T) {
	f := newFakeNode()
	startAgent(t, f)
	f.sets <- session.AssignmentSet{Full: true, Tasks: []session.Assignment{assigned("t1", "busybox", swarm.TaskStateComplete)}}
	expect(t, f, "t1", swarm.TaskStateAccepted, swarm.TaskStatePreparing, swarm.TaskStateStarting, swarm.TaskStateRunning)
	f.exit("c1", 0)
	done := expect(t, f, "t1", swarm.TaskStateComplete)
	if done.Status.ContainerStatus == nil || done.Status.ContainerStatus.ExitCode != 0 {
		t.Fatalf("completion report %+v", done.Status)
	}
}

// A task desired ready is prepared (its image checked or pulled) and reported
// ready, without a container; desired running, it starts.
func TestReadyTaskIsPreparedThenStarted(t *testing.T) {
	f := newFakeNode()
	startAgent(t, f)
	f.sets <- session.AssignmentSet{Full: true, Tasks: []session.Assignment{assigned("t1", "busybox", swarm.TaskStateReady)}}
	expect(t, f, "t1", swarm.TaskStateAccepted, swarm.TaskStatePreparing, swarm.TaskStateReady)
	f.mu.Lock()
	n := len(f.containers)
	f.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d containers created for a task desired ready", n)
	}
	f.sets <- session.AssignmentSet{Tasks: []session.Assignment{assigned("t1", "busybox", swarm.TaskStateRunning)}}
	expect(t, f, "t1", swarm.TaskStateStarting, swarm.TaskStateRunning)
}

// A node with no manager reachable restarts an exited task itself, in the
// same container, as its policy says, and tells nobody of the failure; with
// condition none it leaves it dead and reports it.
func TestTaskRestartedLocallyWithoutManagers(t *testing.T) {
	f := newFakeNode()
	a := startAgent(t, f)
	delay := 10 * time.Millisecond
	as := assigned("t1", "busybox", swarm.TaskStateRunning)
	as.Task.Spec.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: &delay}
	as.Task.Spec.ContainerSpec.Secrets = []*swarm.SecretReference{{SecretID: "s1", SecretName: "pass",
		File: &swarm.SecretReferenceFileTarget{Name: "pass", UID: "0", GID: "0", Mode: 0o400}}}
	as.Secrets = []swarm.Secret{{ID: "s1", Spec: swarm.SecretSpec{Data: []byte("hunter2")}}}
	none := assigned("t2", "busybox", swarm.TaskStateRunning)
	none.Task.Spec.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone}
	f.sets <- session.AssignmentSet{Full: true, Tasks: []session.Assignment{as}}
	expect(t, f, "t1", swarm.TaskStateAccepted, swarm.TaskStatePreparing, swarm.TaskStateStarting, swarm.TaskStateRunning)
	f.sets <- session.AssignmentSet{Tasks: []session.Assignment{none}}
	expect(t, f, "t2", swarm.TaskStateAccepted, swarm.TaskStatePreparing, swarm.TaskStateStarting, swarm.TaskStateRunning)

	f.mu.Lock()
	f.offline = true
	starts := f.starts
	cut := f.cut
	f.mu.Unlock()
	close(cut)
	waitUntil(t, "the session to end", func() bool { s, _ := a.sess.get(); return s == nil })

	f.exit("c1", 1)
	waitUntil(t, "a local restart", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.starts == starts+1 && f.containers["c1"].running
	})
	// Its secret, gone with the stopped run, was given back before the start.
	f.mu.Lock()
	files := f.restored["c1"]
	f.mu.Unlock()
	if len(files) != 1 || files[0].Path != "/run/secrets/pass" || string(files[0].Data) != "hunter2" || files[0].Mode != 0o400 {
		t.Fatalf("files restored before the local restart: %+v", files)
	}
	f.exit("c2", 0)

	// The managers are back: they hear of t2's end, and nothing of t1's.
	f.mu.Lock()
	f.offline, f.cut = false, make(chan struct{})
	f.mu.Unlock()
	f.sets <- session.AssignmentSet{Full: true, Tasks: []session.Assignment{as, none}}
	completed := false
	for quiet := time.After(time.Second); !completed; {
		select {
		case u := <-f.reports:
			switch {
			case u.TaskID == "t2" && u.Status.State == swarm.TaskStateComplete:
				completed = true
			case u.TaskID == "t1" && u.Status.State != swarm.TaskStateRunning:
				t.Fatalf("t1 reported %s; it was restarted on the node and runs", u.Status.State)
			}
		case <-quiet:
			t.Fatal("t2's completion was not reported once the session came back")
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.containers["c2"].running {
		t.Fatal("a task with restart condition none was restarted")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fakeNode) Logs(context.Context, string, container.LogOptions) (<-chan container.LogEntry, error) {
	ch := make(chan container.LogEntry)
	close(ch)
	return ch, nil
}
