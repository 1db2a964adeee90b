package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
	"github.com/shoal-project/shoal/testenv"
)

// debianCLI is the docker CLI of Debian's docker.io package (20.10, API 1.41),
// installed by `make deps`.
const debianCLI = "/usr/bin/docker"

// The docker CLI 20.10 that Debian ships drives shoal as well as the current one:
// it negotiates API 1.41 and uses the older response shapes.
func TestDebianCLI(t *testing.T) {
	t.Parallel()
	n := testenv.StartNode(t, "compat", testenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cli := func(args ...string) string {
		t.Helper()
		out, err := n.RunCLI(ctx, debianCLI, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if v := cli("version", "--format", "{{.Client.APIVersion}} {{.Server.APIVersion}}"); !strings.HasPrefix(v, "1.41 ") {
		t.Fatalf("version = %q", v)
	}
	if out := cli("swarm", "init", "--advertise-addr", "127.0.0.1"); !strings.Contains(out, "docker swarm join --token SWMTKN-1-") {
		t.Fatalf("swarm init:\n%s", out)
	}
	archive := imagetest.BusyboxArchive(t, t.TempDir(), "busybox:latest")
	if out := cli("load", "-i", archive); !strings.Contains(out, "Loaded image: busybox:latest") {
		t.Fatalf("load: %q", out)
	}
	out := cli("service", "create", "--name", "old", "--replicas", "2", "--stop-grace-period", "1s", "--update-monitor", "1s",
		"busybox", "sh", "-c", "echo from-task; sleep 600")
	if !strings.Contains(out, "converged") {
		t.Fatalf("service create progress:\n%s", out)
	}
	if ls := cli("service", "ls", "--format", "{{.Name}} {{.Replicas}}"); strings.TrimSpace(ls) != "old 2/2" {
		t.Fatalf("service ls = %q", ls)
	}
	if ps := cli("service", "ps", "--format", "{{.Name}} {{.CurrentState}}", "old"); strings.Count(ps, "Running") != 2 {
		t.Fatalf("service ps:\n%s", ps)
	}
	testenv.WaitFor(t, 20*time.Second, "service logs through the 20.10 CLI", func() (bool, string) {
		out, err := n.RunCLI(ctx, debianCLI, "service", "logs", "old")
		return err == nil && strings.Count(out, "from-task") == 2, out
	})
	cli("service", "scale", "old=3")
	out = cli("service", "update", "--env-add", "B=2", "old")
	if !strings.Contains(out, "converged") {
		t.Fatalf("service update progress:\n%s", out)
	}
	if env := cli("service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Env}}", "old"); !strings.Contains(env, "B=2") {
		t.Fatalf("env after update = %q", env)
	}
	cli("service", "rollback", "old")
	if env := cli("service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Env}}", "old"); strings.Contains(env, "B=2") {
		t.Fatalf("env after rollback = %q", env)
	}
	if nodes := cli("node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}"); strings.TrimSpace(nodes) != "compat Leader" {
		t.Fatalf("node ls = %q", nodes)
	}
	cli("service", "rm", "old")
	testenv.WaitFor(t, 30*time.Second, "task containers removed", func() (bool, string) {
		out, err := n.RunCLI(ctx, debianCLI, "ps", "-aq")
		return err == nil && strings.TrimSpace(out) == "", out
	})
}
