package engineapi

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

// svcFixture is an API over a serviceFake with the node's containers and images.
type svcFixture struct {
	sw  *serviceFake
	api *svcAPI
}

func newSvcFixture(t *testing.T) *svcFixture {
	t.Helper()
	sw := newServiceFake()
	api := startSvcAPI(t, Config{Swarm: sw, Containers: newCtrFake(), Images: &imageFake{}})
	return &svcFixture{sw: sw, api: api}
}

func TestServiceEndpoints(t *testing.T) {
	fx := newSvcFixture(t)
	created := `{"Name":"web","Labels":{"tier":"front"},"TaskTemplate":{"ContainerSpec":{"Image":"busybox:latest"}},"Mode":{"Replicated":{"Replicas":2}}}`
	resp, body := fx.api.call(t, "POST", "/v1.50/services/create", strings.NewReader(created),
		map[string]string{"Content-Type": "application/json", "X-Registry-Auth": "e30="})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: status %d, body %s", resp.StatusCode, body)
	}
	var cr swarm.ServiceCreateResponse
	if err := json.Unmarshal(body, &cr); err != nil || cr.ID == "" {
		t.Fatalf("create: body %s: %v", body, err)
	}
	if fx.sw.lastAuth != "e30=" {
		t.Errorf("X-Registry-Auth reached the control plane as %q", fx.sw.lastAuth)
	}
	svc, _ := fx.sw.Service(t.Context(), "web", false)

	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string // regexp the body must match
	}{
		{"create bad JSON", "POST", "/services/create", `{"Name":`, 400, `"message":"invalid JSON: unexpected EOF"`},
		{"create empty body", "POST", "/services/create", ``, 400, `got EOF while reading request body`},
		{"create duplicate", "POST", "/services/create", created, 409, `already exists`},
		{"create invalid spec", "POST", "/services/create", `{"Name":"x"}`, 400, `image reference must be provided`},
		{"list all with status", "GET", "/services?status=true", ``, 200, `"ServiceStatus":\{"RunningTasks":2,"DesiredTasks":2,"CompletedTasks":0\}`},
		{"list without status", "GET", "/services", ``, 200, `^\[\{"ID":"svc\w+","Version":\{"Index":\d+\},"CreatedAt":"2026-10-01T12:00:00Z","UpdatedAt":"2026-10-01T12:00:00Z","Spec":\{"Name":"web"[^\n]*"Endpoint":\{"Spec":\{\}\}\}\]\n$`},
		{"list by name prefix", "GET", `/services?filters={"name":{"we":true}}`, ``, 200, `"Name":"web"`},
		{"list by other name", "GET", `/services?filters={"name":{"db":true}}`, ``, 200, `^\[\]\n$`},
		{"list by id prefix", "GET", `/services?filters={"id":{"` + svc.ID[:5] + `":true}}`, ``, 200, `"Name":"web"`},
		{"list by label", "GET", `/services?filters={"label":{"tier=front":true}}`, ``, 200, `"Name":"web"`},
		{"list by wrong label", "GET", `/services?filters={"label":{"tier=back":true}}`, ``, 200, `^\[\]\n$`},
		{"list by mode", "GET", `/services?filters={"mode":{"global":true}}`, ``, 200, `^\[\]\n$`},
		{"list legacy filter", "GET", `/services?filters={"mode":["replicated"]}`, ``, 200, `"Name":"web"`},
		{"list bad filter", "GET", `/services?filters={"color":{"red":true}}`, ``, 400, `invalid filter 'color'`},
		{"list malformed filter", "GET", `/services?filters=nope`, ``, 400, `^\{"message":"invalid filter"\}\s*$`},
		{"inspect by name", "GET", "/services/web?insertDefaults=true", ``, 200, `"ID":"` + svc.ID + `"`},
		{"inspect missing", "GET", "/services/nope", ``, 404, `"message":"service nope not found"`},
		{"update no version", "POST", "/services/web/update", created, 400, `invalid service version ''`},
		{"update stale", "POST", "/services/web/update?version=999", created, 400, `update out of sequence`},
		{"update bad rollback", "POST", "/services/web/update?version=1&rollback=later", created, 400, `unrecognized rollback option later`},
		{"remove missing", "DELETE", "/services/nope", ``, 404, `service nope not found`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := fx.api.call(t, tc.method, "/v1.50"+tc.path, strings.NewReader(tc.body), nil)
			if resp.StatusCode != tc.status || !regexp.MustCompile(tc.want).Match(body) {
				t.Fatalf("%s %s: status %d body %s; want %d matching %s", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.want)
			}
		})
	}

	// A current update with options, then removal.
	path := "/v1.50/services/" + svc.ID + "/update?version=" + itoa(svc.Version.Index) + "&registryAuthFrom=previous-spec&rollback=previous"
	resp, body = fx.api.call(t, "POST", path, strings.NewReader(created), nil)
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"Warnings":null}` {
		t.Fatalf("update: %d %s", resp.StatusCode, body)
	}
	if o := fx.sw.lastUpdateOpts; o.RegistryAuthFrom != "previous-spec" || o.Rollback != "previous" {
		t.Errorf("update options reached the control plane as %+v", o)
	}
	resp, body = fx.api.call(t, "DELETE", "/v1.50/services/web", nil, nil)
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Fatalf("remove: %d %q", resp.StatusCode, body)
	}
	if _, err := fx.sw.Service(t.Context(), "web", false); err == nil {
		t.Fatal("service still there after DELETE")
	}
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestServiceLifecycleWithDockerCLI(t *testing.T) {
	fx := newSvcFixture(t)
	a := fx.api
	id := strings.TrimSpace(a.mustDocker(t, "service", "create", "-d", "--name", "web", "--replicas", "2",
		"--label", "tier=front", "busybox:latest", "sleep", "1000"))
	if !regexp.MustCompile(`^svc\w+$`).MatchString(id) {
		t.Fatalf("docker service create printed %q, want the service ID", id)
	}

	ls := a.mustDocker(t, "service", "ls")
	if !regexp.MustCompile(`(?m)^svc\w{9}\s+web\s+replicated\s+2/2\s+busybox:latest\s*$`).MatchString(ls) {
		t.Fatalf("docker service ls:\n%s", ls)
	}
	if out := a.mustDocker(t, "service", "ls", "--filter", "label=tier=back", "-q"); out != "" {
		t.Fatalf("docker service ls --filter label=tier=back: %q", out)
	}

	ps := a.mustDocker(t, "service", "ps", "web")
	for _, want := range []string{`web\.1\s+busybox:latest\s+edge1\s+Running\s+Running`, `web\.2\s+busybox:latest\s+edge1\s+Running`} {
		if !regexp.MustCompile(want).MatchString(ps) {
			t.Fatalf("docker service ps web: missing %s in\n%s", want, ps)
		}
	}
	// By ID prefix, as users type it.
	if ps := a.mustDocker(t, "service", "ps", "-q", id[:6]); len(strings.Fields(ps)) != 2 {
		t.Fatalf("docker service ps %s: %q", id[:6], ps)
	}

	pretty := a.mustDocker(t, "service", "inspect", "--pretty", "web")
	if !strings.Contains(pretty, "Name:\t\tweb") || !strings.Contains(pretty, "Replicas:\t2") {
		t.Fatalf("docker service inspect --pretty:\n%s", pretty)
	}

	a.mustDocker(t, "service", "update", "-d", "--replicas", "3", "web")
	if ls := a.mustDocker(t, "service", "ls", "--format", "{{.Name}} {{.Replicas}}"); strings.TrimSpace(ls) != "web 3/3" {
		t.Fatalf("after scale: %q", ls)
	}
	// Old tasks are shut down; only the current ones are running.
	if ps := a.mustDocker(t, "service", "ps", "-q", "--filter", "desired-state=running", "web"); len(strings.Fields(ps)) != 3 {
		t.Fatalf("running tasks after update: %q", ps)
	}

	a.mustDocker(t, "service", "rm", "web")
	_, errOut, err := a.docker(t, "", "service", "inspect", "web")
	if err == nil || !strings.Contains(errOut, "no such service: web") {
		t.Fatalf("inspect after rm: err %v, stderr %s", err, errOut)
	}
}

// TestServiceCreateWaitsForConvergence runs `docker service create` without -d: the
// CLI polls the service and its "_up-to-date" tasks until they all run, then waits
// five seconds for them to stay up, and reports convergence.
func TestServiceCreateWaitsForConvergence(t *testing.T) {
	fx := newSvcFixture(t)
	out := fx.api.mustDocker(t, "service", "create", "--quiet=false", "--name", "api", "--replicas", "2", "busybox:latest")
	if !strings.Contains(out, "overall progress: 2 out of 2 tasks") || !regexp.MustCompile(`verify: Service \w+ converged`).MatchString(out) {
		t.Fatalf("docker service create:\n%s", out)
	}
}
