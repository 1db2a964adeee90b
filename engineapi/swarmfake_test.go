package engineapi

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster"
	ctr "github.com/shoal-project/shoal/runtime/container"
)

// swarmFakeErr is a classified error of the fake control plane.
type swarmFakeErr struct {
	msg                                   string
	notFound, unavailable, invalid, clash bool
}

func (e *swarmFakeErr) Error() string          { return e.msg }
func (e *swarmFakeErr) NotFound() bool         { return e.notFound }
func (e *swarmFakeErr) Unavailable() bool      { return e.unavailable }
func (e *swarmFakeErr) InvalidParameter() bool { return e.invalid }
func (e *swarmFakeErr) Conflict() bool         { return e.clash }

var (
	errFakeNotInSwarm = &swarmFakeErr{unavailable: true, msg: `This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`}
	errFakeInSwarm    = &swarmFakeErr{unavailable: true, msg: `This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.`}
)

// swarmFake is an in-memory control plane of one node, enough for the swarm, node and
// events endpoints.
type swarmFake struct {
	mu       sync.Mutex
	nodeID   string
	hostname string
	active   bool
	manager  bool
	cluster  swarm.Swarm
	nodes    []swarm.Node
	subs     []chan events.Message

	rec swarmFakeCalls
}

// swarmFakeCalls is what the API passed to the fake, for assertions.
type swarmFakeCalls struct {
	lastInit   swarm.InitRequest
	lastJoin   swarm.JoinRequest
	lastUpdate struct {
		version uint64
		spec    swarm.Spec
		flags   cluster.UpdateFlags
	}
	lastLeaveForce  bool
	lastNodeUpdate  swarm.NodeSpec
	lastNodeVersion uint64
	removed         []string
}

// calls returns a copy of the recorded calls.
func (f *swarmFake) calls() swarmFakeCalls {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.rec
	c.removed = append([]string(nil), f.rec.removed...)
	return c
}

func newSwarmFake(nodeID, hostname string) *swarmFake {
	return &swarmFake{nodeID: nodeID, hostname: hostname}
}

// activate puts the fake in a swarm as a manager, with extra worker nodes.
func (f *swarmFake) activate(addr string, workers ...swarm.Node) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.activateLocked(addr)
	f.nodes = append(f.nodes, workers...)
}

func (f *swarmFake) activateLocked(addr string) {
	f.active, f.manager = true, true
	limit := int64(5)
	now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	f.cluster = swarm.Swarm{
		ClusterInfo: swarm.ClusterInfo{
			ID:   "clusterid0123456789abcdefg",
			Meta: swarm.Meta{Version: swarm.Version{Index: 10}, CreatedAt: now, UpdatedAt: now},
			Spec: swarm.Spec{
				Annotations:   swarm.Annotations{Name: "default"},
				Orchestration: swarm.OrchestrationConfig{TaskHistoryRetentionLimit: &limit},
				Raft:          swarm.RaftConfig{SnapshotInterval: 10000, ElectionTick: 10, HeartbeatTick: 1},
				Dispatcher:    swarm.DispatcherConfig{HeartbeatPeriod: 5 * time.Second},
				CAConfig:      swarm.CAConfig{NodeCertExpiry: 90 * 24 * time.Hour},
			},
			DataPathPort: 51820,
			SubnetSize:   24,
		},
		JoinTokens: swarm.JoinTokens{
			Worker:  "SWMTKN-1-digest0000-workersecret",
			Manager: "SWMTKN-1-digest0000-managersecret",
		},
	}
	f.nodes = append(f.nodes, swarm.Node{
		ID:   f.nodeID,
		Meta: swarm.Meta{Version: swarm.Version{Index: 9}, CreatedAt: now, UpdatedAt: now},
		Spec: swarm.NodeSpec{Role: swarm.NodeRoleManager, Availability: swarm.NodeAvailabilityActive,
			Annotations: swarm.Annotations{Labels: map[string]string{"zone": "a"}}},
		Description: swarm.NodeDescription{
			Hostname: f.hostname,
			Platform: swarm.Platform{Architecture: "x86_64", OS: "linux"},
			Engine:   swarm.EngineDescription{EngineVersion: "0.1.0", Labels: map[string]string{"edge": "yes"}},
		},
		Status:        swarm.NodeStatus{State: swarm.NodeStateReady, Addr: addr},
		ManagerStatus: &swarm.ManagerStatus{Leader: true, Reachability: swarm.ReachabilityReachable, Addr: addr + ":2377"},
	})
}

// emit sends a swarm event to every Events subscriber.
func (f *swarmFake) emit(ev events.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.subs {
		ch <- ev
	}
}

func (f *swarmFake) Info(context.Context) swarm.Info {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.active {
		return swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive}
	}
	addr := f.nodes[0].Status.Addr
	info := swarm.Info{
		NodeID:           f.nodeID,
		NodeAddr:         addr,
		LocalNodeState:   swarm.LocalNodeStateActive,
		ControlAvailable: f.manager,
		RemoteManagers:   []swarm.Peer{{NodeID: f.nodeID, Addr: addr + ":2377"}},
		Nodes:            len(f.nodes),
		Managers:         1,
	}
	if f.manager {
		ci := f.cluster.ClusterInfo
		info.Cluster = &ci
	}
	return info
}

