package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/testenv"
)

// taskContainer waits until the service has one running task container and
// returns its name, as `docker ps` shows it.
func taskContainer(t *testing.T, n *testenv.Node, service string) string {
	t.Helper()
	var name string
	testenv.WaitFor(t, 60*time.Second, service+" task container", func() (bool, string) {
		out, err := n.Docker("ps", "--filter", "label=com.docker.swarm.service.name="+service, "--format", "{{.Names}}")
		if err != nil {
			return false, out
		}
		names := strings.Fields(out)
		if len(names) != 1 {
			return false, out
		}
		name = names[0]
		return true, ""
	})
	return name
}

// waitTaskError waits until a task of the service shows want (quoted, as the CLI
// prints it) in the ERROR column of `docker service ps` and returns that row.
func waitTaskError(t *testing.T, n *testenv.Node, service, want string) taskRow {
	t.Helper()
	var found taskRow
	testenv.WaitFor(t, 60*time.Second, service+" task error "+want, func() (bool, string) {
		rows := serviceTasks(t, n, service)
		for _, r := range rows {
			if r.Error == `"`+want+`"` {
				found = r
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", rows)
	})
	return found
}

// execOut runs `docker exec c sh -c script` and returns its trimmed output and error.
func execOut(n *testenv.Node, c, script string) (string, error) {
	out, err := n.Docker("exec", c, "sh", "-c", script)
	return strings.TrimSpace(out), err
}

// mustExec is execOut that fails the test on error.
func mustExec(t *testing.T, n *testenv.Node, c, script string) string {
	t.Helper()
	out, err := execOut(n, c, script)
	if err != nil {
		t.Fatalf("exec %q in %s: %v", script, c, err)
	}
	return out
}

// A task that allocates past its memory limit is OOM-killed: the task fails with
// exit 137 and its container says OOMKilled; a pids limit stops forks.
func TestRuntimeResourceLimits(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "limits")
	n.MustDocker("service", "create", "-d", "--name", "hog", "--limit-memory", "8m",
		"--restart-condition", "none", "--stop-grace-period", "1s",
		"busybox", "sh", "-c", `x=$(head -c 64m /dev/zero | tr "\0" a); echo survived; sleep 100`)
	row := waitTaskError(t, n, "hog", "task: non-zero exit (137)")
	if !strings.HasPrefix(row.CurrentState, "Failed") {
		t.Fatalf("OOM task row = %+v", row)
	}
	var ctr container.InspectResponse
	out := n.MustDocker("ps", "-a", "--filter", "label=com.docker.swarm.service.name=hog", "--format", "{{.Names}}")
	inspect(t, n, "container", strings.TrimSpace(out), &ctr)
	if ctr.State == nil || !ctr.State.OOMKilled || ctr.State.ExitCode != 137 || ctr.HostConfig.Memory != 8<<20 {
		t.Fatalf("OOM container state = %+v memory %d", ctr.State, ctr.HostConfig.Memory)
	}

	n.MustDocker("service", "create", "-d", "--name", "forky", "--limit-pids", "5", "--stop-grace-period", "1s",
		"busybox", "sh", "-c", `(for i in 1 2 3 4 5 6 7 8 9 10; do sleep 300 & done); echo forked; exec sleep 300`)
	c := taskContainer(t, n, "forky")
	testenv.WaitFor(t, 30*time.Second, "fork failures in the logs", func() (bool, string) {
		logs, err := n.Docker("logs", c)
		return err == nil && strings.Contains(logs, "can't fork") && strings.Contains(logs, "forked"), logs
	})
	inspect(t, n, "container", c, &ctr)
	if ctr.HostConfig.PidsLimit == nil || *ctr.HostConfig.PidsLimit != 5 {
		t.Fatalf("PidsLimit = %v", ctr.HostConfig.PidsLimit)
	}
}

// What the service spec says about the process, its filesystem and its kernel
// settings is what the process inside the container sees.
func TestRuntimeSpecFields(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "spec")
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "greeting"), []byte("hello from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.MustDocker("service", "create", "-d", "--name", "spec", "--stop-grace-period", "1s",
		"--workdir", "/srv/app", "--hostname", "box-{{.Task.Slot}}", "--read-only",
		"--mount", "type=tmpfs,dst=/scratch",
		"--mount", "type=volume,src=specdata,dst=/data",
		"--mount", "type=bind,src="+hostDir+",dst=/host,readonly",
		"--cap-drop", "CHOWN", "--sysctl", "net.ipv4.ip_forward=1",
		"--ulimit", "nofile=1024:2048", "--env", "GREETING=hi there",
		"--label", "svc.label=s", "--container-label", "ctr.label=c",
		"--entrypoint", "sh", "busybox", "-c", `echo "start $(date +%s%N)" >> /data/starts; exec sleep 300`)
	c := taskContainer(t, n, "spec")

	checks := []struct{ script, want string }{
		{"pwd", "/srv/app"},
		{"hostname", "box-1"},
		{"cat /host/greeting", "hello from the host"},
		{"cat /proc/sys/net/ipv4/ip_forward", "1"},
		{"ulimit -n; ulimit -Hn", "1024\n2048"},
		{`echo "$GREETING"`, "hi there"},
		{"echo ok > /scratch/f && cat /scratch/f", "ok"},
		{"wc -l < /data/starts", "1"},
	}
	for _, ch := range checks {
		if got := mustExec(t, n, c, ch.script); got != ch.want {
			t.Errorf("exec %q = %q, want %q", ch.script, got, ch.want)
		}
	}
	if out, err := execOut(n, c, "touch /rootfs-write"); err == nil || !strings.Contains(out, "Read-only file system") {
		t.Errorf("write to the read-only rootfs: err %v, output %q", err, out)
	}
	if out, err := execOut(n, c, "touch /host/x"); err == nil || !strings.Contains(out, "Read-only file system") {
		t.Errorf("write to the read-only bind mount: err %v, output %q", err, out)
	}
	if out, err := execOut(n, c, "chown 65534 /scratch/f"); err == nil || !strings.Contains(out, "Operation not permitted") {
		t.Errorf("chown without CAP_CHOWN: err %v, output %q", err, out)
	}
	if out, err := execOut(n, c, "ip addr add 10.99.0.1/32 dev lo"); err == nil || !strings.Contains(out, "Operation not permitted") {
		t.Errorf("ip addr add without CAP_NET_ADMIN: err %v, output %q", err, out)
	}
	var svc struct {
		Spec struct{ Labels map[string]string }
	}
	inspect(t, n, "service", "spec", &svc)
	if svc.Spec.Labels["svc.label"] != "s" {
		t.Errorf("service labels = %v", svc.Spec.Labels)
	}

	var ctr container.InspectResponse
	inspect(t, n, "container", c, &ctr)
	if ctr.Config.Labels["ctr.label"] != "c" || ctr.Config.Labels["svc.label"] != "" {
		t.Errorf("container labels = %v", ctr.Config.Labels)
	}
	if len(ctr.Config.Entrypoint) != 1 || ctr.Config.Entrypoint[0] != "sh" || len(ctr.Config.Cmd) != 2 || ctr.Config.Cmd[0] != "-c" {
		t.Errorf("entrypoint %q cmd %q", ctr.Config.Entrypoint, ctr.Config.Cmd)
	}
	if ctr.Config.WorkingDir != "/srv/app" || ctr.Config.Hostname != "box-1" || !ctr.HostConfig.ReadonlyRootfs {
		t.Errorf("inspect: workdir %q hostname %q readonly %v", ctr.Config.WorkingDir, ctr.Config.Hostname, ctr.HostConfig.ReadonlyRootfs)
	}
	if !contains(ctr.HostConfig.CapDrop, "CAP_CHOWN") && !contains(ctr.HostConfig.CapDrop, "CHOWN") {
		t.Errorf("CapDrop = %v", ctr.HostConfig.CapDrop)
	}
	if len(ctr.Mounts) != 3 {
		t.Errorf("mounts = %+v", ctr.Mounts)
	}

	// The named volume outlives the task: a forced update starts a new task
	// that sees what the first one wrote.
	n.MustDocker("service", "update", "-d", "--force", "spec")
	testenv.WaitFor(t, 60*time.Second, "second task sees the volume", func() (bool, string) {
		out, err := n.Docker("ps", "--filter", "label=com.docker.swarm.service.name=spec", "--format", "{{.Names}}")
		names := strings.Fields(out)
		if err != nil || len(names) != 1 || names[0] == c {
			return false, out
		}
		got, err := execOut(n, names[0], "wc -l < /data/starts")
		return err == nil && got == "2", got
	})
}

