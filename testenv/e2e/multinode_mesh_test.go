package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
	"github.com/shoal-project/shoal/testenv"
)

// Every node of a swarm gets a WireGuard interface on the swarm's mesh (the
// userspace device here: this kernel has no WireGuard) with an address of its
// own, and every node reaches every other across it; a node that leaves the
// swarm removes its interface.
func TestMultiNodeMesh(t *testing.T) {
	t.Parallel()
	nodes := multiSwarm(t, 1, 2)
	addrs := map[string]string{}
	testenv.WaitFor(t, 30*time.Second, "a mesh interface with an address on every node", func() (bool, string) {
		var missing []string
		for _, n := range nodes {
			if a := meshAddr(t, n); a != "" {
				addrs[n.Name] = a
			} else {
				missing = append(missing, n.Name)
			}
		}
		return len(missing) == 0, "no mesh address on " + strings.Join(missing, ", ")
	})
	seen := map[string]bool{}
	for _, a := range addrs {
		if !strings.HasPrefix(a, "10.254.") || seen[a] {
			t.Fatalf("mesh addresses %v: want one each in 10.254.0.0/16", addrs)
		}
		seen[a] = true
	}
	for _, from := range nodes {
		for _, to := range nodes {
			if from == to {
				continue
			}
			testenv.WaitFor(t, 30*time.Second, from.Name+" pinging "+to.Name+" over the mesh", func() (bool, string) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				out, err := from.Command(ctx, "busybox", "ping", "-c", "1", "-W", "1", addrs[to.Name]).CombinedOutput()
				return err == nil, string(out)
			})
		}
	}

	w := nodes[2]
	w.MustDocker("swarm", "leave")
	testenv.WaitFor(t, 30*time.Second, "the mesh interface gone from the node that left", func() (bool, string) {
		a := meshAddr(t, w)
		return a == "", a
	})
}

// meshAddr is the IPv4 address of the node's mesh interface (shoal-*), or "".
func meshAddr(t *testing.T, n *testenv.Node) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := n.Command(ctx, "ip", "-4", "-o", "addr", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("%s: ip addr: %v\n%s", n.Name, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && strings.HasPrefix(f[1], "shoal-") && f[2] == "inet" {
			addr, _, _ := strings.Cut(f[3], "/")
			return addr
		}
	}
	return ""
}