func (f *swarmFake) Init(_ context.Context, req swarm.InitRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.active {
		return "", errFakeInSwarm
	}
	f.rec.lastInit = req
	addr := req.AdvertiseAddr
	if addr == "" {
		addr = "127.0.0.1"
	}
	f.activateLocked(addr)
	return f.nodeID, nil
}

func (f *swarmFake) Join(_ context.Context, req swarm.JoinRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.active {
		return errFakeInSwarm
	}
	f.rec.lastJoin = req
	return nil
}

func (f *swarmFake) Leave(_ context.Context, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.active {
		return &swarmFakeErr{unavailable: true, msg: "This node is not part of a swarm"}
	}
	f.rec.lastLeaveForce = force
	if !force {
		return &swarmFakeErr{unavailable: true, msg: "You are attempting to leave the swarm on a node that is participating as a manager. Use `--force` to ignore this message."}
	}
	f.active, f.nodes = false, nil
	return nil
}

func (f *swarmFake) Inspect(context.Context) (swarm.Swarm, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.active {
		return swarm.Swarm{}, errFakeNotInSwarm
	}
	return f.cluster, nil
}

func (f *swarmFake) Update(_ context.Context, version uint64, spec swarm.Spec, flags cluster.UpdateFlags) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.active {
		return errFakeNotInSwarm
	}
	if version != f.cluster.Version.Index {
		return &swarmFakeErr{invalid: true, msg: "update out of sequence"}
	}
	f.rec.lastUpdate.version, f.rec.lastUpdate.spec, f.rec.lastUpdate.flags = version, spec, flags
	f.cluster.Spec = spec
	f.cluster.Version.Index++
	if flags.RotateWorkerToken {
		f.cluster.JoinTokens.Worker = "SWMTKN-1-digest0000-rotatedworker"
	}
	return nil
}

func (f *swarmFake) UnlockKey(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.active {
		return "", errFakeNotInSwarm
	}
	return "", nil
}

func (f *swarmFake) Unlock(context.Context, string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.active {
		return errFakeNotInSwarm
	}
	return &swarmFakeErr{clash: true, msg: "swarm is not locked"}
}

func (f *swarmFake) Nodes(context.Context) ([]swarm.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.active {
		return nil, errFakeNotInSwarm
	}
	return append([]swarm.Node(nil), f.nodes...), nil
}

func (f *swarmFake) Node(_ context.Context, idOrName string) (swarm.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.active {
		return swarm.Node{}, errFakeNotInSwarm
	}
	i, err := f.findNodeLocked(idOrName)
	if err != nil {
		return swarm.Node{}, err
	}
	return f.nodes[i], nil
}

func (f *swarmFake) findNodeLocked(idOrName string) (int, error) {
	for i, n := range f.nodes {
		if n.ID == idOrName || n.Description.Hostname == idOrName || (len(idOrName) >= 3 && strings.HasPrefix(n.ID, idOrName)) {
			return i, nil
		}
	}
	return 0, &swarmFakeErr{notFound: true, msg: "node " + idOrName + " not found"}
}

func (f *swarmFake) UpdateNode(_ context.Context, idOrName string, version uint64, spec swarm.NodeSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.findNodeLocked(idOrName)
	if err != nil {
		return err
	}
	if f.nodes[i].Version.Index != version {
		return &swarmFakeErr{invalid: true, msg: "update out of sequence"}
	}
	f.rec.lastNodeUpdate, f.rec.lastNodeVersion = spec, version
	f.nodes[i].Spec = spec
	f.nodes[i].Version.Index++
	return nil
}

func (f *swarmFake) RemoveNode(_ context.Context, idOrName string, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.findNodeLocked(idOrName)
	if err != nil {
		return err
	}
	if f.nodes[i].Status.State == swarm.NodeStateReady && !force {
		return &swarmFakeErr{invalid: true, msg: "node " + idOrName + " is not down and can't be removed"}
	}
	f.rec.removed = append(f.rec.removed, f.nodes[i].ID)
	f.nodes = append(f.nodes[:i], f.nodes[i+1:]...)
	return nil
}

// Events streams nothing (a closed channel) outside a swarm, as cluster.Cluster does.
func (f *swarmFake) Events(ctx context.Context) <-chan events.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan events.Message, 64)
	if !f.active {
		close(ch)
		return ch
	}
	f.subs = append(f.subs, ch)
	return ch
}

var errFakeNoServices = errors.New("the swarm fake has no services")