// --user takes a uid:gid or a name from the image's /etc/passwd; --cap-add adds
// a capability.
func TestRuntimeUser(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "user")
	n.MustDocker("service", "create", "-d", "--name", "numeric", "--user", "1000:1000", "--stop-grace-period", "1s",
		"busybox", "sleep", "300")
	n.MustDocker("service", "create", "-d", "--name", "named", "--user", "nobody", "--stop-grace-period", "1s",
		"busybox", "sleep", "300")
	if got := mustExec(t, n, taskContainer(t, n, "numeric"), "id -u; id -g"); got != "1000\n1000" {
		t.Errorf("--user 1000:1000: id = %q", got)
	}
	if got := mustExec(t, n, taskContainer(t, n, "named"), "id -u; id -g"); got != "65534\n65534" {
		t.Errorf("--user nobody: id = %q", got)
	}

	// --cap-add grants what the default set lacks.
	n.MustDocker("service", "create", "-d", "--name", "netadmin", "--cap-add", "NET_ADMIN", "--stop-grace-period", "1s",
		"busybox", "sleep", "300")
	if got := mustExec(t, n, taskContainer(t, n, "netadmin"), "ip addr add 10.99.0.1/32 dev lo && ip addr show dev lo | grep -c 10.99.0.1"); got != "1" {
		t.Errorf("--cap-add NET_ADMIN: ip addr add gave %q", got)
	}
}

