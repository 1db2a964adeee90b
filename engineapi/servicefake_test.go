package engineapi

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster"
)

// svcFakeErr is a classified error of the fake control plane used by the service,
// task and log tests.
type svcFakeErr struct {
	msg                string
	notFound, invalid  bool
	unavailable, clash bool
}

func (e *svcFakeErr) Error() string          { return e.msg }
func (e *svcFakeErr) NotFound() bool         { return e.notFound }
func (e *svcFakeErr) InvalidParameter() bool { return e.invalid }
func (e *svcFakeErr) Unavailable() bool      { return e.unavailable }
func (e *svcFakeErr) Conflict() bool         { return e.clash }

var svcFakeEpoch = time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)

// serviceFake is an in-memory single-node swarm manager that keeps services and
// their tasks: every replica gets a running task made from the service's current
// template; an update shuts the old tasks down and starts new ones.
type serviceFake struct {
	mu       sync.Mutex
	node     swarm.Node
	services []swarm.Service
	tasks    []swarm.Task
	logs     []cluster.LogMessage
	seq      int

	lastAuth       string
	lastUpdateOpts cluster.ServiceUpdateOptions
	lastLogOpts    cluster.LogOptions
}

func newServiceFake() *serviceFake {
	return &serviceFake{node: swarm.Node{
		ID:   "node0000000000000000000001",
		Meta: swarm.Meta{Version: swarm.Version{Index: 3}, CreatedAt: svcFakeEpoch, UpdatedAt: svcFakeEpoch},
		Spec: swarm.NodeSpec{Role: swarm.NodeRoleManager, Availability: swarm.NodeAvailabilityActive},
		Description: swarm.NodeDescription{Hostname: "edge1",
			Platform: swarm.Platform{Architecture: "x86_64", OS: "linux"}},
		Status:        swarm.NodeStatus{State: swarm.NodeStateReady, Addr: "127.0.0.1"},
		ManagerStatus: &swarm.ManagerStatus{Leader: true, Reachability: swarm.ReachabilityReachable, Addr: "127.0.0.1:2377"},
	}}
}

// newID returns a 25-character swarm-style ID starting with prefix.
func (f *serviceFake) newID(prefix string) string {
	f.seq++
	id := fmt.Sprintf("%s%d", prefix, f.seq)
	return id + strings.Repeat("0", 25-len(id))
}

func (f *serviceFake) findServiceLocked(idOrName string) (int, error) {
	match := -1
	for i, s := range f.services {
		if s.ID == idOrName || s.Spec.Name == idOrName {
			return i, nil
		}
		if strings.HasPrefix(s.ID, idOrName) {
			if match >= 0 {
				return 0, &svcFakeErr{invalid: true, msg: "service " + idOrName + " is ambiguous"}
			}
			match = i
		}
	}
	if match < 0 {
		return 0, &svcFakeErr{notFound: true, msg: "service " + idOrName + " not found"}
	}
	return match, nil
}

// startTasksLocked makes one running task per replica of service i.
func (f *serviceFake) startTasksLocked(i int) {
	s := f.services[i]
	n := uint64(1)
	if s.Spec.Mode.Replicated != nil && s.Spec.Mode.Replicated.Replicas != nil {
		n = *s.Spec.Mode.Replicated.Replicas
	}
	for slot := 1; slot <= int(n); slot++ {
		f.tasks = append(f.tasks, swarm.Task{
			ID:           f.newID("task"),
			Meta:         swarm.Meta{Version: swarm.Version{Index: uint64(f.seq)}, CreatedAt: svcFakeEpoch, UpdatedAt: svcFakeEpoch},
			Spec:         s.Spec.TaskTemplate,
			ServiceID:    s.ID,
			Slot:         slot,
			NodeID:       f.node.ID,
			DesiredState: swarm.TaskStateRunning,
			Status: swarm.TaskStatus{Timestamp: svcFakeEpoch, State: swarm.TaskStateRunning, Message: "started",
				ContainerStatus: &swarm.ContainerStatus{ContainerID: f.newID("ctr"), PID: 100 + slot}},
		})
	}
}

func (f *serviceFake) Info(context.Context) swarm.Info {
	return swarm.Info{NodeID: f.node.ID, NodeAddr: "127.0.0.1", LocalNodeState: swarm.LocalNodeStateActive,
		ControlAvailable: true, Nodes: 1, Managers: 1,
		RemoteManagers: []swarm.Peer{{NodeID: f.node.ID, Addr: "127.0.0.1:2377"}},
		Cluster:        &swarm.ClusterInfo{ID: "cluster00000000000000000001"}}
}