func (f *swarmFake) CreateService(context.Context, swarm.ServiceSpec, string) (swarm.ServiceCreateResponse, error) {
	return swarm.ServiceCreateResponse{}, errFakeNoServices
}
func (f *swarmFake) Services(context.Context, bool) ([]swarm.Service, error) { return nil, nil }
func (f *swarmFake) Service(context.Context, string, bool) (swarm.Service, error) {
	return swarm.Service{}, &swarmFakeErr{notFound: true, msg: "service not found"}
}
func (f *swarmFake) UpdateService(context.Context, string, uint64, swarm.ServiceSpec, cluster.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error) {
	return swarm.ServiceUpdateResponse{}, errFakeNoServices
}
func (f *swarmFake) RemoveService(context.Context, string) error { return errFakeNoServices }
func (f *swarmFake) Tasks(context.Context) ([]swarm.Task, error) { return nil, nil }
func (f *swarmFake) Task(context.Context, string) (swarm.Task, error) {
	return swarm.Task{}, errFakeNoServices
}
func (f *swarmFake) ServiceLogs(context.Context, string, cluster.LogOptions) (<-chan cluster.LogMessage, error) {
	return nil, errFakeNoServices
}
func (f *swarmFake) TaskLogs(context.Context, string, cluster.LogOptions) (<-chan cluster.LogMessage, error) {
	return nil, errFakeNoServices
}

// systemContainersFake is the node's containers for /info and the events feed.
type systemContainersFake struct {
	mu    sync.Mutex
	list  []container.Summary
	image map[string]string   // container ID -> image
	sizes map[string][2]int64 // container ID -> rw, root fs
	subs  []chan ctr.Event
}

func (f *systemContainersFake) Size(_ context.Context, id string) (int64, int64, error) {
	s, ok := f.sizes[id]
	if !ok {
		return 0, 0, notFoundError("No such container: " + id)
	}
	return s[0], s[1], nil
}

func (f *systemContainersFake) emit(ev ctr.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.subs {
		ch <- ev
	}
}

func (f *systemContainersFake) List(context.Context, bool) ([]container.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]container.Summary(nil), f.list...), nil
}

func (f *systemContainersFake) Inspect(_ context.Context, id string) (container.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.image[id]
	if !ok {
		return container.InspectResponse{}, &swarmFakeErr{notFound: true, msg: "No such container: " + id}
	}
	return container.InspectResponse{ID: id, Config: &container.Config{Image: img}}, nil
}

func (f *systemContainersFake) Logs(context.Context, string, ctr.LogOptions) (<-chan ctr.LogEntry, error) {
	return nil, errors.New("no logs in the fake")
}

func (f *systemContainersFake) Exec(context.Context, string, ctr.ExecConfig, io.Reader, io.Writer, io.Writer) (int, error) {
	return 0, errors.New("no exec in the fake")
}

func (f *systemContainersFake) Stop(context.Context, string, *time.Duration) error { return nil }

func (f *systemContainersFake) StatPath(context.Context, string, string) (container.PathStat, error) {
	return container.PathStat{}, errors.New("no files in the fake")
}

func (f *systemContainersFake) ArchivePath(context.Context, string, string) (io.ReadCloser, container.PathStat, error) {
	return nil, container.PathStat{}, errors.New("no files in the fake")
}

func (f *systemContainersFake) ExtractToDir(context.Context, string, string, io.Reader, ctr.ExtractOptions) error {
	return errors.New("no files in the fake")
}

func (f *systemContainersFake) Kill(context.Context, string, syscall.Signal) error { return nil }

func (f *systemContainersFake) Subscribe(context.Context) <-chan ctr.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan ctr.Event, 64)
	f.subs = append(f.subs, ch)
	return ch
}

// subscribers reports how many Subscribe/Events calls the fakes have seen.
func (f *systemContainersFake) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *swarmFake) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// systemAPI is a Server listening on a unix socket for the docker CLI.
type systemAPI struct {
	srv    *Server
	sock   string
	client *http.Client
}

// startSystemAPI serves cfg on a unix socket in a temp dir until the test ends.
func startSystemAPI(t *testing.T, cfg Config) *systemAPI {
	t.Helper()
	if cfg.Version == "" {
		cfg.Version = "0.1.0-test"
	}
	if cfg.DataRoot == "" {
		cfg.DataRoot = t.TempDir()
	}
	srv := New(cfg)
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("listen on %s: %v", sock, err)
	}
	hs := &http.Server{Handler: srv}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		_ = hs.Close()
		srv.Close()
	})
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	t.Cleanup(client.CloseIdleConnections)
	return &systemAPI{srv: srv, sock: sock, client: client}
}

// do sends a request to the API and returns the status and body.
func (a *systemAPI) do(t *testing.T, method, path, contentType, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, "http://shoal"+path, strings.NewReader(body))
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s %s: %v", method, path, err)
	}
	return resp.StatusCode, string(data), resp.Header
}

// dockerCommand builds a docker CLI command pointed at the API.
func (a *systemAPI) dockerCommand(t *testing.T, ctx context.Context, args ...string) *exec.Cmd {
	t.Helper()
	bin, err := exec.LookPath("docker")
	if err != nil {
		t.Fatalf("the docker CLI is needed for this test: %v", err)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+a.sock, "DOCKER_CONFIG="+t.TempDir(), "DOCKER_CLI_HINTS=false", "NO_COLOR=1")
	return cmd
}

// docker runs the docker CLI against the API and returns stdout, stderr and its error.
func (a *systemAPI) docker(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := a.dockerCommand(t, ctx, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// sysWaitFor polls cond until it holds or the deadline passes.
func sysWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
