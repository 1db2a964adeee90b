package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/testenv"
)

// apiCall sends a request to the node's API and returns the status and the
// "message" of an error body (or the raw body).
func apiCall(t *testing.T, n *testenv.Node, method, path string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://shoal/v1.45"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var e struct{ Message string }
	if json.Unmarshal(data, &e) == nil && e.Message != "" {
		return resp.StatusCode, e.Message
	}
	return resp.StatusCode, string(data)
}

// Errors read as Docker's, with Docker's status codes, and a bad request never
// takes the daemon down.
func TestAPIErrors(t *testing.T) {
	t.Parallel()
	n := testenv.StartNode(t, "errors", testenv.Options{})

	// Before `docker swarm init`.
	const notManager = `This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`
	if out, err := n.Docker("service", "ls"); err == nil || strings.TrimSpace(out) != "Error response from daemon: "+notManager {
		t.Errorf("service ls before init: %v %q", err, out)
	}
	if code, msg := apiCall(t, n, "GET", "/services", nil); code != http.StatusServiceUnavailable || msg != notManager {
		t.Errorf("GET /services before init = %d %q", code, msg)
	}

	n.MustDocker("swarm", "init", "--advertise-addr", "127.0.0.1")
	n.MustDocker("service", "create", "-d", "--no-resolve-image", "--name", "web", "busybox", "sleep", "300")

	// Without autolock there is no unlock key (autolock_test.go has the rest).
	if got := strings.TrimSpace(n.MustDocker("info", "--format", "{{.Swarm.Cluster.Spec.EncryptionConfig.AutoLockManagers}}")); got != "false" {
		t.Errorf("autolock by default = %s", got)
	}
	if out, err := n.Docker("swarm", "unlock-key"); err == nil || !strings.Contains(out, "no unlock key is set") {
		t.Errorf("swarm unlock-key: %v %q", err, out)
	}
	// Like dockerd, registries on the node itself need no TLS.
	if info := n.MustDocker("info"); !strings.Contains(info, "Insecure Registries:\n  127.0.0.0/8") {
		t.Errorf("docker info lacks the insecure loopback registries:\n%s", info)
	}

	// Unknown service.
	if out, err := n.Docker("service", "inspect", "nope"); err == nil || !strings.Contains(out, "no such service: nope") {
		t.Errorf("service inspect nope: %v %q", err, out)
	}
	if out, err := n.Docker("service", "ps", "nope"); err == nil || strings.TrimSpace(out) != "no such service: nope" {
		t.Errorf("service ps nope: %v %q", err, out)
	}
	if out, err := n.Docker("service", "rm", "nope"); err == nil || strings.TrimSpace(out) != "Error response from daemon: service nope not found" {
		t.Errorf("service rm nope: %v %q", err, out)
	}
	if code, msg := apiCall(t, n, "GET", "/services/nope", nil); code != http.StatusNotFound || msg != "service nope not found" {
		t.Errorf("GET /services/nope = %d %q", code, msg)
	}

	// Name conflict.
	out, err := n.Docker("service", "create", "-d", "--no-resolve-image", "--name", "web", "busybox", "sleep", "300")
	if err == nil || !strings.Contains(out, "name conflicts with an existing object: service web already exists") {
		t.Errorf("second service named web: %v %q", err, out)
	}
	spec := swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "web"},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "busybox"}}}
	if code, _ := apiCall(t, n, "POST", "/services/create", jsonBody(t, spec)); code != http.StatusConflict {
		t.Errorf("POST /services/create of a taken name = %d", code)
	}

	// A stale version is refused.
	var svc swarm.Service
	inspect(t, n, "service", "web", &svc)
	old := svc.Version.Index
	n.MustDocker("service", "update", "-d", "--env-add", "A=1", "web")
	svc.Spec.Labels = map[string]string{"stale": "yes"}
	code, msg := apiCall(t, n, "POST", fmt.Sprintf("/services/%s/update?version=%d", svc.ID, old), jsonBody(t, svc.Spec))
	if code != http.StatusConflict || !strings.Contains(msg, "update out of sequence") {
		t.Errorf("update with stale version %d = %d %q", old, code, msg)
	}
	var after swarm.Service
	inspect(t, n, "service", "web", &after)
	if after.Spec.Labels["stale"] != "" || !contains(after.Spec.TaskTemplate.ContainerSpec.Env, "A=1") {
		t.Errorf("service after the refused update: labels %v env %v", after.Spec.Labels, after.Spec.TaskTemplate.ContainerSpec.Env)
	}

	// Invalid specs: 400 naming what is wrong.
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--constraint", "node.nonsense==x"}, `invalid constraint "node.nonsense==x"`},
		{[]string{"--limit-memory", "1k"}, "invalid memory value 1024: Must be at least 4MiB"},
		{[]string{"--mount", "type=bind,src=relative,dst=/x"}, "invalid bind mount source, must be an absolute path: relative"},
		{[]string{"--tty"}, "a TTY for a task's main process (--tty) is not supported by shoal"},
	} {
		args := append(append([]string{"service", "create", "-d", "--no-resolve-image", "--name", "bad"}, bad.args...), "busybox")
		if out, err := n.Docker(args...); err == nil || !strings.Contains(out, bad.want) || !strings.HasPrefix(out, "Error response from daemon: ") {
			t.Errorf("service create %v: %v %q", bad.args, err, out)
		}
	}
	badSpec := spec
	badSpec.Annotations.Name = "bad"
	badSpec.TaskTemplate.Resources = &swarm.ResourceRequirements{Limits: &swarm.Limit{MemoryBytes: 1024}}
	if code, msg := apiCall(t, n, "POST", "/services/create", jsonBody(t, badSpec)); code != http.StatusBadRequest || !strings.Contains(msg, "memory") {
		t.Errorf("POST /services/create with 1k memory = %d %q", code, msg)
	}
	if code, _ := apiCall(t, n, "POST", "/services/create", strings.NewReader("{not json")); code != http.StatusBadRequest {
		t.Errorf("POST /services/create with broken JSON = %d", code)
	}

	// A 5 MiB body is refused and the daemon goes on serving.
	huge := `{"Name":"huge","Labels":{"x":"` + strings.Repeat("a", 5<<20) + `"},"TaskTemplate":{"ContainerSpec":{"Image":"busybox"}}}`
	if code, _ := apiCall(t, n, "POST", "/services/create", strings.NewReader(huge)); code < 400 || code >= 500 {
		t.Errorf("POST /services/create with a 5 MiB body = %d", code)
	}
	if ls := n.MustDocker("service", "ls", "--format", "{{.Name}}"); strings.TrimSpace(ls) != "web" {
		t.Errorf("service ls after the bad requests = %q", ls)
	}
}

func jsonBody(t *testing.T, v any) io.Reader {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(data)
}
