package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/testenv"
)

// nodeKey reads the node's TLS private key file as it is on disk.
func nodeKey(t *testing.T, n *testenv.Node) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(n.DataRoot, "swarm", "certificates", "swarm-node.key"))
	if err != nil {
		t.Fatalf("node %s: %v", n.Name, err)
	}
	return data
}

func sealed(key []byte) bool {
	return bytes.HasPrefix(key, []byte("-----BEGIN SHOAL SEALED PRIVATE KEY-----"))
}

// Autolock across managers: the unlock key set on the leader reaches the
// followers, which seal their own keys with it; a restarted follower is locked
// and opens with the swarm's key, a rotated key replaces the old one on every
// manager, a worker never locks, and a worker promoted later seals itself.
func TestMultiNodeAutolock(t *testing.T) {
	t.Parallel()
	nodes := multiSwarm(t, 3, 1)
	n1, n2, n3, w := nodes[0], nodes[1], nodes[2], nodes[3]
	key := unlockKeyIn(t, n1.MustDocker("swarm", "update", "--autolock=true"))
	for _, n := range []*testenv.Node{n2, n3} {
		testenv.WaitFor(t, 30*time.Second, n.Name+" sealed its keys", func() (bool, string) {
			_, kekErr := os.Stat(filepath.Join(n.DataRoot, "swarm", "raft", "kek"))
			return sealed(nodeKey(t, n)) && os.IsNotExist(kekErr), string(nodeKey(t, n)[:40])
		})
	}
	if got := strings.TrimSpace(n2.MustDocker("swarm", "unlock-key", "-q")); got != key {
		t.Fatalf("a follower's unlock-key = %q, want the leader's %q", got, key)
	}

	w.Restart()
	if got := localNodeState(t, w); got != "active" {
		t.Fatalf("a restarted worker is %q, want active: workers never lock", got)
	}
	if sealed(nodeKey(t, w)) {
		t.Error("the worker's key is sealed")
	}

	n2.Restart()
	if got := localNodeState(t, n2); got != "locked" {
		t.Fatalf("a restarted follower is %q, want locked", got)
	}
	if out, err := unlock(n2, key); err != nil {
		t.Fatalf("unlock the follower: %v\n%s", err, out)
	}
	waitNodes(t, n2, 4, "Ready")

	before := nodeKey(t, n3)
	rotated := strings.TrimSpace(n1.MustDocker("swarm", "unlock-key", "--rotate", "-q"))
	if rotated == key || !unlockKeyRE.MatchString(rotated) {
		t.Fatalf("rotated key %q (old %q)", rotated, key)
	}
	testenv.WaitFor(t, 30*time.Second, "node3 re-sealed its key under the rotated key", func() (bool, string) {
		return !bytes.Equal(nodeKey(t, n3), before), ""
	})
	n3.Restart()
	if out, err := unlock(n3, key); err == nil || !strings.Contains(out, wrongKeyMsg) {
		t.Fatalf("unlock a follower with the rotated-out key: err %v, output %q", err, out)
	}
	if out, err := unlock(n3, rotated); err != nil {
		t.Fatalf("unlock a follower with the rotated key: %v\n%s", err, out)
	}
	n3.MustDocker("service", "create", "-d", "--name", "after", "--replicas", "2", "busybox", "sleep", "1000")
	waitRunningOn(t, n3, "after", 2, 90*time.Second, nil)

	// A worker promoted into the autolocked swarm seals itself too.
	n1.MustDocker("node", "promote", w.Name)
	testenv.WaitFor(t, 60*time.Second, "the promoted worker sealed its keys", func() (bool, string) {
		_, kekErr := os.Stat(filepath.Join(w.DataRoot, "swarm", "raft", "kek"))
		_, dekErr := os.Stat(filepath.Join(w.DataRoot, "swarm", "raft", "dek"))
		return sealed(nodeKey(t, w)) && os.IsNotExist(kekErr) && dekErr == nil, string(nodeKey(t, w)[:40])
	})
	w.Restart()
	if got := localNodeState(t, w); got != "locked" {
		t.Fatalf("a restarted promoted manager is %q, want locked", got)
	}
	if out, err := unlock(w, rotated); err != nil {
		t.Fatalf("unlock the promoted manager: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(w.MustDocker("service", "inspect", "--format", "{{.Spec.Name}}", "after")); got != "after" {
		t.Fatalf("the unlocked promoted manager reads service %q", got)
	}
}