// A custom stop signal reaches the task's process, which can clean up.
func TestRuntimeStopSignal(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "stopsig")
	n.MustDocker("service", "create", "-d", "--name", "trap", "--stop-signal", "SIGUSR1", "--stop-grace-period", "10s",
		"busybox", "sh", "-c", `trap 'echo caught USR1; exit 0' USR1; echo ready; while true; do sleep 0.2; done`)
	c := taskContainer(t, n, "trap")
	var ctr container.InspectResponse
	inspect(t, n, "container", c, &ctr)
	if ctr.Config.StopSignal != "SIGUSR1" {
		t.Fatalf("StopSignal = %q", ctr.Config.StopSignal)
	}
	testenv.WaitFor(t, 20*time.Second, "ready", func() (bool, string) {
		out, err := n.Docker("logs", c)
		return err == nil && strings.Contains(out, "ready"), out
	})
	start := time.Now()
	n.MustDocker("stop", c)
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("docker stop took %s: the stop signal did not end the task", d)
	}
	if out := n.MustDocker("logs", c); !strings.Contains(out, "caught USR1") {
		t.Errorf("logs after stop = %q", out)
	}
}

// --init runs docker-init (the shoal binary itself) as PID 1: it runs the command,
// reaps orphans and forwards the stop signal.
func TestRuntimeInit(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "init")
	// The command leaves an orphan behind, which only an init reaps.
	n.MustDocker("service", "create", "-d", "--name", "withinit", "--init", "--stop-grace-period", "30s",
		"busybox", "sh", "-c", `sh -c "sleep 0.2 &"; exec sleep 300`)
	c := taskContainer(t, n, "withinit")
	if got := mustExec(t, n, c, "cat /proc/1/comm"); got != "docker-init" {
		t.Fatalf("PID 1 is %q, want docker-init", got)
	}
	// (docker-init is a Go program: whichever of its threads forked the command,
	// ps's PPID column names the process.)
	if got := mustExec(t, n, c, "ps -o ppid,args | grep '^ *1 ' | grep -v 'sleep 0.2'"); !strings.HasSuffix(got, " sleep 300") {
		t.Fatalf("PID 1's child is %q, want the command (sleep 300)", got)
	}
	testenv.WaitFor(t, 10*time.Second, "the orphan reaped", func() (bool, string) {
		out, err := execOut(n, c, `grep -l "^State:.*Z" /proc/[0-9]*/status || true`)
		return err == nil && out == "", out
	})
	var ins struct{ Path string }
	inspect(t, n, "container", c, &ins)
	if ins.Path != "sh" {
		t.Errorf("inspect Path = %q, want the command, not the init", ins.Path)
	}
	// The init forwards SIGTERM to sleep, which dies of it: no 30 s grace period.
	start := time.Now()
	n.MustDocker("service", "rm", "withinit")
	testenv.WaitFor(t, 20*time.Second, "the task container gone", func() (bool, string) {
		out, err := n.Docker("ps", "-aq")
		return err == nil && strings.TrimSpace(out) == "", out
	})
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("stopping took %s: SIGTERM was not forwarded", d)
	}
}

