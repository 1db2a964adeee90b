package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
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
// default and a required variable, content:, environment: and file: objects,
// deploy keys, x- extensions, and a second file merged over the first.
var composeSpecFiles = map[string]string{
	"compose.yaml": `name: spec
include:
  - extra.yaml
x-defaults: &grace
  stop_grace_period: 1s
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
      labels: {team: web}
      resources:
        limits: {memory: 64M}
      restart_policy: {condition: on-failure, max_attempts: 3}
      update_config: {parallelism: 2, order: start-first}
      placement:
        constraints: [node.role == manager]
    configs:
      - source: page
        target: /www/index.html
      - source: motd
        target: /etc/motd
    secrets: [token, cert]
    x-note: ignored
  debug:
    image: busybox
    command: ["sleep", "100000"]
    profiles: [debug]
    <<: *grace
configs:
  page:
    content: "hello from ${COLOR:-blue}"
  motd:
    file: ./motd.txt
secrets:
  token:
    environment: TOKEN
  cert:
    file: ./cert.txt
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
	".env":      "WEB_REPLICAS=2\n",
	"web.env":   "FROM_ENV_FILE=yes\n",
	"motd.txt":  "motd from a file\n",
	"cert.txt":  "cert-from-a-file",
	"bad.yaml":  "services:\n  web:\n    image: busybox\n  - x\n",
	"typo.yaml": "services:\n  web:\n    image: busybox\n    replica: 2\n",
}

// `shoal stack deploy` of files the docker CLI refuses: bad input is one
// clear error and deploys nothing; the files deploy and converge with every
// feature in effect, one subtest each; --dry-run shows the diff of a changed
// replica count and changes nothing; the redeploy updates in place; stack rm
// leaves nothing.
func TestShoalStackComposeSpec(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "shoalstack")
	dir := t.TempDir()
	writeFiles(t, dir, composeSpecFiles)
	env := []string{"TOKEN=s3cret-token"}
	files := []string{"-c", "compose.yaml", "-c", "compose.prod.yaml"}
	deployArgs := append([]string{"deploy", "--resolve-image", "never"}, append(files, "spec")...)

	// Bad input: one line naming the file, the line where known and the
	// key or variable; nothing deployed.
	greeting := append(slices.Clone(env), "GREETING=hi")
	badInput := []struct {
		name       string
		env, files []string
		want       string
	}{
		{"missing required variable", env, files,
			filepath.Join(dir, "compose.yaml") + ":13: services.web.environment.GREETING: required variable GREETING is missing a value: set GREETING to greet"},
		{"malformed file", greeting, []string{"-c", "compose.yaml", "-c", "bad.yaml"},
			filepath.Join(dir, "bad.yaml") + ":4: non-map value is specified"},
		{"unknown key", greeting, []string{"-c", "compose.yaml", "-c", "typo.yaml"},
			filepath.Join(dir, "typo.yaml") + ":4: services.web.replica: unknown key"},
	}
	for _, tt := range badInput {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, err := shoalStack(t, n, dir, tt.env, append([]string{"deploy", "--resolve-image", "never"}, append(tt.files, "spec")...)...)
			if err == nil || !strings.Contains(errOut, tt.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("deploy: %v, said %q, want one line with %q", err, errOut, tt.want)
			}
		})
	}
	assertNoStack(t, n, "spec")

	env = greeting
	t.Run("no version key", func(t *testing.T) {
		if out, err := n.Docker("stack", "deploy", "-c", filepath.Join(dir, "compose.yaml"), "spec"); err == nil {
			t.Errorf("docker stack deploy took the Compose Spec file: %s", out)
		}
	})
	t.Run("config prints the merged model", func(t *testing.T) {
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
	})

	out, errOut, err := shoalStack(t, n, dir, env, deployArgs...)
	if err != nil {
		t.Fatalf("deploy: %v\n%s%s", err, out, errOut)
	}
	for _, want := range []string{"Creating network spec_default", "Creating secret spec_token", "Creating secret spec_cert",
		"Creating config spec_page", "Creating config spec_motd", "Creating service spec_web", "Creating service spec_client"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy said %q, want %q", out, want)
		}
	}
	waitStack(t, n, "spec", map[string]int{"web": 2, "client": 1})
	features := composeSpecChecks(n, dir, env, files, errOut)
	for _, name := range slices.Sorted(maps.Keys(features)) {
		t.Run(name, features[name])
	}
	t.Run("redeploy updates in place", func(t *testing.T) { redeploySpec(t, n, dir, env, files) })

	out = mustShoalStack(t, n, dir, env, "rm", "spec")
	for _, want := range []string{"Removing service spec_web", "Removing secret spec_token", "Removing config spec_page", "Removing network spec_default"} {
		if !strings.Contains(out, want) {
			t.Errorf("rm said %q, want %q", out, want)
		}
	}
	assertNoStack(t, n, "spec")
}

// composeSpecChecks are one check per Compose Spec feature of
// composeSpecFiles, on the deployed stack; deployErr is what its deploy
// wrote to stderr.
func composeSpecChecks(n *testenv.Node, dir string, env, files []string, deployErr string) map[string]func(*testing.T) {
	webEnv := func(t *testing.T, want string) {
		t.Helper()
		out, err := execInService(t, n, "spec_web", "env")
		if err != nil || !strings.Contains(out, want+"\n") {
			t.Errorf("web's environment lacks %s: %v\n%s", want, err, out)
		}
	}
	return map[string]func(*testing.T){
		"interpolation required variable": func(t *testing.T) { webEnv(t, "GREETING=hi") },
		"interpolation default":           func(t *testing.T) { webEnv(t, "COLOR=blue") },
		"several files merged":            func(t *testing.T) { webEnv(t, "TIER=prod") },
		"env_file":                        func(t *testing.T) { webEnv(t, "FROM_ENV_FILE=yes") },
		".env": func(t *testing.T) {
			if got := *storedService(t, n, "spec_web").Spec.Mode.Replicated.Replicas; got != 2 {
				t.Errorf("web has %d replicas, .env says 2", got)
			}
		},
		"extends": func(t *testing.T) {
			if cs := storedService(t, n, "spec_web").Spec.TaskTemplate.ContainerSpec; cs.Image != "busybox:latest" || *cs.StopGracePeriod != time.Second {
				t.Errorf("web's image %q, grace %v: want common.yaml's base", cs.Image, cs.StopGracePeriod)
			}
		},
		"include": func(t *testing.T) {
			if got := storedService(t, n, "spec_client").Spec.Labels["com.docker.stack.namespace"]; got != "spec" {
				t.Errorf("extra.yaml's client in stack %q", got)
			}
		},
		"secret from environment": func(t *testing.T) {
			if got, err := execInService(t, n, "spec_web", "cat", "/run/secrets/token"); err != nil || got != "s3cret-token" {
				t.Errorf("web's secret: %q, %v", got, err)
			}
		},
		"secret from file": func(t *testing.T) {
			if got, err := execInService(t, n, "spec_web", "cat", "/run/secrets/cert"); err != nil || got != "cert-from-a-file" {
				t.Errorf("web's secret: %q, %v", got, err)
			}
		},
		"config from file": func(t *testing.T) {
			if got, err := execInService(t, n, "spec_web", "cat", "/etc/motd"); err != nil || got != "motd from a file\n" {
				t.Errorf("web's config: %q, %v", got, err)
			}
		},
		"config from content, reached by name": func(t *testing.T) {
			testenv.WaitFor(t, 30*time.Second, "client reaching web by name with the config as its page", func() (bool, string) {
				out, err := httpVia(t, n, "spec_client", "web", 80)
				return err == nil && strings.HasSuffix(strings.TrimSpace(out), "hello from blue"), out
			})
		},
		"deploy keys": func(t *testing.T) {
			spec := storedService(t, n, "spec_web").Spec
			tt := spec.TaskTemplate
			if spec.Labels["team"] != "web" || tt.Resources == nil || tt.Resources.Limits.MemoryBytes != 64<<20 ||
				tt.RestartPolicy.Condition != swarm.RestartPolicyConditionOnFailure || *tt.RestartPolicy.MaxAttempts != 3 ||
				spec.UpdateConfig.Parallelism != 2 || spec.UpdateConfig.Order != swarm.UpdateOrderStartFirst ||
				!slices.Equal(tt.Placement.Constraints, []string{"node.role == manager"}) {
				t.Errorf("web's spec does not carry deploy.*: labels %v, %+v %+v %+v %+v", spec.Labels, tt.Resources, tt.RestartPolicy, spec.UpdateConfig, tt.Placement)
			}
			c := strings.TrimSpace(n.MustDocker("ps", "-q", "-n", "1", "--filter", "label=com.docker.swarm.service.name=spec_web"))
			if mem := strings.TrimSpace(n.MustDocker("inspect", "--format", "{{.HostConfig.Memory}}", c)); mem != "67108864" {
				t.Errorf("web's container has a memory limit of %s", mem)
			}
		},
		"x- extensions ignored": func(t *testing.T) {
			if deployErr != "" {
				t.Errorf("deploy warned %q, want nothing", deployErr)
			}
		},
		"ls, services and ps print what the docker CLI prints": func(t *testing.T) {
			for _, args := range [][]string{{"ls"}, {"services", "spec"}, {"services", "-q", "spec"}, {"ps", "-q", "spec"}} {
				want := n.MustDocker(append([]string{"stack"}, args...)...)
				if got := mustShoalStack(t, n, dir, env, args...); got != want {
					t.Errorf("shoal stack %s:\n%q\ndocker stack the same:\n%q", strings.Join(args, " "), got, want)
				}
			}
			// CURRENT STATE says how long ago, which moves between the two.
			rows := func(out string) (rows [][]string) {
				for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
					cols := regexp.MustCompile(`\s{3,}`).Split(line, -1)
					if len(cols) > 5 {
						cols = slices.Delete(cols, 5, 6)
					}
					rows = append(rows, cols)
				}
				return rows
			}
			want := rows(n.MustDocker("stack", "ps", "--no-trunc", "spec"))
			if got := rows(mustShoalStack(t, n, dir, env, "ps", "--no-trunc", "spec")); !slices.EqualFunc(got, want, slices.Equal) {
				t.Errorf("shoal stack ps --no-trunc:\n%q\ndocker stack ps --no-trunc:\n%q", got, want)
			}
		},
		"profiles": func(t *testing.T) {
			if out := n.MustDocker("service", "ls", "--format", "{{.Name}}"); strings.Contains(out, "debug") {
				t.Errorf("the debug profile's service was deployed: %q", out)
			}
			withProfile := append(slices.Clone(env), "COMPOSE_PROFILES=debug")
			out := mustShoalStack(t, n, dir, withProfile, append([]string{"deploy", "--dry-run", "--resolve-image", "never"}, append(files, "spec")...)...)
			if !strings.Contains(out, "service spec_debug: create\n") {
				t.Errorf("dry run with COMPOSE_PROFILES=debug:\n%s", out)
			}
		},
	}
}

// redeploySpec checks that an unchanged redeploy changes nothing, that a dry
// run with three replicas shows the one field and writes nothing, and that
// the redeploy then updates web in place and leaves client alone.
func redeploySpec(t *testing.T, n *testenv.Node, dir string, env, files []string) {
	out := mustShoalStack(t, n, dir, env, append([]string{"deploy", "--dry-run", "--resolve-image", "never"}, append(files, "spec")...)...)
	if strings.Contains(out, ": create") || strings.Contains(out, ": update") {
		t.Errorf("dry run of the deployed files:\n%s", out)
	}
	webVersion := storedService(t, n, "spec_web").Version.Index
	clientTasks := runningTasks(t, n, "spec_client")
	webTasks := runningTasks(t, n, "spec_web")
	env = append(slices.Clone(env), "WEB_REPLICAS=3")
	out = mustShoalStack(t, n, dir, env, append([]string{"deploy", "--dry-run", "--resolve-image", "never"}, append(files, "spec")...)...)
	if !strings.Contains(out, "service spec_web: update\n    ~ Mode.Replicated.Replicas: 2 -> 3\n") ||
		!strings.Contains(out, "service spec_client: unchanged") || strings.Count(out, "    ") != 1 {
		t.Errorf("dry run with 3 replicas:\n%s", out)
	}
	if v := storedService(t, n, "spec_web").Version.Index; v != webVersion {
		t.Errorf("the dry run changed spec_web: version %d, was %d", v, webVersion)
	}

	out = mustShoalStack(t, n, dir, env, append([]string{"deploy", "--resolve-image", "never"}, append(files, "spec")...)...)
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
}

// A dependency with condition: service_healthy is healthy before its
// dependent's first task is created; an unsupported key warns with the
// service; a missing external object deploys nothing.
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
		"external.yaml": `services:
  app:
    secrets: [key]
secrets:
  key:
    external: true
`,
	})

	// Nothing of a bad deploy is written: not the networks, not the db.
	_, errOut, err := shoalStack(t, n, dir, nil, "deploy", "--resolve-image", "never", "-c", "compose.yaml", "-c", "external.yaml", "h")
	if err == nil || !strings.Contains(errOut, "secret key is external but does not exist") {
		t.Errorf("deploy with a missing external secret: %v, said %q", err, errOut)
	}
	assertNoStack(t, n, "h")

	out, errOut, err := shoalStack(t, n, dir, nil, "deploy", "--resolve-image", "never", "h")
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

// The voting app's stack file, as the docker CLI deploys it, deploys with
// `shoal stack deploy` too: it converges, shoal stack services prints what
// the docker CLI prints, its services find each other by name on the
// networks they share and not across; a redeploy with three
// workers updates the worker in place and leaves every other service as it
// was (its version and tasks: unchanged services are not written); shoal
// stack rm leaves nothing.
func TestShoalStackVotingApp(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "shoalvote")
	file := votingStack(t, n)
	dir := filepath.Dir(file)
	out := mustShoalStack(t, n, dir, nil, "deploy", "--resolve-image", "never", "-c", file, "shop")
	for _, want := range []string{"Creating network shop_frontend", "Creating network shop_backend",
		"Creating secret shop_db_password", "Creating config shop_vote_conf", "Creating service shop_worker"} {
		if !strings.Contains(out, want) {
			t.Fatalf("stack deploy said %q, want %q", out, want)
		}
	}
	waitStack(t, n, "shop", votingServices)
	assertVotingNames(t, n)
	// Published ports, one chosen by the swarm: the docker CLI's table.
	if got, want := mustShoalStack(t, n, dir, nil, "services", "shop"), n.MustDocker("stack", "services", "shop"); got != want {
		t.Errorf("shoal stack services:\n%s\ndocker stack services:\n%s", got, want)
	}

	before := map[string]uint64{}
	tasks := map[string][]string{}
	for svc := range votingServices {
		before[svc] = storedService(t, n, "shop_"+svc).Version.Index
		tasks[svc] = runningTasks(t, n, "shop_"+svc)
	}
	file = votingStack(t, n, "      replicas: 1\n      labels", "      replicas: 3\n      labels")
	out = mustShoalStack(t, n, dir, nil, "deploy", "--resolve-image", "never", "-c", file, "shop")
	if out != "Updating service shop_worker\n" {
		t.Errorf("redeploy with three workers said %q, want only the worker updated", out)
	}
	replicas := maps.Clone(votingServices)
	replicas["worker"] = 3
	waitStack(t, n, "shop", replicas)
	for svc := range votingServices {
		v, now := storedService(t, n, "shop_"+svc).Version.Index, runningTasks(t, n, "shop_"+svc)
		switch {
		case svc == "worker" && (v <= before[svc] || len(now) != 3 || !slices.Contains(now, tasks[svc][0])):
			t.Errorf("worker: version %d (was %d), tasks %q (had %q)", v, before[svc], now, tasks[svc])
		case svc != "worker" && (v != before[svc] || !slices.Equal(now, tasks[svc])):
			t.Errorf("shop_%s: version %d (was %d), tasks %q (were %q)", svc, v, before[svc], now, tasks[svc])
		}
	}

	out = mustShoalStack(t, n, dir, nil, "rm", "shop")
	if !strings.Contains(out, "Removing network shop_frontend") || !strings.Contains(out, "Removing network shop_backend") {
		t.Errorf("stack rm said %q", out)
	}
	assertNoStack(t, n, "shop")
}
