package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/testenv"
)

// votingServices are the services of testdata/voting/docker-stack.yml with
// their replicas, and the images the file names (busybox stand-ins).
var (
	votingServices = map[string]int{"redis": 2, "db": 1, "vote": 2, "result": 2, "worker": 1}
	votingImages   = []string{"redis:alpine", "postgres:9.4", "dockersamples/examplevotingapp_vote:before",
		"dockersamples/examplevotingapp_result:before", "dockersamples/examplevotingapp_worker:latest"}
)

// votingStack copies testdata/voting into a directory of the test's (the
// stack file with the secret and config files beside it), replacing each
// edit's old text with its new, and tags busybox as the file's images on n.
func votingStack(t *testing.T, n *testenv.Node, edits ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"docker-stack.yml", "db_password.txt", "vote.conf"} {
		b, err := os.ReadFile(filepath.Join("testdata", "voting", name))
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for i := 0; i+1 < len(edits) && name == "docker-stack.yml"; i += 2 {
			if !strings.Contains(text, edits[i]) {
				t.Fatalf("stack file has no %q", edits[i])
			}
			text = strings.Replace(text, edits[i], edits[i+1], 1)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, img := range votingImages {
		n.MustDocker("tag", "busybox:latest", img)
	}
	return filepath.Join(dir, "docker-stack.yml")
}

// waitStack waits until every service of the stack runs its replicas.
func waitStack(t *testing.T, n *testenv.Node, stack string, replicas map[string]int) {
	t.Helper()
	testenv.WaitFor(t, 120*time.Second, "stack "+stack+" converged", func() (bool, string) {
		out, err := try(n, "stack", "services", "--format", "{{.Name}} {{.Replicas}}", stack)
		if err != nil {
			return false, out
		}
		var want []string
		for svc, r := range replicas {
			want = append(want, fmt.Sprintf("%s_%s %d/%d", stack, svc, r, r))
		}
		slices.Sort(want)
		got := lines(out)
		slices.Sort(got)
		return slices.Equal(got, want), out
	})
}

// runningTasks are a service's running task IDs, sorted.
func runningTasks(t *testing.T, n *testenv.Node, service string) []string {
	t.Helper()
	ids := strings.Fields(n.MustDocker("service", "ps", "-q", "--no-trunc", "--filter", "desired-state=running", service))
	slices.Sort(ids)
	return ids
}

// execInService runs a command in the first running task container of a service.
func execInService(t *testing.T, n *testenv.Node, service string, cmd ...string) (string, error) {
	t.Helper()
	c := strings.Fields(n.MustDocker("ps", "-q", "--filter", "label=com.docker.swarm.service.name="+service))
	if len(c) == 0 {
		t.Fatalf("no running container of %s", service)
	}
	return try(n, append([]string{"exec", c[0]}, cmd...)...)
}

// httpVia is busybox nc sending a GET / to host:port from inside service's task.
func httpVia(t *testing.T, n *testenv.Node, service, host string, port int) (string, error) {
	t.Helper()
	return execInService(t, n, service, "sh", "-c", fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 %s %d`, host, port))
}

// `docker stack deploy` of the voting app converges; stack ls/services/ps
// answer; its services find each other by their short names on the networks
// they share and not across; a redeploy with another replica count updates in
// place; stack rm leaves nothing behind.
func TestStackDeployVotingApp(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "stack")
	file := votingStack(t, n)
	out := n.MustDocker("stack", "deploy", "-c", file, "shop")
	for _, want := range []string{"Creating network shop_frontend", "Creating network shop_backend",
		"Creating secret shop_db_password", "Creating config shop_vote_conf", "Creating service shop_worker"} {
		if !strings.Contains(out, want) {
			t.Fatalf("stack deploy said %q, want %q", out, want)
		}
	}
	waitStack(t, n, "shop", votingServices)

	if got := lines(n.MustDocker("stack", "ls", "--format", "{{.Name}} {{.Services}}")); !slices.Equal(got, []string{"shop 5"}) {
		t.Errorf("stack ls: %q", got)
	}
	ps := lines(n.MustDocker("stack", "ps", "--filter", "desired-state=running", "--format", "{{.Name}} {{.CurrentState}}", "shop"))
	if len(ps) != 8 {
		t.Errorf("stack ps: %q, want 8 running tasks", ps)
	}
	for _, row := range ps {
		if !strings.HasPrefix(row, "shop_") || !strings.Contains(row, "Running") {
			t.Errorf("stack ps row %q", row)
		}
	}
	labels := n.MustDocker("network", "ls", "--filter", "label=com.docker.stack.namespace=shop", "--format", "{{.Name}}")
	if got := lines(labels); !slices.Equal(got, []string{"shop_backend", "shop_frontend"}) {
		t.Errorf("the stack's networks: %q", got)
	}

	assertVotingNames(t, n)

	// A redeploy with three workers: every service is updated in place (its
	// version rises), the others keep their tasks.
	before := map[string]uint64{}
	tasks := map[string][]string{}
	for svc := range votingServices {
		before[svc] = storedService(t, n, "shop_"+svc).Version.Index
		tasks[svc] = runningTasks(t, n, "shop_"+svc)
	}
	file = votingStack(t, n, "      replicas: 1\n      labels", "      replicas: 3\n      labels")
	out = n.MustDocker("stack", "deploy", "--resolve-image", "never", "-c", file, "shop")
	if !strings.Contains(out, "Updating service shop_worker") || strings.Contains(out, "Creating") {
		t.Fatalf("redeploy said %q", out)
	}
	replicas := map[string]int{}
	for svc, r := range votingServices {
		replicas[svc] = r
	}
	replicas["worker"] = 3
	waitStack(t, n, "shop", replicas)
	for svc := range votingServices {
		if v := storedService(t, n, "shop_"+svc).Version.Index; v <= before[svc] {
			t.Errorf("shop_%s version %d after the redeploy, was %d", svc, v, before[svc])
		}
		now := runningTasks(t, n, "shop_"+svc)
		if svc == "worker" {
			if len(now) != 3 || !slices.Contains(now, tasks[svc][0]) {
				t.Errorf("worker tasks %q after scaling up, had %q", now, tasks[svc])
			}
		} else if !slices.Equal(now, tasks[svc]) {
			t.Errorf("shop_%s tasks %q after the redeploy, were %q", svc, now, tasks[svc])
		}
	}

	// stack rm: everything goes, the networks too (their removal waits for the
	// tasks to stop).
	out = n.MustDocker("stack", "rm", "shop")
	if !strings.Contains(out, "Removing network shop_frontend") || strings.Contains(out, "Failed") {
		t.Fatalf("stack rm said %q", out)
	}
	for _, kind := range []string{"service", "secret", "config"} {
		if out := n.MustDocker(kind, "ls", "-q"); strings.TrimSpace(out) != "" {
			t.Errorf("%s ls after stack rm: %q", kind, out)
		}
	}
	if out := n.MustDocker("network", "ls", "-q", "--filter", "label=com.docker.stack.namespace=shop"); strings.TrimSpace(out) != "" {
		t.Errorf("networks after stack rm: %q", out)
	}
	if out := n.MustDocker("stack", "ls", "--format", "{{.Name}}"); strings.TrimSpace(out) != "" {
		t.Errorf("stack ls after stack rm: %q", out)
	}
	testenv.WaitFor(t, 60*time.Second, "the stack's containers removed", func() (bool, string) {
		out, err := try(n, "ps", "-aq")
		return err == nil && strings.TrimSpace(out) == "", out
	})
}

// assertVotingNames checks the voting app's names: worker is on both
// networks and reaches db and vote by their short names, tasks.redis has
// both replicas, vote (frontend only) reaches redis but neither resolves nor
// reaches db (backend).
func assertVotingNames(t *testing.T, n *testenv.Node) {
	t.Helper()
	testenv.WaitFor(t, 30*time.Second, "worker reaching db and vote by their short names", func() (bool, string) {
		db, err1 := httpVia(t, n, "shop_worker", "db", 5432)
		vote, err2 := httpVia(t, n, "shop_worker", "vote", 80)
		return err1 == nil && err2 == nil && strings.HasSuffix(strings.TrimSpace(db), "s3cret-postgres") &&
			strings.HasSuffix(strings.TrimSpace(vote), "vote: cats or dogs"), db + vote
	})
	if out, err := execInService(t, n, "shop_worker", "nslookup", "tasks.redis"); err != nil || strings.Count(out, "Address: 10.") != 2 {
		t.Errorf("nslookup tasks.redis from worker: %v\n%s", err, out)
	}
	if out, err := httpVia(t, n, "shop_vote", "redis", 6379); err != nil || !strings.HasSuffix(strings.TrimSpace(out), "redis") {
		t.Errorf("vote reaching redis on frontend: %v\n%s", err, out)
	}
	if out, err := execInService(t, n, "shop_vote", "nslookup", "db"); err == nil || strings.Contains(out, "Address: 10.") {
		t.Errorf("vote (frontend) resolved db (backend): %v\n%s", err, out)
	}
	if out, err := httpVia(t, n, "shop_vote", taskAddr(t, n, "shop_db"), 5432); err == nil && strings.TrimSpace(out) != "" {
		t.Errorf("vote (frontend) reached db's task on backend: %s", out)
	}
}

// A stack's services without networks join <stack>_default; an external
// network is used, not created nor removed; --prune removes the services a
// new file no longer has.
func TestStackDefaultExternalPrune(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "stackprune")
	n.MustDocker("network", "create", "-d", "overlay", "shared")
	dir := t.TempDir()
	full := `version: "3.8"
services:
  web:
    image: busybox
    command: ["httpd", "-f", "-p", "80", "-h", "/etc"]
    networks: [default, shared]
  api:
    image: busybox
    command: ["sleep", "100000"]
    stop_grace_period: 1s
  gone:
    image: busybox
    command: ["sleep", "100000"]
    stop_grace_period: 1s
networks:
  shared:
    external: true
`
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	out := n.MustDocker("stack", "deploy", "--resolve-image", "never", "--with-registry-auth", "-c", write("a.yml", full), "two")
	if !strings.Contains(out, "Creating network two_default") || strings.Contains(out, "Creating network two_shared") {
		t.Fatalf("stack deploy said %q", out)
	}
	waitStack(t, n, "two", map[string]int{"web": 1, "api": 1, "gone": 1})
	testenv.WaitFor(t, 30*time.Second, "api reaching web on the default network", func() (bool, string) {
		out, err := httpVia(t, n, "two_api", "web", 80)
		return err == nil && strings.Contains(out, "HTTP/1.1 "), out
	})

	pruned := strings.Replace(full, "  gone:\n    image: busybox\n    command: [\"sleep\", \"100000\"]\n    stop_grace_period: 1s\n", "", 1)
	out = n.MustDocker("stack", "deploy", "--prune", "--resolve-image", "never", "-c", write("b.yml", pruned), "two")
	if !strings.Contains(out, "Removing service two_gone") {
		t.Fatalf("stack deploy --prune said %q", out)
	}
	waitStack(t, n, "two", map[string]int{"web": 1, "api": 1})

	n.MustDocker("stack", "rm", "two")
	nets := lines(n.MustDocker("network", "ls", "--filter", "scope=swarm", "--format", "{{.Name}}"))
	if !slices.Equal(nets, []string{"ingress", "shared"}) {
		t.Errorf("swarm networks after stack rm: %q, want ingress and the external one", nets)
	}
}

// The voting app on three nodes: its tasks spread over them, every worker
// reaches db and redis across nodes by their short names, and stack rm removes
// everything from every node.
func TestMultiNodeStack(t *testing.T) {
	t.Parallel()
	nodes := multiSwarm(t, 1, 2)
	n1 := nodes[0]
	file := votingStack(t, n1, "      replicas: 1\n      labels", "      replicas: 3\n      labels")
	n1.MustDocker("stack", "deploy", "--resolve-image", "never", "-c", file, "shop")
	replicas := map[string]int{}
	for svc, r := range votingServices {
		replicas[svc] = r
	}
	replicas["worker"] = 3
	waitStack(t, n1, "shop", replicas)
	waitRunningOn(t, n1, "shop_worker", 3, 90*time.Second, func(by map[string]int) bool { return len(by) == 3 })

	for _, n := range nodes {
		testenv.WaitFor(t, 60*time.Second, "the worker on "+n.Name+" reaching db and redis", func() (bool, string) {
			c := strings.Fields(n.MustDocker("ps", "-q", "--filter", "label=com.docker.swarm.service.name=shop_worker"))
			if len(c) != 1 {
				return false, fmt.Sprint("worker containers: ", c)
			}
			get := `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 %s %d | tail -n 1`
			db, err1 := try(n, "exec", c[0], "sh", "-c", fmt.Sprintf(get, "db", 5432))
			redis, err2 := try(n, "exec", c[0], "sh", "-c", fmt.Sprintf(get, "redis", 6379))
			return err1 == nil && err2 == nil && strings.TrimSpace(db) == "s3cret-postgres" && strings.TrimSpace(redis) == "redis", db + redis
		})
	}

	out := n1.MustDocker("stack", "rm", "shop")
	if strings.Contains(out, "Failed") {
		t.Fatalf("stack rm said %q", out)
	}
	if out := n1.MustDocker("network", "ls", "-q", "--filter", "label=com.docker.stack.namespace=shop"); strings.TrimSpace(out) != "" {
		t.Errorf("networks after stack rm: %q", out)
	}
	for _, n := range nodes {
		testenv.WaitFor(t, 60*time.Second, "the stack's containers removed from "+n.Name, func() (bool, string) {
			out, err := try(n, "ps", "-aq")
			return err == nil && strings.TrimSpace(out) == "", out
		})
	}
}
