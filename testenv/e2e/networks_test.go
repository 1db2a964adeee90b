package e2e

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"
)

// docker network ls/inspect show a node's predefined networks as dockerd does,
// with the task containers on the bridge, and the changes shoal does not have are
// refused with clear errors.
func TestNetworks(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "nets")

	rows := lines(n.MustDocker("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}} {{len .ID}}"))
	if want := []string{"bridge bridge local 12", "host host local 12", "none null local 12"}; strings.Join(rows, "\n") != strings.Join(want, "\n") {
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
		{[]string{"network", "create", "-d", "overlay", "x"},
			"Error response from daemon: overlay networks are not available in this shoal version yet"},
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
