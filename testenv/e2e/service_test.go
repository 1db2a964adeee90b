package e2e

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/testenv"
)

// A replicated service comes up through `docker service create` (with its live
// progress), serves HTTP from inside its containers, scales, and goes away.
func TestServiceLifecycle(t *testing.T) {
	n := newSwarm(t, "life")
	out := n.MustDocker("service", "create", "--name", "web", "--replicas", "3", "--env", "A=1",
		"--limit-memory", "64m", "--restart-condition", "on-failure",
		"busybox", "httpd", "-f", "-p", "8080", "-h", "/etc")
	if !strings.Contains(out, "verify: Service web converged") && !strings.Contains(out, "converged") {
		t.Fatalf("service create did not report convergence:\n%s", out)
	}
	ls := n.MustDocker("service", "ls", "--format", "{{.Name}} {{.Mode}} {{.Replicas}} {{.Image}}")
	if strings.TrimSpace(ls) != "web replicated 3/3 busybox:latest" {
		t.Fatalf("service ls = %q", ls)
	}
	rows := serviceTasks(t, n, "web")
	if len(rows) != 3 {
		t.Fatalf("want 3 tasks, got %+v", rows)
	}
	for i, r := range rows {
		if r.Name != fmt.Sprintf("web.%d", i+1) || r.DesiredState != "Running" || !strings.HasPrefix(r.CurrentState, "Running") || r.Node != "life" {
			t.Fatalf("task row %d = %+v", i, r)
		}
	}

	// Task containers carry Docker's names and labels.
	names := n.MustDocker("ps", "--filter", "label=com.docker.swarm.service.name=web", "--format", "{{.Names}}")
	if c := strings.Count(strings.TrimSpace(names), "\n") + 1; c != 3 || !strings.Contains(names, "web.1.") {
		t.Fatalf("docker ps by label = %q", names)
	}
	first := strings.Fields(names)[0]
	var ctr struct {
		Config struct {
			Env    []string
			Labels map[string]string
		}
		HostConfig      struct{ Memory int64 }
		NetworkSettings struct {
			Networks map[string]struct{ IPAddress string }
		}
	}
	inspect(t, n, "container", first, &ctr)
	if ctr.HostConfig.Memory != 64<<20 {
		t.Fatalf("memory limit = %d", ctr.HostConfig.Memory)
	}
	if !contains(ctr.Config.Env, "A=1") {
		t.Fatalf("env = %v", ctr.Config.Env)
	}
	for _, l := range []string{"com.docker.swarm.service.id", "com.docker.swarm.task.id", "com.docker.swarm.task.name", "com.docker.swarm.node.id"} {
		if ctr.Config.Labels[l] == "" {
			t.Fatalf("label %s missing: %v", l, ctr.Config.Labels)
		}
	}
	if v, ok := ctr.Config.Labels["com.docker.swarm.task"]; !ok || v != "" {
		t.Fatalf("label com.docker.swarm.task (empty, as Docker sets it) missing: %v", ctr.Config.Labels)
	}
	var ip string
	for _, nw := range ctr.NetworkSettings.Networks {
		ip = nw.IPAddress
	}
	if ip == "" {
		t.Fatalf("container has no IP address: %+v", ctr.NetworkSettings)
	}

	// The service really serves HTTP from inside its container.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	testenv.WaitFor(t, 20*time.Second, "HTTP from the task", func() (bool, string) {
		resp, err := n.HTTPGet(ctx, "http://"+ip+":8080/hostname")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && len(body) > 0, fmt.Sprintf("%d %q", resp.StatusCode, body)
	})

	// exec runs inside the task's container.
	if got := strings.TrimSpace(n.MustDocker("exec", first, "sh", "-c", "echo $A")); got != "1" {
		t.Fatalf("exec echo $A = %q", got)
	}

	n.MustDocker("service", "scale", "web=5")
	waitRunning(t, n, "web", 5)
	n.MustDocker("service", "scale", "web=2")
	waitRunning(t, n, "web", 2)

	n.MustDocker("service", "rm", "web")
	testenv.WaitFor(t, 60*time.Second, "task containers removed", func() (bool, string) {
		out, err := n.Docker("ps", "-aq")
		return err == nil && strings.TrimSpace(out) == "", out
	})
	if out := n.MustDocker("service", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("service ls after rm = %q", out)
	}
}

// docker service inspect shows Docker's defaults for what the CLI left out.
func TestServiceInspectDefaults(t *testing.T) {
	n := newSwarm(t, "defaults")
	n.MustDocker("service", "create", "-d", "--name", "plain", "busybox", "sleep", "300")
	var svc swarm.Service
	inspect(t, n, "service", "plain", &svc)
	uc := svc.Spec.UpdateConfig
	if uc == nil || uc.Parallelism != 1 || uc.FailureAction != "pause" || uc.Monitor != 5*time.Second || uc.Order != "stop-first" {
		t.Fatalf("update config = %+v", uc)
	}
	rp := svc.Spec.TaskTemplate.RestartPolicy
	if rp == nil || rp.Condition != "any" || rp.Delay == nil || *rp.Delay != 5*time.Second {
		t.Fatalf("restart policy = %+v", rp)
	}
	if g := svc.Spec.TaskTemplate.ContainerSpec.StopGracePeriod; g == nil || *g != 10*time.Second {
		t.Fatalf("stop grace period = %v", g)
	}
	var info struct {
		Swarm swarm.Info
	}
	out := n.MustDocker("info", "--format", "{{json .}}")
	if err := jsonUnmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	if info.Swarm.Cluster == nil || info.Swarm.Cluster.Spec.Orchestration.TaskHistoryRetentionLimit == nil || *info.Swarm.Cluster.Spec.Orchestration.TaskHistoryRetentionLimit != 5 {
		t.Fatalf("task history limit in info = %+v", info.Swarm.Cluster)
	}
	if pretty := n.MustDocker("service", "inspect", "--pretty", "plain"); !strings.Contains(pretty, "Update order:      stop-first") {
		t.Fatalf("inspect --pretty:\n%s", pretty)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
