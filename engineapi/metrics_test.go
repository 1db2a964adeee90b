package engineapi

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// requestLog records what the API tells its RequestObserver.
type requestLog struct {
	mu   sync.Mutex
	seen []string // "METHOD route status"
}

func (r *requestLog) ObserveRequest(route, method string, status int, elapsed time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if elapsed < 0 {
		route = "negative:" + route
	}
	r.seen = append(r.seen, method+" "+route+" "+http.StatusText(status))
}

// Requests are told by route pattern, not path, so that one route is one
// series, with its status (503 here: the node is in no swarm); an unknown
// path is told too.
func TestRequestsObserved(t *testing.T) {
	obs := &requestLog{}
	api := startSystemAPI(t, Config{Swarm: newSwarmFake("n1", "host1"), Requests: obs})
	for _, path := range []string{"/v1.51/_ping", "/nodes/abc", "/nodes/def", "/no/such/thing"} {
		api.do(t, http.MethodGet, path, "", "")
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	want := []string{"GET /_ping OK", "GET /nodes/:id Service Unavailable", "GET /nodes/:id Service Unavailable", "GET unmatched Not Found"}
	if len(obs.seen) != len(want) {
		t.Fatalf("observed %q, want %q", obs.seen, want)
	}
	for i := range want {
		if obs.seen[i] != want[i] {
			t.Fatalf("observed %q, want %q", obs.seen, want)
		}
	}
}
