package torture

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
	"github.com/shoal-project/shoal/testenv"
)

// convergeBound is how long a node may take, after a restart, to run every
// service's replicas from its current spec with nothing stuck or left over.
const convergeBound = 60 * time.Second

// newSwarm starts a lone node, makes it a one-node swarm and loads busybox.
func newSwarm(t *testing.T, name string) (*testenv.Node, *client, string) {
	t.Helper()
	n := testenv.StartNode(t, name, testenv.Options{})
	c := newClient(n.Machine)
	ctx := context.Background()
	if err := c.initSwarm(ctx); err != nil {
		t.Fatalf("swarm init: %v", err)
	}
	archive := imagetest.BusyboxArchive(t, t.TempDir(), "busybox:latest")
	if err := c.loadImage(ctx, archive); err != nil {
		t.Fatalf("load busybox: %v", err)
	}
	return n, c, archive
}

// seed is $SHOAL_TORTURE_SEED, or a new one; the test prints it.
func seed(t *testing.T) uint64 {
	t.Helper()
	s := uint64(time.Now().UnixNano())
	if v := os.Getenv("SHOAL_TORTURE_SEED"); v != "" {
		var err error
		if s, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("SHOAL_TORTURE_SEED=%q: %v", v, err)
		}
	}
	t.Logf("seed %d (replay with SHOAL_TORTURE_SEED=%d)", s, s)
	return s
}

func newRand(s uint64) *rand.Rand { return rand.New(rand.NewPCG(s, s^0x5eed)) }

// failIf fails the test with each violation.
func failIf(t *testing.T, what string, violations []string) {
	t.Helper()
	for _, v := range violations {
		t.Errorf("%s: %s", what, v)
	}
}