// A port published in host mode is reachable on the node's own address.
func TestRuntimePublishHostMode(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "hostport")
	n.MustDocker("service", "create", "-d", "--name", "web", "--stop-grace-period", "1s",
		"--publish", "mode=host,published=18080,target=8080",
		"busybox", "sh", "-c", "echo published > /tmp/index.html; exec httpd -f -p 8080 -h /tmp")
	c := taskContainer(t, n, "web")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	testenv.WaitFor(t, 30*time.Second, "HTTP on the published port", func() (bool, string) {
		resp, err := n.HTTPGet(ctx, "http://127.0.0.1:18080/index.html")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && strings.TrimSpace(string(body)) == "published", fmt.Sprintf("%d %q", resp.StatusCode, body)
	})
	if out := n.MustDocker("port", c); !strings.Contains(out, "8080/tcp -> 0.0.0.0:18080") {
		t.Errorf("docker port = %q", out)
	}
	if ps := n.MustDocker("service", "ps", "--format", "{{.Ports}}", "web"); !strings.Contains(ps, "*:18080->8080/tcp") {
		t.Errorf("service ps ports = %q", ps)
	}
}

// An ingress-mode port (the default of -p) balances connections to the node over
// the service's tasks, follows scaling, gets a port from the dynamic range when
// none is given, and closes with the service.
func TestRuntimePublishIngress(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "ingress")
	n.MustDocker("service", "create", "-d", "--name", "web", "--replicas", "3", "--stop-grace-period", "1s", "-p", "18082:8080",
		"busybox", "sh", "-c", `hostname > /tmp/index.html; exec httpd -f -p 8080 -h /tmp`)
	waitRunning(t, n, "web", 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hostnames := func(url string, tries int) map[string]bool {
		seen := map[string]bool{}
		for i := 0; i < tries; i++ {
			resp, err := n.HTTPGet(ctx, url)
			if err != nil {
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				seen[strings.TrimSpace(string(body))] = true
			}
		}
		return seen
	}
	testenv.WaitFor(t, 30*time.Second, "the ingress port reaching all three tasks", func() (bool, string) {
		seen := hostnames("http://127.0.0.1:18082/index.html", 6)
		return len(seen) == 3, fmt.Sprint(seen)
	})
	// As under Docker, ingress ports are the service's, not its tasks': service ps
	// shows no ports for them.
	if ps := strings.TrimSpace(n.MustDocker("service", "ps", "--format", "{{.Ports}}", "web")); strings.Trim(ps, "\n") != "" {
		t.Errorf("service ps ports of an ingress-published service = %q", ps)
	}
	var svc swarm.Service
	inspect(t, n, "service", "web", &svc)
	if ps := svc.Endpoint.Ports; len(ps) != 1 || ps[0].PublishedPort != 18082 || ps[0].TargetPort != 8080 || ps[0].PublishMode != swarm.PortConfigPublishModeIngress {
		t.Fatalf("endpoint ports = %+v", svc.Endpoint.Ports)
	}

	n.MustDocker("service", "scale", "-d", "web=1")
	testenv.WaitFor(t, 30*time.Second, "the ingress port following the scale-down", func() (bool, string) {
		seen := hostnames("http://127.0.0.1:18082/index.html", 4)
		return len(seen) == 1, fmt.Sprint(seen)
	})

	// Another service cannot take the port; one without a published port gets one.
	if out, err := n.Docker("service", "create", "-d", "--name", "clash", "-p", "18082:80", "busybox", "sleep", "300"); err == nil || !strings.Contains(out, "already in use by service 'web'") {
		t.Fatalf("a second service on the same ingress port: %v %q", err, out)
	}
	n.MustDocker("service", "create", "-d", "--name", "dyn", "--stop-grace-period", "1s", "-p", "8080",
		"busybox", "sh", "-c", `echo dynamic > /tmp/index.html; exec httpd -f -p 8080 -h /tmp`)
	var dyn swarm.Service
	inspect(t, n, "service", "dyn", &dyn)
	if ps := dyn.Endpoint.Ports; len(ps) != 1 || ps[0].PublishedPort < 30000 || ps[0].PublishedPort > 32767 {
		t.Fatalf("dynamic ingress port = %+v", dyn.Endpoint.Ports)
	}
	dynURL := fmt.Sprintf("http://127.0.0.1:%d/index.html", dyn.Endpoint.Ports[0].PublishedPort)
	testenv.WaitFor(t, 30*time.Second, "the dynamic ingress port", func() (bool, string) {
		seen := hostnames(dynURL, 1)
		return seen["dynamic"], fmt.Sprint(seen)
	})

	n.MustDocker("service", "rm", "web")
	testenv.WaitFor(t, 30*time.Second, "the ingress port closed", func() (bool, string) {
		_, err := n.HTTPGet(ctx, "http://127.0.0.1:18082/index.html")
		return err != nil, fmt.Sprint(err)
	})
}
