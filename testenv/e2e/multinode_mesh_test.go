package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

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
