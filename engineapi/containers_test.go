package engineapi

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

// ctrFixture serves three containers: two task containers (one running, one exited
// with 137) and a running one that is not a task.
func ctrFixture(t *testing.T) (*ctrFake, *imageFake, *svcAPI) {
	t.Helper()
	images := &imageFake{}
	busybox := images.addImage("busybox:latest")
	alpine := images.addImage("alpine:3")
	task := map[string]string{"com.docker.swarm.task.id": "task1", "com.docker.swarm.service.name": "web"}
	ct := newCtrFake(
		container.Summary{ID: strings.Repeat("a1", 32), Names: []string{"/web.1.task1"}, Image: "busybox:latest", ImageID: busybox.ID,
			Command: "sleep 1000", Created: 1790000300, State: "running", Status: "Up 5 minutes", Labels: task},
		container.Summary{ID: strings.Repeat("b2", 32), Names: []string{"/web.1.task0"}, Image: "busybox:latest", ImageID: busybox.ID,
			Command: "sleep 1000", Created: 1790000200, State: "exited", Status: "Exited (137) 3 minutes ago",
			Labels: map[string]string{"com.docker.swarm.task.id": "task0"}},
		container.Summary{ID: strings.Repeat("c3", 32), Names: []string{"/probe"}, Image: "alpine:3", ImageID: alpine.ID,
			Command: "sh", Created: 1790000100, State: "running", Status: "Up 8 minutes", Labels: map[string]string{"role": "probe"}},
	)
	return ct, images, startSvcAPI(t, Config{Swarm: newServiceFake(), Containers: ct, Images: images})
}

