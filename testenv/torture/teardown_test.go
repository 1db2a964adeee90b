package torture

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/shoal-project/shoal/testenv"
)

// teardown removes every service, waits until their containers are gone and
// checks that nothing of them is left on the host, then stops the daemon and
// checks again: no runtime state, container cgroup or mount remains. What
// stays by design (the data root, the bridge and its nftables table in the
// node's namespace, the empty cgroup parent) is not checked here.
func teardown(t *testing.T, n *testenv.Node, c *client) {
	t.Helper()
	ctx := context.Background()
	list, err := c.services(ctx)
	if err != nil {
		t.Fatalf("list services: %v", err)
	}
	for _, s := range list {
		if err := c.removeService(ctx, s.ID); err != nil {
			t.Fatalf("remove service %s: %v", s.Spec.Name, err)
		}
	}
	// Containers go first, then their network: wait for both.
	testenv.WaitFor(t, convergeBound, "every task container and what it held removed", func() (bool, string) {
		s, err := takeSnapshot(ctx, c)
		if err != nil {
			return false, err.Error()
		}
		left := leftovers(ctx, n.Machine, snapshot{})
		return len(s.containers) == 0 && len(s.tasks) == 0 && len(left) == 0,
			fmt.Sprintf("%d containers, %d tasks, left over: %v", len(s.containers), len(s.tasks), left)
	})
	n.Stop()
	var left []string
	for _, id := range runtimeStateDirs(n.Machine) {
		left = append(left, "runtime state dir "+id)
	}
	left = append(left, containerCgroups(n.Machine)...)
	points, _ := mountsUnder(n.Dir)
	left = append(left, points...)
	if netns, _ := filepath.Glob(filepath.Join(n.ExecRoot, "netns", "*")); len(netns) > 0 {
		left = append(left, netns...)
	}
	failIf(t, "with the daemon stopped, left over", left)
}
