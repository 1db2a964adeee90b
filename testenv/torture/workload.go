package torture

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/shoal-project/shoal/testenv"
)

// Per-client bounds, so that a round's load fits a small shared machine.
const (
	maxServicesPerClient = 3
	maxReplicas          = 3
)

// counts are a run's figures. When requests reach crashAt, crash is closed.
type counts struct {
	requests, acknowledged, refused, unanswered atomic.Int64

	crashAt   int64
	crash     chan struct{}
	crashOnce sync.Once
}

// armCrash makes crash close once n more requests have been answered.
func (n *counts) armCrash(more int) <-chan struct{} {
	n.crashAt = n.requests.Load() + int64(more)
	n.crash = make(chan struct{})
	n.crashOnce = sync.Once{}
	return n.crash
}

// answer counts a request's outcome and says whether the daemon may have
// applied it without acknowledging it (no answer, or a 5xx).
func (n *counts) answer(err error) (acked, maybe bool) {
	if n.requests.Add(1) == n.crashAt {
		n.crashOnce.Do(func() { close(n.crash) })
	}
	switch s := statusOf(err); {
	case err == nil:
		n.acknowledged.Add(1)
		return true, false
	case s == 0 || s >= http.StatusInternalServerError:
		n.unanswered.Add(1)
		return false, true
	default:
		n.refused.Add(1)
		return false, false
	}
}

// imageLoad is one image archive the clients load, by the tag it carries.
type imageLoad struct {
	tag, archive string
}

// worker is one client: it creates, updates, scales and removes its own
// services (names starting with its prefix), and loads images, at random.
type worker struct {
	prefix string
	rng    *rand.Rand
	m      *testenv.Machine
	c      *client
	l      *ledger
	n      *counts
	images []imageLoad
	// loaded receives the tags of acknowledged loads.
	loaded func(tag string)
	seq    int
}

// owned lists the client's services that are certain to exist.
func (w *worker) owned() []*serviceRecord {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	var out []*serviceRecord
	for _, r := range w.l.services {
		if r.exists && len(r.name) > len(w.prefix) && r.name[:len(w.prefix)] == w.prefix {
			out = append(out, r)
		}
	}
	// Map order is random; the seed must choose the same service each time.
	sortByName(out)
	return out
}

// run issues requests until ctx is done (the daemon is about to die).
func (w *worker) run(ctx context.Context) {
	for ctx.Err() == nil {
		own := w.owned()
		switch op := w.rng.IntN(10); {
		case op == 0 && len(w.images) > 0:
			w.load(ctx)
		case len(own) == 0 || op <= 3 && len(own) < maxServicesPerClient:
			w.create(ctx)
		case op <= 5:
			w.update(ctx, own[w.rng.IntN(len(own))], true)
		case op <= 7:
			w.update(ctx, own[w.rng.IntN(len(own))], false)
		default:
			w.remove(ctx, own[w.rng.IntN(len(own))])
		}
		pause := time.Duration(w.rng.IntN(100)) * time.Millisecond
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

func (w *worker) create(ctx context.Context) {
	w.seq++
	name := fmt.Sprintf("%s%d", w.prefix, w.seq)
	replicas := uint64(w.rng.IntN(maxReplicas + 1))
	r := &serviceRecord{name: name, maybeExists: true, replicas: replicas}
	w.l.put(r)
	id, err := w.c.createService(ctx, sleeperSpec(name, replicas, ""))
	acked, maybe := w.n.answer(err)
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	switch {
	case acked:
		r.id, r.exists, r.maybeExists = id, true, false
	case !maybe:
		delete(w.l.services, name)
	}
}

// update scales the service or (env) changes its environment, which replaces
// every task (a rolling update); through the API at a version, or with the
// docker CLI for a scale.
func (w *worker) update(ctx context.Context, r *serviceRecord, env bool) {
	replicas, newEnv := r.replicas, r.env
	if env {
		newEnv = "ROUND=" + strconv.Itoa(w.rng.IntN(1000))
	} else {
		replicas = uint64(w.rng.IntN(maxReplicas + 1))
	}
	var err error
	var version uint64
	if !env && w.rng.IntN(2) == 0 {
		err = cliError(w.m.DockerContext(ctx, "service", "scale", "-d", fmt.Sprintf("%s=%d", r.id, replicas)))
	} else {
		svc, gerr := w.c.service(ctx, r.id)
		if gerr != nil {
			w.n.answer(gerr)
			return
		}
		version = svc.Version.Index
		err = w.c.updateService(ctx, r.id, version, sleeperSpec(r.name, replicas, newEnv))
	}
	acked, maybe := w.n.answer(err)
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	switch {
	case acked:
		r.replicas, r.env, r.candidates = replicas, newEnv, nil
		if version > 0 {
			r.version = version + 1 // the update's own index is past the one it read
		}
	case maybe:
		r.candidates = append(r.candidates, specCandidate{replicas, newEnv})
	}
}

func (w *worker) remove(ctx context.Context, r *serviceRecord) {
	var err error
	if w.rng.IntN(2) == 0 {
		err = cliError(w.m.DockerContext(ctx, "service", "rm", r.id))
	} else {
		err = w.c.removeService(ctx, r.id)
	}
	acked, maybe := w.n.answer(err)
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	switch {
	case acked:
		r.exists, r.maybeExists, r.removed = false, false, true
	case maybe:
		r.exists, r.maybeExists = false, true
	}
}

func (w *worker) load(ctx context.Context) {
	img := w.images[w.rng.IntN(len(w.images))]
	if acked, _ := w.n.answer(w.c.loadImage(ctx, img.archive)); acked {
		w.loaded(img.tag)
	}
}

// cliError is how a docker CLI command ended: the daemon's refusal (as a 400),
// or no answer at all (the daemon died under it).
func cliError(out string, err error) error {
	if err == nil {
		return nil
	}
	if strings.Contains(out, "Error response from daemon") {
		return &apiError{Status: http.StatusBadRequest, Message: strings.TrimSpace(out)}
	}
	return err
}

// runClients runs the workers until ctx is done and they all returned.
func runClients(ctx context.Context, workers []*worker) {
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx)
		}()
	}
	wg.Wait()
}

// sleeperSpec is a service of busybox sleeping, stopped at once.
func sleeperSpec(name string, replicas uint64, env string) swarm.ServiceSpec {
	grace := time.Second
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name},
		Mode:        swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{
			Image: "busybox:latest", Args: []string{"sleep", "3600"},
			StopSignal: "SIGKILL", StopGracePeriod: &grace,
		}},
	}
	if env != "" {
		spec.TaskTemplate.ContainerSpec.Env = []string{env}
	}
	return spec
}
