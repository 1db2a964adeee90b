package e2e

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"

	"github.com/shoal-project/shoal/testenv"
)

// docker network ls/inspect show a node's predefined networks as dockerd does,
// with the task containers on the bridge, and the changes shoal does not have are
// refused with clear errors.
func TestNetworks(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "nets")

	rows := lines(n.MustDocker("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}} {{len .ID}}"))
	if want := []string{"bridge bridge local 12", "host host local 12", "ingress overlay swarm 12", "none null local 12"}; strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Fatalf("network ls: %q, want %q", rows, want)
	}
	if out := n.MustDocker("network", "ls", "-q", "--no-trunc", "--filter", "driver=bridge"); len(strings.TrimSpace(out)) != 64 {
		t.Fatalf("network ls -q --no-trunc --filter driver=bridge: %q", out)
	}

	n.MustDocker("service", "create", "-d", "--name", "web", "--stop-grace-period", "1s", "busybox", "sleep", "300")
	c := taskContainer(t, n, "web")
	id := strings.TrimSpace(n.MustDocker("inspect", "--format", "{{.Id}}", c))
	ip := strings.TrimSpace(n.MustDocker("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", c))
	if !strings.HasPrefix(ip, "172.30.") {
		t.Fatalf("task container %s has address %q", c, ip)
	}
	var br network.Inspect
	inspect(t, n, "network", "bridge", &br)
	if br.Driver != "bridge" || br.Scope != "local" || br.Options["com.docker.network.bridge.name"] != "shoal0" ||
		len(br.IPAM.Config) != 1 || br.IPAM.Config[0].Subnet.String() != "172.30.0.0/16" ||
		br.IPAM.Config[0].Gateway.String() != "172.30.0.1" {
		t.Fatalf("network inspect bridge: %+v", br)
	}
	ep, ok := br.Containers[id]
	if !ok || ep.Name != c || ep.IPv4Address.String() != ip+"/16" || len(ep.EndpointID) != 64 {
		t.Fatalf("network inspect bridge: container %s (%s) at %s not in %+v", c, id, ip, br.Containers)
	}

	refusals := []struct {
		args []string
		want string
	}{
		{[]string{"service", "create", "-d", "--network", "nosuch", "busybox"}, "network nosuch not found"},
		{[]string{"network", "create", "-d", "overlay", "--subnet", "bogus", "x"}, "Error response from daemon: Invalid subnet bogus : invalid CIDR address: bogus"},
		{[]string{"service", "create", "-d", "--network", "ingress", "busybox"}, "Service cannot be explicitly attached to the ingress network"},
		{[]string{"network", "inspect", "nosuch"}, "network nosuch not found"},
		{[]string{"network", "rm", "bridge"}, "Error response from daemon: bridge is a pre-defined network and cannot be removed"},
	}
	for _, r := range refusals {
		out, err := n.Docker(r.args...)
		if err == nil || !strings.Contains(out, r.want) {
			t.Fatalf("docker %s: %v\n%s\nwant %q", strings.Join(r.args, " "), err, out, r.want)
		}
	}
	if out := n.MustDocker("network", "prune", "-f"); out != "" {
		t.Fatalf("network prune -f: %q", out)
	}
}

