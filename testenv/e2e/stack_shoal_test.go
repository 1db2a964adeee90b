package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/testenv"
)

// shoalStack runs `shoal stack args...` in dir against n, with env added to
// the environment, and returns its stdout and stderr apart.
func shoalStack(t *testing.T, n *testenv.Node, dir string, env []string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := n.DockerCommand(ctx, testenv.Binary(t), append([]string{"stack"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// mustShoalStack is shoalStack that fails the test on error.
func mustShoalStack(t *testing.T, n *testenv.Node, dir string, env []string, args ...string) string {
	t.Helper()
	out, errOut, err := shoalStack(t, n, dir, env, args...)
	if err != nil {
		t.Fatalf("shoal stack %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// writeFiles writes name -> text into dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// serviceTasksAPI are a service's tasks as GET /tasks returns them.
func serviceTasksAPI(t *testing.T, n *testenv.Node, service string) []swarm.Task {
	t.Helper()
	id := storedService(t, n, service).ID
	status, body := apiCall(t, n, "GET", `/tasks?filters={"service":{"`+id+`":true}}`, nil)
	var tasks []swarm.Task
	if status != http.StatusOK || json.Unmarshal([]byte(body), &tasks) != nil {
		t.Fatalf("GET /tasks of %s = %d %s", service, status, body)
	}
	return tasks
}

// assertNoStack fails unless nothing of stack is left: services, secrets,
// configs, networks and containers.
func assertNoStack(t *testing.T, n *testenv.Node, stack string) {
	t.Helper()
	for _, kind := range []string{"service", "secret", "config", "network"} {
		out := n.MustDocker(kind, "ls", "-q", "--filter", "label=com.docker.stack.namespace="+stack)
		if strings.TrimSpace(out) != "" {
			t.Errorf("%s ls of stack %s: %q, want nothing", kind, stack, out)
		}
	}
	testenv.WaitFor(t, 60*time.Second, "the stack's containers removed", func() (bool, string) {
		out, err := try(n, "ps", "-aq")
		return err == nil && strings.TrimSpace(out) == "", out
	})
}

// composeSpecFiles use what the docker CLI's stack deploy refuses: no
// version, include, extends, a profile, .env, env_file, interpolation with a
// default and a required variable, content: and environment: objects, and a
// second file merged over the first.
var composeSpecFiles = map[string]string{
	"compose.yaml": `name: spec
include:
  - extra.yaml
services:
  web:
    extends:
      file: common.yaml
      service: base
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    environment:
      GREETING: ${GREETING:?set GREETING to greet}
      COLOR: ${COLOR:-blue}
    env_file: web.env
    deploy:
      replicas: ${WEB_REPLICAS}
    configs:
      - source: page
        target: /www/index.html
    secrets: [token]
    x-note: ignored
  debug:
    image: busybox
    command: ["sleep", "100000"]
    profiles: [debug]
configs:
  page:
    content: "hello from ${COLOR:-blue}"
secrets:
  token:
    environment: TOKEN
`,
	"common.yaml": `services:
  base:
    image: busybox
    stop_grace_period: 1s
`,
	"extra.yaml": `services:
  client:
    image: busybox
    command: ["sleep", "100000"]
    stop_grace_period: 1s
`,
	"compose.prod.yaml": `services:
  web:
    environment:
      TIER: prod
`,
	".env":    "WEB_REPLICAS=2\n",
	"web.env": "FROM_ENV_FILE=yes\n",
}

// `shoal stack deploy` of files the docker CLI refuses: bad input is one
// clear error and deploys nothing; the files deploy and converge with every
// feature in effect; --dry-run shows the diff of a changed replica count and
// changes nothing; the redeploy updates in place; stack rm leaves nothing.
func TestShoalStackComposeSpec(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "shoalstack")
	dir := t.TempDir()
	writeFiles(t, dir, composeSpecFiles)
	env := []string{"TOKEN=s3cret-token"}
	files := []string{"-c", "compose.yaml", "-c", "compose.prod.yaml"}

	if out, err := n.Docker("stack", "deploy", "-c", filepath.Join(dir, "compose.yaml"), "spec"); err == nil {
		t.Errorf("docker stack deploy took the Compose Spec file: %s", out)
	}

	// A missing required variable: one line naming it, nothing deployed.
	_, errOut, err := shoalStack(t, n, dir, env, append([]string{"deploy"}, append(files, "spec")...)...)
	if err == nil || !strings.Contains(errOut, "GREETING") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("deploy without GREETING: %v, said %q", err, errOut)
	}
	assertNoStack(t, n, "spec")

	env = append(env, "GREETING=hi")
	model := mustShoalStack(t, n, dir, env, append([]string{"config", "--format", "json"}, files...)...)
	var resolved struct {
		Services map[string]struct {
			Environment map[string]string
			Deploy      struct{ Replicas int }
		}
	}
	if err := json.Unmarshal([]byte(model), &resolved); err != nil {
		t.Fatalf("stack config --format json: %v\n%s", err, model)
	}
	if web := resolved.Services["web"]; len(resolved.Services) != 2 || web.Deploy.Replicas != 2 || web.Environment["TIER"] != "prod" {
		t.Errorf("stack config: %+v, want web (2 replicas, TIER=prod) and client", resolved.Services)
	}

	out := mustShoalStack(t, n, dir, env, append([]string{"deploy"}, append(files, "spec")...)...)
	for _, want := range []string{"Creating network spec_default", "Creating secret spec_token",
		"Creating config spec_page", "Creating service spec_web", "Creating service spec_client"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy said %q, want %q", out, want)
		}
	}
	waitStack(t, n, "spec", map[string]int{"web": 2, "client": 1})
	envOut, err := execInService(t, n, "spec_web", "env")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"GREETING=hi", "COLOR=blue", "TIER=prod", "FROM_ENV_FILE=yes"} {
		if !strings.Contains(envOut, want) {
			t.Errorf("web's environment lacks %s:\n%s", want, envOut)
		}
	}
	if got, err := execInService(t, n, "spec_web", "cat", "/run/secrets/token"); err != nil || got != "s3cret-token" {
		t.Errorf("web's secret: %q, %v", got, err)
	}
	testenv.WaitFor(t, 30*time.Second, "client reaching web by name with the config as its page", func() (bool, string) {
		out, err := httpVia(t, n, "spec_client", "web", 80)
		return err == nil && strings.HasSuffix(strings.TrimSpace(out), "hello from blue"), out
	})
	if out := n.MustDocker("service", "ls", "--format", "{{.Name}}"); strings.Contains(out, "debug") {
		t.Errorf("the debug profile's service was deployed: %q", out)
	}

	// Unchanged files: every object unchanged. Three replicas: the dry run
	// shows the one field and writes nothing.
	out = mustShoalStack(t, n, dir, env, append([]string{"deploy", "--dry-run"}, append(files, "spec")...)...)
	if strings.Contains(out, ": create") || strings.Contains(out, ": update") {
		t.Errorf("dry run of the deployed files:\n%s", out)
	}
	webVersion := storedService(t, n, "spec_web").Version.Index
	clientTasks := runningTasks(t, n, "spec_client")
	webTasks := runningTasks(t, n, "spec_web")
	env = append(env, "WEB_REPLICAS=3")
	out = mustShoalStack(t, n, dir, env, append([]string{"deploy", "--dry-run"}, append(files, "spec")...)...)
	if !strings.Contains(out, "service spec_web: update\n    ~ Mode.Replicated.Replicas: 2 -> 3\n") ||
		!strings.Contains(out, "service spec_client: unchanged") || strings.Count(out, "    ") != 1 {
		t.Errorf("dry run with 3 replicas:\n%s", out)
	}
	if v := storedService(t, n, "spec_web").Version.Index; v != webVersion {
		t.Errorf("the dry run changed spec_web: version %d, was %d", v, webVersion)
	}

	out = mustShoalStack(t, n, dir, env, append([]string{"deploy"}, append(files, "spec")...)...)
	if !strings.Contains(out, "Updating service spec_web") || strings.Contains(out, "Creating") || strings.Contains(out, "spec_client") {
		t.Errorf("redeploy said %q", out)
	}
	waitStack(t, n, "spec", map[string]int{"web": 3, "client": 1})
	if v := storedService(t, n, "spec_web").Version.Index; v <= webVersion {
		t.Errorf("spec_web version %d after the redeploy, was %d", v, webVersion)
	}
	if now := runningTasks(t, n, "spec_web"); !slices.Contains(now, webTasks[0]) || !slices.Contains(now, webTasks[1]) {
		t.Errorf("web's tasks %q after scaling up, had %q", now, webTasks)
	}
	if now := runningTasks(t, n, "spec_client"); !slices.Equal(now, clientTasks) {
		t.Errorf("client's tasks %q after the redeploy, were %q", now, clientTasks)
	}

	out = mustShoalStack(t, n, dir, env, "rm", "spec")
	for _, want := range []string{"Removing service spec_web", "Removing secret spec_token", "Removing config spec_page", "Removing network spec_default"} {
		if !strings.Contains(out, want) {
			t.Errorf("rm said %q, want %q", out, want)
		}
	}
	assertNoStack(t, n, "spec")
}

// A dependency with condition: service_healthy is healthy before its
// dependent's first task is created; an unsupported key warns with the
// service; a bad file or a missing external object deploys nothing.
func TestShoalStackHealthyDependency(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "shoalhealth")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"compose.yaml": `services:
  db:
    image: busybox
    command: ["sh", "-c", "sleep 3; touch /tmp/ready; exec sleep 100000"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      retries: 30
    stop_grace_period: 1s
  app:
    image: busybox
    build: .
    command: ["sleep", "100000"]
    stop_grace_period: 1s
    depends_on:
      db:
        condition: service_healthy
`,
		"typo.yaml": "services:\n  app:\n    image: busybox\n    replica: 2\n",
		"external.yaml": `services:
  app:
    secrets: [key]
secrets:
  key:
    external: true
`,
	})

	// Nothing of a bad deploy is written: not the networks, not the db.
	_, errOut, err := shoalStack(t, n, dir, nil, "deploy", "-c", "compose.yaml", "-c", "typo.yaml", "h")
	if want := filepath.Join(dir, "typo.yaml") + ":4: services.app.replica: unknown key"; err == nil || !strings.Contains(errOut, want) {
		t.Errorf("deploy with a typo: %v, said %q, want %q", err, errOut, want)
	}
	_, errOut, err = shoalStack(t, n, dir, nil, "deploy", "-c", "compose.yaml", "-c", "external.yaml", "h")
	if err == nil || !strings.Contains(errOut, "secret key is external but does not exist") {
		t.Errorf("deploy with a missing external secret: %v, said %q", err, errOut)
	}
	assertNoStack(t, n, "h")

	out, errOut, err := shoalStack(t, n, dir, nil, "deploy", "h")
	if err != nil {
		t.Fatalf("deploy: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(errOut, "service app: services.app.build: not supported by shoal") {
		t.Errorf("deploy warned %q, want the build key of app", errOut)
	}
	wait := strings.Index(out, "Waiting for service h_db to be healthy")
	if wait < 0 || wait > strings.Index(out, "Creating service h_app") || strings.Index(out, "Creating service h_db") > wait {
		t.Errorf("deploy said %q: want h_db created, waited for, then h_app", out)
	}
	waitStack(t, n, "h", map[string]int{"db": 1, "app": 1})

	db, app := serviceTasksAPI(t, n, "h_db"), serviceTasksAPI(t, n, "h_app")
	if len(db) != 1 || len(app) != 1 || db[0].Status.State != swarm.TaskStateRunning {
		t.Fatalf("tasks: db %+v, app %+v", db, app)
	}
	healthy := db[0].Status.Timestamp // running is reported once the healthcheck passed
	if !app[0].CreatedAt.After(healthy) {
		t.Errorf("app's task created at %s, db healthy at %s", app[0].CreatedAt, healthy)
	}
	if gap := app[0].CreatedAt.Sub(db[0].CreatedAt); gap < 3*time.Second {
		t.Errorf("app's task created %s after db's, which takes 3s to be healthy", gap)
	}
	c := strings.TrimSpace(n.MustDocker("ps", "-q", "--filter", "label=com.docker.swarm.service.name=h_db"))
	if h := strings.TrimSpace(n.MustDocker("inspect", "--format", "{{.State.Health.Status}}", c)); h != "healthy" {
		t.Errorf("db's container is %q", h)
	}

	mustShoalStack(t, n, dir, nil, "rm", "h")
	assertNoStack(t, n, "h")
}
