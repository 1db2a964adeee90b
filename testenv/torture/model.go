package torture

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/swarm"
)

// ledger is what the daemon acknowledged, and what it may have done without
// saying so (a request cut off by the crash). Each service is driven by one
// client at a time, so its entries change in request order.
type ledger struct {
	mu       sync.Mutex
	services map[string]*serviceRecord // by name
}

// serviceRecord is one service as the clients know it.
type serviceRecord struct {
	name string
	id   string // "" until a create was acknowledged or found
	// exists: the create was acknowledged and no removal was; maybeExists: a
	// create or removal got no answer, so either is possible.
	exists, maybeExists bool
	removed             bool // a removal was acknowledged
	// version is the index the daemon reported after the last acknowledged
	// change (0: unknown, the change came from the CLI or a create).
	version uint64
	// replicas and env are what the last acknowledged change set; candidates
	// adds what changes without an answer may have set.
	replicas   uint64
	env        string
	candidates []specCandidate
}

// specCandidate is one outcome a service's spec may have.
type specCandidate struct {
	replicas uint64
	env      string
}

func newLedger() *ledger { return &ledger{services: map[string]*serviceRecord{}} }

func (l *ledger) get(name string) *serviceRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.services[name]
}

func (l *ledger) put(r *serviceRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.services[r.name] = r
}

// all returns a copy of every record.
func (l *ledger) all() []serviceRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]serviceRecord, 0, len(l.services))
	for _, r := range l.services {
		c := *r
		c.candidates = slices.Clone(r.candidates)
		out = append(out, c)
	}
	return out
}

// settle compares a record with what the restarted daemon holds (nil: no such
// service), reports what contradicts an acknowledgement, and makes the record
// certain again from what was found.
func (l *ledger) settle(name string, found *swarm.Service) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.services[name]
	var bad []string
	switch {
	case found == nil && r.exists:
		bad = append(bad, fmt.Sprintf("service %s (%s): acknowledged, but gone", name, r.id))
	case found != nil && r.removed:
		bad = append(bad, fmt.Sprintf("service %s (%s): removal acknowledged, but it is there", name, r.id))
	case found != nil && !r.exists && !r.maybeExists:
		bad = append(bad, fmt.Sprintf("service %s: never acknowledged, but it is there", name))
	}
	if found == nil {
		if !r.exists {
			delete(l.services, name)
		}
		return bad
	}
	if r.id != "" && found.ID != r.id {
		bad = append(bad, fmt.Sprintf("service %s: ID %s, acknowledged as %s", name, found.ID, r.id))
	}
	if found.Version.Index < r.version {
		bad = append(bad, fmt.Sprintf("service %s: version %d, older than the acknowledged %d", name, found.Version.Index, r.version))
	}
	got := specCandidate{replicas: replicasOf(found.Spec), env: envOf(found.Spec)}
	want := append([]specCandidate{{r.replicas, r.env}}, r.candidates...)
	if r.exists && !slices.Contains(want, got) {
		bad = append(bad, fmt.Sprintf("service %s: replicas %d env %q, acknowledged %d %q (or, unacknowledged, %v)",
			name, got.replicas, got.env, r.replicas, r.env, r.candidates))
	}
	r.id, r.exists, r.maybeExists, r.removed = found.ID, true, false, false
	r.version = found.Version.Index
	r.replicas, r.env, r.candidates = got.replicas, got.env, nil
	return bad
}

func replicasOf(spec swarm.ServiceSpec) uint64 {
	if spec.Mode.Replicated == nil || spec.Mode.Replicated.Replicas == nil {
		return 1
	}
	return *spec.Mode.Replicated.Replicas
}

func envOf(spec swarm.ServiceSpec) string {
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil && len(cs.Env) > 0 {
		return cs.Env[0]
	}
	return ""
}

func sortByName(rs []*serviceRecord) {
	slices.SortFunc(rs, func(a, b *serviceRecord) int { return strings.Compare(a.name, b.name) })
}