// Overlay networks on a one-node swarm: services on a shared network reach
// each other by name through a VIP, a network in use cannot be removed, an
// internal network has no way out, prune removes what nothing uses.
func TestOverlayNetworksOneNode(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "overlay1")
	n.MustDocker("network", "create", "-d", "overlay", "--label", "team=a", "--attachable", "back")
	n.MustDocker("network", "create", "-d", "overlay", "--internal", "--subnet", "10.30.0.0/24", "--gateway", "10.30.0.254", "sealed")
	n.MustDocker("network", "create", "-d", "overlay", "unused")
	var back network.Inspect
	inspect(t, n, "network", "back", &back)
	if back.Scope != "swarm" || back.Driver != "overlay" || !back.Attachable || back.Labels["team"] != "a" ||
		len(back.IPAM.Config) != 1 || back.IPAM.Config[0].Subnet.String() != "10.0.1.0/24" {
		t.Fatalf("network inspect back: %+v", back)
	}

	n.MustDocker("service", "create", "-d", "--name", "web", "--replicas", "2", "--network", "back", "--stop-grace-period", "1s",
		"busybox", "sh", "-c", "hostname > /tmp/name; exec httpd -f -p 80 -h /tmp")
	n.MustDocker("service", "create", "-d", "--name", "client", "--network", "name=back,alias=cl", "--network", "sealed", "--stop-grace-period", "1s",
		"busybox", "sleep", "300")
	n.MustDocker("service", "create", "-d", "--name", "hermit", "--network", "sealed", "--stop-grace-period", "1s",
		"busybox", "sleep", "300")
	c := taskContainer(t, n, "client")
	hermit := taskContainer(t, n, "hermit")

	names := map[string]bool{}
	testenv.WaitFor(t, 60*time.Second, "client reaching both web tasks through the VIP", func() (bool, string) {
		out, err := n.Docker("exec", c, "sh", "-c", `for i in 1 2 3 4 5 6; do printf 'GET /name HTTP/1.0\r\n\r\n' | nc -w 2 web 80 | tail -n 1; done`)
		if err != nil {
			return false, out
		}
		for _, f := range strings.Fields(out) {
			if len(f) == 12 {
				names[f] = true
			}
		}
		return len(names) == 2, out
	})
	if out := n.MustDocker("exec", hermit, "nslookup", "client"); !strings.Contains(out, "Address: 10.30.0.") {
		t.Fatalf("hermit resolving client on sealed: %s", out)
	}
	if out := n.MustDocker("exec", c, "nslookup", "cl"); !strings.Contains(out, "Address: 10.0.1.") {
		t.Fatalf("client resolving its alias cl on back: %s", out)
	}
	if out := n.MustDocker("exec", hermit, "ip", "route"); strings.Contains(out, "default") || strings.Contains(out, "172.30.") {
		t.Fatalf("a task on an internal network only has a way out:\n%s", out)
	}
	var onBack network.Inspect
	inspect(t, n, "network", "back", &onBack)
	if len(onBack.Containers) != 3 {
		t.Fatalf("network inspect back: %d containers, want web's two and client: %+v", len(onBack.Containers), onBack.Containers)
	}

	if out, err := n.Docker("network", "rm", "back"); err == nil || !strings.Contains(out, "is in use by service") {
		t.Fatalf("network rm of a network in use: %v\n%s", err, out)
	}
	if out := strings.TrimSpace(n.MustDocker("network", "prune", "-f")); !strings.Contains(out, "unused") || strings.Contains(out, "back") {
		t.Fatalf("network prune -f: %q", out)
	}
	n.MustDocker("service", "rm", "web", "client", "hermit")
	testenv.WaitFor(t, 30*time.Second, "back removable once its tasks are gone", func() (bool, string) {
		out, err := n.Docker("network", "rm", "back")
		return err == nil, out
	})
}

// A service on the predefined host network runs its tasks in the node's own
// network namespace, as dockerd's do: a web server in a task answers on the
// node's address and port, with the node's hostname and name files, no
// address of its own and no embedded DNS; a host-mode port is the task's own,
// and a routing-mesh port, which has nothing to forward to, is refused.
func TestServiceOnHostNetwork(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "hostnet")
	n.MustDocker("service", "create", "-d", "--name", "web", "--network", "host", "--publish", "mode=host,target=8080",
		"--stop-grace-period", "1s", "busybox", "sh", "-c", "hostname > /tmp/name; exec httpd -f -p 8080 -h /tmp")
	waitRunning(t, n, "web", 1)
	testenv.WaitFor(t, 30*time.Second, "the task answering on the node's 127.0.0.1:8080", func() (bool, string) {
		resp, err := n.HTTPGet(context.Background(), "http://127.0.0.1:8080/name")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && string(body) == "hostnet\n", fmt.Sprintf("%d %q", resp.StatusCode, body)
	})

	hostID := strings.TrimSpace(n.MustDocker("network", "inspect", "--format", "{{.Id}}", "host"))
	if got := strings.TrimSpace(n.MustDocker("service", "inspect", "--format", "{{range .Spec.TaskTemplate.Networks}}{{.Target}}{{end}}", "web")); got != hostID {
		t.Fatalf("service's network %q, want the host network's ID %q", got, hostID)
	}
	if got := strings.TrimSpace(n.MustDocker("service", "ps", "--format", "{{.Ports}}", "web")); got != "*:8080->8080/tcp" {
		t.Fatalf("service ps ports %q, want the task's own port", got)
	}
	c := taskContainer(t, n, "web")
	if got := strings.TrimSpace(n.MustDocker("inspect", "--format", "{{.HostConfig.NetworkMode}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}}:{{$v.IPAddress}};{{end}}", c)); got != "host host:;" {
		t.Fatalf("task container's network mode and endpoints %q, want host without an address", got)
	}
	if got := strings.TrimSpace(n.MustDocker("network", "inspect", "--format", "{{range .Containers}}{{.Name}} [{{.IPv4Address}}]{{end}}", "host")); got != c+" []" {
		t.Fatalf("network inspect host lists %q, want the task container %s without an address", got, c)
	}
	if out := n.MustDocker("exec", c, "cat", "/etc/resolv.conf"); strings.Contains(out, "127.0.0.11") {
		t.Fatalf("a task on the host network asks the embedded DNS:\n%s", out)
	}
	if out, err := n.Docker("service", "create", "-d", "--network", "host", "-p", "8081:80", "busybox"); err == nil || !strings.Contains(out, "cannot publish port 80 through the routing mesh") {
		t.Fatalf("a routing-mesh port on the host network: %v\n%s", err, out)
	}
}
