package torture

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
)

// clients is how many clients drive the daemon at once.
const clients = 3

// ciRounds is how many rounds run without $SHOAL_TORTURE_ROUNDS, as in `make
// test`: the issue's short form, about a minute and a half on a small machine.
const ciRounds = 20

// rounds is $SHOAL_TORTURE_ROUNDS, or def.
func rounds(t *testing.T, def int) int {
	t.Helper()
	v := os.Getenv("SHOAL_TORTURE_ROUNDS")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("SHOAL_TORTURE_ROUNDS=%q: want a positive count", v)
	}
	return n
}

// Clients create, update, scale and remove services and load images while the
// daemon is killed at a random moment and started again, round after round.
// After each round: every acknowledged service exists at least at its
// acknowledged version with its acknowledged spec, every acknowledged image is
// there, every service converges within the bound with no slot running two
// tasks and no container left created, and every container, cgroup, mount,
// veth and runtime state directory belongs to a live task. At the end, with
// every service removed and the daemon stopped, nothing of a container is left.
func TestTorture(t *testing.T) {
	n, c, _ := newSwarm(t, "torture")
	s := seed(t)
	rng := newRand(s)
	total := rounds(t, ciRounds)
	ctx := context.Background()
	l := newLedger()
	var figures counts

	var images []imageLoad
	for i := range 2 {
		tag := fmt.Sprintf("torture:%d", i)
		images = append(images, imageLoad{tag: tag, archive: imagetest.BusyboxArchive(t, t.TempDir(), tag)})
	}
	var mu sync.Mutex
	loaded := map[string]bool{}
	workers := make([]*worker, clients)
	for k := range workers {
		workers[k] = &worker{
			prefix: fmt.Sprintf("c%d-", k), m: n.Machine, c: c, l: l, n: &figures, images: images,
			loaded: func(tag string) { mu.Lock(); loaded[tag] = true; mu.Unlock() },
		}
	}

	start := time.Now()
	violations, ran := 0, 0
	for round := range total {
		ran++
		roundSeed := rng.Uint64()
		for k, w := range workers {
			w.rng = newRand(roundSeed + uint64(k) + 1)
		}
		// The crash comes once the clients have had that many answers, while
		// they wait for others and the daemon works on what it acknowledged.
		killAfter := 1 + rng.IntN(40)
		crash := figures.armCrash(killAfter)
		wctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); runClients(wctx, workers) }()
		<-crash
		n.Kill()
		stop()
		<-done
		n.Start()

		snap, bad := converge(ctx, c, n.Machine, convergeBound)
		found := map[string]*swarm.Service{}
		for i := range snap.services {
			found[snap.services[i].Spec.Name] = &snap.services[i]
		}
		for _, r := range l.all() {
			bad = append(bad, l.settle(r.name, found[r.name])...)
			delete(found, r.name)
		}
		for name := range found {
			bad = append(bad, "service nobody created: "+name)
		}
		mu.Lock()
		for tag := range loaded {
			if ok, err := c.imageExists(ctx, tag); !ok {
				bad = append(bad, fmt.Sprintf("image %s: load acknowledged, image gone (%v)", tag, err))
			}
		}
		mu.Unlock()
		t.Logf("round %d: killed after %d answers; %d services, %d tasks, %d containers; %d requests so far",
			round, killAfter, len(snap.services), len(snap.tasks), len(snap.containers), figures.requests.Load())
		violations += len(bad)
		failIf(t, fmt.Sprintf("round %d", round), bad)
		if t.Failed() {
			break
		}
	}
	t.Logf("torture: %d rounds, %d crashes, %d requests (%d acknowledged, %d refused, %d unanswered), %d violations, %s",
		ran, ran, figures.requests.Load(), figures.acknowledged.Load(), figures.refused.Load(), figures.unanswered.Load(),
		violations, time.Since(start).Round(time.Second))
	if t.Failed() {
		return
	}
	teardown(t, n, c)
}