func TestContainerList(t *testing.T) {
	_, _, api := ctrFixture(t)
	tests := []struct {
		name, query string
		status      int
		want        string // names in order, or the error message
	}{
		{"running only", ``, 200, "/web.1.task1 /probe"},
		{"all newest first", `all=1`, 200, "/web.1.task1 /web.1.task0 /probe"},
		{"limit implies all", `limit=2`, 200, "/web.1.task1 /web.1.task0"},
		{"status exited implies all", `filters={"status":{"exited":true}}`, 200, "/web.1.task0"},
		{"bad status", `filters={"status":{"sleepy":true}}`, 400, "Unrecognised filter value for status: sleepy"},
		{"label key", `all=1&filters={"label":{"com.docker.swarm.task.id":true}}`, 200, "/web.1.task1 /web.1.task0"},
		{"label value", `filters={"label":{"role=probe":true}}`, 200, "/probe"},
		{"name substring", `all=1&filters={"name":{"task":true}}`, 200, "/web.1.task1 /web.1.task0"},
		{"name regexp", `all=1&filters={"name":{"^/pro":true}}`, 200, "/probe"},
		{"id prefix", `all=1&filters={"id":{"b2b2":true}}`, 200, "/web.1.task0"},
		{"is-task true", `filters={"is-task":{"true":true}}`, 200, "/web.1.task1"},
		{"is-task false", `filters={"is-task":{"false":true}}`, 200, "/probe"},
		{"is-task bad", `filters={"is-task":{"maybe":true}}`, 400, "Invalid filter 'is-task=maybe'"},
		{"exited code", `all=1&filters={"exited":{"137":true}}`, 200, "/web.1.task0"},
		{"exited other code", `all=1&filters={"exited":{"0":true}}`, 200, ""},
		{"ancestor by name", `filters={"ancestor":{"alpine:3":true}}`, 200, "/probe"},
		{"ancestor unknown", `filters={"ancestor":{"nginx":true}}`, 200, ""},
		{"before", `all=1&filters={"before":{"web.1.task1":true}}`, 200, "/web.1.task0 /probe"},
		{"since", `all=1&filters={"since":{"probe":true}}`, 200, "/web.1.task1 /web.1.task0"},
		{"unknown filter", `filters={"colour":{"red":true}}`, 400, "invalid filter 'colour'"},
		{"bad limit", `limit=ten`, 400, `invalid limit "ten"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			resp, body := api.call(t, "GET", "/v1.50/containers/json?"+q.Encode(), nil, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d body %s, want %d", resp.StatusCode, body, tc.status)
			}
			if tc.status != 200 {
				if want := `{"message":` + jsonString(tc.want) + `}`; strings.TrimSpace(string(body)) != want {
					t.Fatalf("body %s, want %s", body, want)
				}
				return
			}
			var list []container.Summary
			if err := json.Unmarshal(body, &list); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, c := range list {
				names = append(names, c.Names[0])
			}
			if got := strings.Join(names, " "); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestContainerActions(t *testing.T) {
	ct, _, api := ctrFixture(t)
	resp, body := api.call(t, "POST", "/v1.50/containers/probe/stop?t=5", nil, nil)
	if resp.StatusCode != 204 || len(ct.stopped) != 1 || ct.stopped[0] != strings.Repeat("c3", 32) || *ct.stopAfter != 5*time.Second {
		t.Fatalf("stop: %d %s, stopped %v", resp.StatusCode, body, ct.stopped)
	}
	resp, _ = api.call(t, "POST", "/containers/probe/kill?signal=SIGHUP", nil, nil)
	if resp.StatusCode != 204 || ct.killed[strings.Repeat("c3", 32)] != syscall.SIGHUP {
		t.Fatalf("kill -s SIGHUP: %d %v", resp.StatusCode, ct.killed)
	}
	for _, tc := range []struct{ method, path, status, body string }{
		{"POST", "/containers/probe/kill?signal=NOPE", "400", `{"message":"Invalid signal: NOPE"}`},
		{"POST", "/containers/probe/stop?t=soon", "400", `{"message":"invalid value for t: \"soon\""}`},
		{"POST", "/containers/nope/stop", "404", `{"message":"No such container: nope"}`},
		{"GET", "/containers/nope/json", "404", `{"message":"No such container: nope"}`},
		{"POST", "/containers/create", "501", `{"message":"shoal runs containers only as swarm tasks: use docker service create"}`},
		{"DELETE", "/containers/probe", "501", `{"message":"shoal runs containers only as swarm tasks: use docker service create"}`},
	} {
		resp, body := api.call(t, tc.method, tc.path, strings.NewReader("{}"), map[string]string{"Content-Type": "application/json"})
		if itoa(uint64(resp.StatusCode)) != tc.status || strings.TrimSpace(string(body)) != tc.body {
			t.Errorf("%s %s: %d %s; want %s %s", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.body)
		}
	}
	resp, body = api.call(t, "GET", "/containers/"+strings.Repeat("a1", 6)+"/json", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"Name":"/web.1.task1"`) {
		t.Fatalf("inspect by prefix: %d %s", resp.StatusCode, body)
	}
}

func TestContainersWithDockerCLI(t *testing.T) {
	ct, _, api := ctrFixture(t)
	ps := api.mustDocker(t, "ps")
	if !regexp.MustCompile(`(?m)^a1a1a1a1a1a1\s+busybox:latest\s+"sleep 1000"\s+.*Up 5 minutes\s+web\.1\.task1$`).MatchString(ps) ||
		strings.Contains(ps, "task0") {
		t.Fatalf("docker ps:\n%s", ps)
	}
	if out := api.mustDocker(t, "ps", "-a", "--filter", "label=com.docker.swarm.task.id", "--format", "{{.Names}} {{.Status}}"); out != "web.1.task1 Up 5 minutes\nweb.1.task0 Exited (137) 3 minutes ago\n" {
		t.Fatalf("docker ps -a --filter label=...:\n%s", out)
	}
	if out := api.mustDocker(t, "ps", "-q", "--filter", "is-task=false"); out != "c3c3c3c3c3c3\n" {
		t.Fatalf("docker ps -q --filter is-task=false: %q", out)
	}
	if out := api.mustDocker(t, "inspect", "-f", "{{.Name}} {{.State.Status}}", "web.1.task1"); out != "/web.1.task1 running\n" {
		t.Fatalf("docker inspect: %q", out)
	}
	api.mustDocker(t, "kill", "-s", "USR1", "probe")
	if ct.killed[strings.Repeat("c3", 32)] != syscall.SIGUSR1 {
		t.Fatalf("docker kill -s USR1 sent %v", ct.killed)
	}
	if out := api.mustDocker(t, "stop", "-t", "3", "probe"); out != "probe\n" || *ct.stopAfter != 3*time.Second {
		t.Fatalf("docker stop: %q, timeout %v", out, ct.stopAfter)
	}
	_, errOut, err := api.docker(t, "", "run", "--rm", "busybox", "true")
	if err == nil || !strings.Contains(errOut, "shoal runs containers only as swarm tasks: use docker service create") {
		t.Fatalf("docker run: err %v, stderr %s", err, errOut)
	}
}
