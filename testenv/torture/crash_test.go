package torture

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

// A daemon killed while ten clients create services converges after its
// restart with no help: every acknowledged service runs its replica, no
// container is left `created` (a container created, but not started, when the
// daemon died used to wedge its task in `starting` for good), and nothing on
// the host belongs to no live task.
func TestCrashWhileCreatingServices(t *testing.T) {
	n, c, _ := newSwarm(t, "crashcreate")
	rng := newRand(seed(t))
	const clients, perClient, runs = 10, 5, 3
	ctx := context.Background()
	l := newLedger()
	for run := range runs {
		killAfter := int64(5 + rng.IntN(clients*perClient-10))
		var acked atomic.Int64
		crash := make(chan struct{}) // closed once killAfter creates were acknowledged
		var crashOnce sync.Once
		killed := make(chan struct{})
		var wg sync.WaitGroup
		for k := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perClient {
					name := fmt.Sprintf("r%dc%ds%d", run, k, i)
					r := &serviceRecord{name: name, replicas: 1, maybeExists: true}
					l.put(r)
					id, err := c.createService(ctx, sleeperSpec(name, 1, ""))
					if err == nil {
						r.id, r.exists, r.maybeExists = id, true, false
						if acked.Add(1) == killAfter {
							crashOnce.Do(func() { close(crash) })
						}
						continue
					}
					if s := statusOf(err); s != 0 && s < http.StatusInternalServerError {
						r.maybeExists = false // refused: not created
					}
					select {
					case <-killed:
						return
					default:
					}
				}
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-crash:
		case <-done: // every create was answered before the chosen moment
		}
		n.Kill()
		close(killed)
		<-done
		t.Logf("run %d: killed after %d acknowledged creates", run, killAfter)
		n.Start()
		s, bad := converge(ctx, c, n.Machine, convergeBound)
		failIf(t, fmt.Sprintf("run %d", run), bad)
		found := map[string]*swarm.Service{}
		for i := range s.services {
			found[s.services[i].Spec.Name] = &s.services[i]
		}
		for _, r := range l.all() {
			failIf(t, fmt.Sprintf("run %d", run), l.settle(r.name, found[r.name]))
		}
		if t.Failed() {
			return
		}
	}
}
