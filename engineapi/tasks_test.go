package engineapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster"
)

// createTestService makes a service in the fake and returns it.
func createTestService(t *testing.T, sw *serviceFake, name string, replicas uint64, labels map[string]string) swarm.Service {
	t.Helper()
	spec := swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: name, Labels: labels},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "busybox:latest"}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
	}
	if _, err := sw.CreateService(t.Context(), spec, ""); err != nil {
		t.Fatalf("create service %s: %v", name, err)
	}
	svc, err := sw.Service(t.Context(), name, false)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return svc
}

func TestTaskList(t *testing.T) {
	fx := newSvcFixture(t)
	web := createTestService(t, fx.sw, "web", 2, map[string]string{"tier": "front"})
	db := createTestService(t, fx.sw, "db", 1, nil)
	// Update web: its two old tasks are shut down, two new ones run the new template.
	spec := web.Spec
	spec.TaskTemplate.ForceUpdate++
	if _, err := fx.sw.UpdateService(t.Context(), web.ID, web.Version.Index, spec, cluster.ServiceUpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	tasks, _ := fx.sw.Tasks(t.Context())
	names := func(ts []swarm.Task) string {
		var out []string
		for _, task := range ts {
			svc := map[string]string{web.ID: "web", db.ID: "db"}[task.ServiceID]
			out = append(out, svc+"."+itoa(uint64(task.Slot))+":"+string(task.DesiredState))
		}
		sort.Strings(out)
		return strings.Join(out, " ")
	}

	tests := []struct {
		name    string
		filters string
		status  int
		want    string // names() of the result, or the error message
	}{
		{"all", ``, 200, "db.1:running web.1:running web.1:shutdown web.2:running web.2:shutdown"},
		{"service by name", `{"service":{"web":true}}`, 200, "web.1:running web.1:shutdown web.2:running web.2:shutdown"},
		{"service by ID", `{"service":{"` + db.ID + `":true}}`, 200, "db.1:running"},
		{"service by ID prefix", `{"service":{"` + db.ID[:6] + `":true}}`, 200, "db.1:running"},
		{"unknown service", `{"service":{"nope":true}}`, 404, "service nope not found"},
		{"node by hostname", `{"node":{"edge1":true},"service":{"db":true}}`, 200, "db.1:running"},
		{"unknown node", `{"node":{"edge9":true}}`, 404, "node edge9 not found"},
		{"desired running", `{"desired-state":{"running":true},"service":{"web":true}}`, 200, "web.1:running web.2:running"},
		{"desired shutdown", `{"desired-state":{"Shutdown":true}}`, 200, "web.1:shutdown web.2:shutdown"},
		{"bad desired state", `{"desired-state":{"sleeping":true}}`, 400, "Invalid desired-state filter: 'sleeping'"},
		{"up to date", `{"_up-to-date":{"true":true},"service":{"web":true}}`, 200, "web.1:running web.2:running"},
		{"service label", `{"label":{"tier=front":true},"desired-state":{"running":true}}`, 200, "web.1:running web.2:running"},
		{"name prefix", `{"name":{"db.1":true}}`, 200, "db.1:running"},
		{"id prefix", `{"id":{"` + tasks[0].ID + `":true}}`, 200, "web.1:shutdown"},
		{"runtime plugin", `{"runtime":{"plugin":true}}`, 200, ""},
		{"unknown filter", `{"slot":{"1":true}}`, 400, "invalid filter 'slot'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := fx.api.call(t, "GET", "/v1.41/tasks?filters="+url.QueryEscape(tc.filters), nil, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, body %s; want %d", resp.StatusCode, body, tc.status)
			}
			if tc.status != http.StatusOK {
				var msg struct{ Message string }
				if err := json.Unmarshal(body, &msg); err != nil || msg.Message != tc.want {
					t.Fatalf("error body %s, want message %q", body, tc.want)
				}
				return
			}
			var got []swarm.Task
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("decode %s: %v", body, err)
			}
			if names(got) != tc.want {
				t.Fatalf("got tasks %q, want %q", names(got), tc.want)
			}
		})
	}

	resp, body := fx.api.call(t, "GET", "/tasks/"+tasks[0].ID, nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"ID":"`+tasks[0].ID+`"`) {
		t.Fatalf("task inspect: %d %s", resp.StatusCode, body)
	}
	resp, body = fx.api.call(t, "GET", "/tasks/nope", nil, nil)
	if resp.StatusCode != 404 || string(body) != `{"message":"task nope not found"}` {
		t.Fatalf("task inspect missing: %d %s", resp.StatusCode, body)
	}
}

func TestTaskUpToDateComparesTemplate(t *testing.T) {
	replicas := uint64(1)
	svc := swarm.Service{Spec: swarm.ServiceSpec{
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "busybox", Env: []string{}}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
	}}
	tests := []struct {
		name string
		spec swarm.TaskSpec
		want bool
	}{
		{"same template", swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "busybox", Env: []string{}}}, true},
		{"nil and empty are equal", swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "busybox"}}, true},
		{"other image", swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "alpine"}}, false},
		{"before a forced update", swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "busybox"}, ForceUpdate: 1}, false},
	}
	for _, tc := range tests {
		if got := taskUpToDate(swarm.Task{Spec: tc.spec}, svc); got != tc.want {
			t.Errorf("%s: up to date = %v, want %v", tc.name, got, tc.want)
		}
	}
}