var errSvcFakeUnsupported = &svcFakeErr{unavailable: true, msg: "not in this fake"}

func (f *serviceFake) Init(context.Context, swarm.InitRequest) (string, error) {
	return "", errSvcFakeUnsupported
}
func (f *serviceFake) Join(context.Context, swarm.JoinRequest) error { return errSvcFakeUnsupported }
func (f *serviceFake) Leave(context.Context, bool) error             { return errSvcFakeUnsupported }
func (f *serviceFake) Inspect(context.Context) (swarm.Swarm, error) {
	return swarm.Swarm{ClusterInfo: *f.Info(context.Background()).Cluster}, nil
}
func (f *serviceFake) Update(context.Context, uint64, swarm.Spec, cluster.UpdateFlags) error {
	return errSvcFakeUnsupported
}
func (f *serviceFake) UnlockKey(context.Context) (string, error) { return "", errSvcFakeUnsupported }
func (f *serviceFake) Unlock(context.Context, string) error      { return errSvcFakeUnsupported }
func (f *serviceFake) Nodes(context.Context) ([]swarm.Node, error) {
	return []swarm.Node{f.node}, nil
}
func (f *serviceFake) Node(_ context.Context, idOrName string) (swarm.Node, error) {
	if idOrName == f.node.ID || idOrName == f.node.Description.Hostname || (len(idOrName) > 2 && strings.HasPrefix(f.node.ID, idOrName)) {
		return f.node, nil
	}
	return swarm.Node{}, &svcFakeErr{notFound: true, msg: "node " + idOrName + " not found"}
}
func (f *serviceFake) UpdateNode(context.Context, string, uint64, swarm.NodeSpec) error {
	return errSvcFakeUnsupported
}
func (f *serviceFake) RemoveNode(context.Context, string, bool) error { return errSvcFakeUnsupported }

func (f *serviceFake) CreateService(_ context.Context, spec swarm.ServiceSpec, auth string) (swarm.ServiceCreateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if spec.Name == "" || spec.TaskTemplate.ContainerSpec == nil || spec.TaskTemplate.ContainerSpec.Image == "" {
		return swarm.ServiceCreateResponse{}, &svcFakeErr{invalid: true, msg: "ContainerSpec: image reference must be provided"}
	}
	if _, err := f.findServiceLocked(spec.Name); err == nil {
		return swarm.ServiceCreateResponse{}, &svcFakeErr{clash: true, msg: "rpc error: code = AlreadyExists desc = name conflicts with an existing object: service " + spec.Name + " already exists"}
	}
	if spec.Mode.Replicated == nil && spec.Mode.Global == nil {
		one := uint64(1)
		spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &one}
	}
	f.lastAuth = auth
	svc := swarm.Service{ID: f.newID("svc"), Spec: spec,
		Meta: swarm.Meta{Version: swarm.Version{Index: uint64(f.seq)}, CreatedAt: svcFakeEpoch, UpdatedAt: svcFakeEpoch}}
	f.services = append(f.services, svc)
	f.startTasksLocked(len(f.services) - 1)
	return swarm.ServiceCreateResponse{ID: svc.ID}, nil
}

func (f *serviceFake) Services(_ context.Context, withStatus bool) ([]swarm.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]swarm.Service, 0, len(f.services))
	for _, s := range f.services {
		if withStatus {
			st := &swarm.ServiceStatus{}
			for _, t := range f.tasks {
				if t.ServiceID == s.ID && t.DesiredState == swarm.TaskStateRunning {
					st.DesiredTasks++
					if t.Status.State == swarm.TaskStateRunning {
						st.RunningTasks++
					}
				}
			}
			s.ServiceStatus = st
		}
		out = append(out, s)
	}
	return out, nil
}

func (f *serviceFake) Service(_ context.Context, idOrName string, _ bool) (swarm.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.findServiceLocked(idOrName)
	if err != nil {
		return swarm.Service{}, err
	}
	return f.services[i], nil
}

func (f *serviceFake) UpdateService(_ context.Context, idOrName string, version uint64, spec swarm.ServiceSpec, opts cluster.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.findServiceLocked(idOrName)
	if err != nil {
		return swarm.ServiceUpdateResponse{}, err
	}
	if f.services[i].Version.Index != version {
		return swarm.ServiceUpdateResponse{}, &svcFakeErr{invalid: true, msg: "rpc error: code = Unknown desc = update out of sequence"}
	}
	f.lastUpdateOpts = opts
	prev := f.services[i].Spec
	f.services[i].PreviousSpec = &prev
	f.services[i].Spec = spec
	f.seq++
	f.services[i].Version.Index = uint64(f.seq)
	for j := range f.tasks {
		if f.tasks[j].ServiceID == f.services[i].ID {
			f.tasks[j].DesiredState = swarm.TaskStateShutdown
			f.tasks[j].Status.State = swarm.TaskStateShutdown
		}
	}
	f.startTasksLocked(i)
	return swarm.ServiceUpdateResponse{}, nil
}