// Every node replaces its mesh key on schedule (here every few seconds) while
// a task on one node sends requests without pause to a service on the other:
// every request is answered, across several rotations of both nodes' keys.
func TestMultiNodeMeshKeyRotation(t *testing.T) {
	t.Parallel()
	lab := testenv.NewLab(t, testenv.LabOptions{Nodes: 2, Args: []string{"--mesh-key-rotation", "4s", "--metrics-addr", "127.0.0.1:9323"}})
	n1, n2 := lab.Nodes[0], lab.Nodes[1]
	n1.MustDocker("swarm", "init", "--advertise-addr", n1.Addr())
	archive := imagetest.BusyboxArchive(t, t.TempDir(), "busybox:latest")
	n1.MustDocker("load", "-i", archive)
	n2.MustDocker("swarm", "join", "--token", strings.TrimSpace(n1.MustDocker("swarm", "join-token", "-q", "worker")), n1.Addr()+":2377")
	waitNodes(t, n1, 2, "Ready")
	n1.MustDocker("network", "create", "-d", "overlay", "back")
	n1.MustDocker("service", "create", "-d", "--name", "srv", "--network", "back", "--constraint", "node.hostname=="+n2.Name,
		"--stop-grace-period", "1s", "busybox", "sh", "-c", "hostname > /tmp/name; exec httpd -f -p 80 -h /tmp")
	n1.MustDocker("service", "create", "-d", "--name", "cli", "--network", "back", "--constraint", "node.hostname=="+n1.Name,
		"--stop-grace-period", "1s", "busybox", "sleep", "100000")
	waitRunningOn(t, n1, "srv", 1, 90*time.Second, nil)
	waitRunningOn(t, n1, "cli", 1, 60*time.Second, nil)
	cli := strings.TrimSpace(n1.MustDocker("ps", "-q", "--filter", "name=cli."))
	testenv.WaitFor(t, 30*time.Second, "cli reaching srv", func() (bool, string) {
		out, err := try(n1, "exec", cli, "sh", "-c", `printf 'GET /name HTTP/1.0\r\n\r\n' | nc -w 2 srv 80 | tail -n 1`)
		return err == nil && len(strings.TrimSpace(out)) == 12, out
	})
	rotations := func(n *testenv.Node) int { return strings.Count(n.Log(), "mesh: key rotated") }
	before1, before2 := rotations(n1), rotations(n2)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := n1.DockerContext(ctx, "exec", cli, "sh", "-c",
		`ok=0; n=0; end=$(( $(date +%s) + 14 )); while [ $(date +%s) -lt $end ]; do
			if printf 'GET /name HTTP/1.0\r\n\r\n' | nc -w 5 srv 80 | tail -n 1 | grep -q .; then ok=$((ok+1)); else echo "failed request $n"; fi
			n=$((n+1)); done; echo "$ok/$n"`)
	if err != nil {
		t.Fatalf("request loop: %v\n%s", err, out)
	}
	last := strings.Fields(out)
	ok, total, _ := strings.Cut(last[len(last)-1], "/")
	if strings.Contains(out, "failed request") || ok != total || total == "0" {
		t.Fatalf("requests during key rotations: %s", out)
	}
	if r1, r2 := rotations(n1)-before1, rotations(n2)-before2; r1 < 2 || r2 < 2 {
		t.Fatalf("rotations during the loop: node1 %d, node2 %d; want two each at least (answered %s)", r1, r2, last[len(last)-1])
	}
	t.Logf("%s requests answered across the rotations", last[len(last)-1])

	// The data plane's bytes per peer node are in node1's metrics.
	node2ID := strings.TrimSpace(n2.MustDocker("info", "--format", "{{.Swarm.NodeID}}"))
	metrics, err := httpGet(n1, "http://127.0.0.1:9323/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"shoal_mesh_peer_receive_bytes_total", "shoal_mesh_peer_transmit_bytes_total"} {
		prefix := name + `{peer="` + node2ID + `"} `
		i := strings.Index(metrics, prefix)
		if i < 0 {
			t.Fatalf("no %s for node2 in node1's metrics", name)
		}
		value := strings.Fields(metrics[i+len(prefix):])[0]
		if value == "0" {
			t.Errorf("%s for node2 = 0 after %s requests", name, total)
		}
	}
}

// The swarm's data path port (swarm init --data-path-port) is where every
// node's WireGuard listens: the mesh carries traffic on it and not on 51820.
func TestMultiNodeDataPathPort(t *testing.T) {
	t.Parallel()
	lab := testenv.NewLab(t, testenv.LabOptions{Nodes: 2})
	n1, n2 := lab.Nodes[0], lab.Nodes[1]
	n1.MustDocker("swarm", "init", "--advertise-addr", n1.Addr(), "--data-path-port", "4790")
	n2.MustDocker("swarm", "join", "--token", strings.TrimSpace(n1.MustDocker("swarm", "join-token", "-q", "worker")), n1.Addr()+":2377")
	waitNodes(t, n1, 2, "Ready")
	if out := strings.TrimSpace(n1.MustDocker("info", "--format", "{{.Swarm.Cluster.DataPathPort}}")); out != "4790" {
		t.Fatalf("docker info DataPathPort = %q", out)
	}
	var to string
	testenv.WaitFor(t, 30*time.Second, "mesh addresses on both nodes", func() (bool, string) {
		to = meshAddr(t, n2)
		return meshAddr(t, n1) != "" && to != "", to
	})
	capture, err := lab.Lab.Capture()
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "node1 pinging node2 over the mesh", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := n1.Command(ctx, "busybox", "ping", "-c", "1", "-W", "1", to).CombinedOutput()
		return err == nil, string(out)
	})
	frames, err := capture.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if ports := testenv.UDPPorts(frames); ports[4790] == 0 || ports[51820] != 0 {
		t.Fatalf("UDP ports on the wire %v: want WireGuard on 4790 only", ports)
	}
}
