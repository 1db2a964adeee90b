package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

var when = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func fixture() ([]swarm.Node, []swarm.Service, []swarm.Task) {
	nodes := []swarm.Node{
		{ID: "n2", Description: swarm.NodeDescription{Hostname: "pi-2", Resources: swarm.Resources{NanoCPUs: 4e9, MemoryBytes: 4 << 30}},
			Spec: swarm.NodeSpec{Role: swarm.NodeRoleWorker, Availability: swarm.NodeAvailabilityDrain}, Status: swarm.NodeStatus{State: swarm.NodeStateDown, Addr: "10.0.0.2"}},
		{ID: "n1", Description: swarm.NodeDescription{Hostname: "pi-1", Resources: swarm.Resources{NanoCPUs: 2e9, MemoryBytes: 1 << 30}},
			Spec:          swarm.NodeSpec{Role: swarm.NodeRoleManager, Availability: swarm.NodeAvailabilityActive},
			Status:        swarm.NodeStatus{State: swarm.NodeStateReady, Addr: "10.0.0.1"},
			ManagerStatus: &swarm.ManagerStatus{Leader: true, Reachability: swarm.ReachabilityReachable}},
	}
	replicas := uint64(2)
	services := []swarm.Service{{
		ID: "s1",
		Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "web"},
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "busybox:2"}},
			Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}}},
		ServiceStatus: &swarm.ServiceStatus{RunningTasks: 2, DesiredTasks: 2},
		UpdateStatus:  &swarm.UpdateStatus{State: swarm.UpdateStateUpdating, Message: "update in progress"},
	}}
	task := func(id string, slot int, image string, state, desired swarm.TaskState, cpus int64) swarm.Task {
		return swarm.Task{ID: id, ServiceID: "s1", NodeID: "n1", Slot: slot, DesiredState: desired,
			Status: swarm.TaskStatus{State: state},
			Spec: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image},
				Resources: &swarm.ResourceRequirements{Reservations: &swarm.Resources{NanoCPUs: cpus, MemoryBytes: 64 << 20}}}}
	}
	tasks := []swarm.Task{
		task("t1", 1, "busybox:2", swarm.TaskStateRunning, swarm.TaskStateRunning, 5e8),
		task("t2", 2, "busybox:1", swarm.TaskStateRunning, swarm.TaskStateRunning, 5e8),
		task("t0", 1, "busybox:1", swarm.TaskStateShutdown, swarm.TaskStateShutdown, 5e8), // replaced: not shown
	}
	return nodes, services, tasks
}

// The page's document says which node leads, which is down and drained, what
// each runs and reserves, and how far web's update has come.
func TestAssemble(t *testing.T) {
	nodes, services, tasks := fixture()
	f := assemble(nodes, services, tasks, when)
	if len(f.Nodes) != 2 || f.Nodes[0].Hostname != "pi-1" || f.Nodes[1].Hostname != "pi-2" {
		t.Fatalf("nodes = %+v, want pi-1 then pi-2", f.Nodes)
	}
	n1, n2 := f.Nodes[0], f.Nodes[1]
	if n1.Manager != "leader" || n1.State != "ready" || n1.Running != 2 || n1.ReservedCPUs != 1 || n1.ReservedMem != 128<<20 || n1.CPUs != 2 {
		t.Errorf("pi-1 = %+v", n1)
	}
	if len(n1.Tasks) != 2 || n1.Tasks[0].Name != "web.1" || n1.Tasks[1].Name != "web.2" || n1.Tasks[0].State != "running" {
		t.Errorf("pi-1's tasks = %+v, want web.1 and web.2 running (the shut-down one left out)", n1.Tasks)
	}
	if n2.State != "down" || n2.Availability != "drain" || n2.Manager != "" || len(n2.Tasks) != 0 || n2.Tasks == nil {
		t.Errorf("pi-2 = %+v", n2)
	}
	want := Service{ID: "s1", Name: "web", Image: "busybox:2", Mode: "replicated", Running: 2, Desired: 2, Updated: 1,
		UpdateState: "updating", UpdateMessage: "update in progress"}
	if len(f.Services) != 1 || f.Services[0] != want {
		t.Errorf("services = %+v, want %+v", f.Services, want)
	}
}

// fakeAPI answers the Engine API's routes the dashboard reads, and streams one
// event then stops.
func fakeAPI(t *testing.T, swarmErr bool) http.Handler {
	nodes, services, tasks := fixture()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if swarmErr && r.URL.Path != "/events" {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"message":"This node is not a swarm manager."}`))
			return
		}
		var v any
		switch r.URL.Path {
		case "/nodes":
			v = nodes
		case "/services":
			if r.URL.Query().Get("status") != "true" {
				t.Errorf("GET /services without status=true")
			}
			v = services
		case "/tasks":
			v = tasks
		case "/events":
			if !strings.Contains(r.URL.Query().Get("filters"), "service") {
				t.Errorf("events filters %q", r.URL.Query().Get("filters"))
			}
			_, _ = w.Write([]byte(`{"Type":"service","Action":"update"}` + "\n" + `{"Type":"node",`))
			_, _ = w.Write([]byte(`"Action":"update"}` + "\n"))
			return
		default:
			t.Errorf("unexpected API call %s", r.URL)
		}
		_ = json.NewEncoder(w).Encode(v)
	})
}

func TestServeFleet(t *testing.T) {
	for _, c := range []struct {
		name     string
		swarmErr bool
		check    func(t *testing.T, f Fleet)
	}{
		{"swarm", false, func(t *testing.T, f Fleet) {
			if f.Error != "" || len(f.Nodes) != 2 || len(f.Services) != 1 || !f.Time.Equal(when) {
				t.Errorf("fleet = %+v", f)
			}
		}},
		{"not a manager", true, func(t *testing.T, f Fleet) {
			if f.Error != "This node is not a swarm manager." || f.Nodes == nil || len(f.Nodes) != 0 {
				t.Errorf("fleet = %+v, want the API's error and no nodes", f)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(New(Config{API: fakeAPI(t, c.swarmErr), Now: func() time.Time { return when }}))
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/fleet")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var f Fleet
			if err := json.NewDecoder(resp.Body).Decode(&f); err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET /fleet: %d %v", resp.StatusCode, err)
			}
			c.check(t, f)
		})
	}
}

// The page is served whole, with no reference to anything outside it.
func TestServePage(t *testing.T) {
	srv := httptest.NewServer(New(Config{API: fakeAPI(t, false)}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	html := b.String()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(html, "shoal fleet") {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, outside := range []string{"http://", "https://", "src=", "<link"} {
		if strings.Contains(html, outside) {
			t.Errorf("the page refers outside itself: %q", outside)
		}
	}
	if r, _ := http.Get(srv.URL + "/nothing"); r == nil || r.StatusCode != 404 {
		t.Errorf("GET /nothing is not 404")
	}
}

// Each line of the API's event stream reaches the page as one server-sent
// event, however the API's writes split it.
func TestServeEvents(t *testing.T) {
	srv := httptest.NewServer(New(Config{API: fakeAPI(t, false)}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	var data []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			data = append(data, d)
		}
	}
	want := []string{`{"Type":"service","Action":"update"}`, `{"Type":"node","Action":"update"}`}
	if strings.Join(data, "|") != strings.Join(want, "|") {
		t.Errorf("events = %q, want %q", data, want)
	}
}