func (f *serviceFake) RemoveService(_ context.Context, idOrName string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.findServiceLocked(idOrName)
	if err != nil {
		return err
	}
	id := f.services[i].ID
	f.services = append(f.services[:i], f.services[i+1:]...)
	kept := f.tasks[:0]
	for _, t := range f.tasks {
		if t.ServiceID != id {
			kept = append(kept, t)
		}
	}
	f.tasks = kept
	return nil
}

func (f *serviceFake) Tasks(context.Context) ([]swarm.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]swarm.Task(nil), f.tasks...), nil
}

func (f *serviceFake) Task(_ context.Context, id string) (swarm.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tasks {
		if t.ID == id || (len(id) > 3 && strings.HasPrefix(t.ID, id)) {
			return t, nil
		}
	}
	return swarm.Task{}, &svcFakeErr{notFound: true, msg: "task " + id + " not found"}
}

// addLog records a line of output of task t.
func (f *serviceFake) addLog(t swarm.Task, stream, line string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, cluster.LogMessage{Stream: stream, Time: at, Line: []byte(line),
		NodeID: t.NodeID, ServiceID: t.ServiceID, TaskID: t.ID})
}

// sendLogs streams the recorded lines that keep selects; following, it then waits
// for the client to leave.
func (f *serviceFake) sendLogs(ctx context.Context, opts cluster.LogOptions, keep func(cluster.LogMessage) bool) <-chan cluster.LogMessage {
	f.mu.Lock()
	f.lastLogOpts = opts
	var msgs []cluster.LogMessage
	for _, m := range f.logs {
		if keep(m) && (m.Stream == "stdout" && opts.Stdout || m.Stream == "stderr" && opts.Stderr) {
			msgs = append(msgs, m)
		}
	}
	f.mu.Unlock()
	if opts.Tail >= 0 && opts.Tail < len(msgs) {
		msgs = msgs[len(msgs)-opts.Tail:]
	}
	ch := make(chan cluster.LogMessage)
	go func() {
		defer close(ch)
		for _, m := range msgs {
			select {
			case ch <- m:
			case <-ctx.Done():
				return
			}
		}
		if opts.Follow {
			<-ctx.Done()
		}
	}()
	return ch
}

func (f *serviceFake) ServiceLogs(ctx context.Context, idOrName string, opts cluster.LogOptions) (<-chan cluster.LogMessage, error) {
	svc, err := f.Service(ctx, idOrName, false)
	if err != nil {
		return nil, err
	}
	return f.sendLogs(ctx, opts, func(m cluster.LogMessage) bool { return m.ServiceID == svc.ID }), nil
}

func (f *serviceFake) TaskLogs(ctx context.Context, taskID string, opts cluster.LogOptions) (<-chan cluster.LogMessage, error) {
	t, err := f.Task(ctx, taskID)
	if err != nil {
		return nil, err
	}
	return f.sendLogs(ctx, opts, func(m cluster.LogMessage) bool { return m.TaskID == t.ID }), nil
}

func (f *serviceFake) Events(ctx context.Context) <-chan events.Message {
	return make(chan events.Message)
}

// svcAPI is a Server on a unix socket in a temp dir, for HTTP requests and the
// docker CLI.
type svcAPI struct {
	sock   string
	client *http.Client
}

// startSvcAPI serves cfg until the test ends.
func startSvcAPI(t *testing.T, cfg Config) *svcAPI {
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
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(ln) }()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		_ = hs.Close()
		<-done
		srv.Close()
	})
	return &svcAPI{sock: sock, client: client}
}

// call sends a request and returns the response with its body read.
func (a *svcAPI) call(t *testing.T, method, path string, body io.Reader, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://shoal"+path, body)
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
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
	return resp, data
}

// docker runs the docker CLI against the API with stdin and returns its output.
func (a *svcAPI) docker(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	bin, lookErr := exec.LookPath("docker")
	if lookErr != nil {
		t.Fatalf("the docker CLI is needed for this test: %v", lookErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+a.sock, "DOCKER_CONFIG="+t.TempDir(),
		"DOCKER_CLI_HINTS=false", "NO_COLOR=1", "DOCKER_API_VERSION=")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// mustDocker is docker that fails the test when the CLI fails.
func (a *svcAPI) mustDocker(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := a.docker(t, "", args...)
	if err != nil {
		t.Fatalf("docker %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}
