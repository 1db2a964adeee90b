package metrics

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shoal-project/shoal/cluster"
	"github.com/shoal-project/shoal/cluster/store"
)

// scrape serves the registry over HTTP, as Prometheus reads it, and parses the
// text format.
func scrape(t *testing.T, r *Registry) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the scrape: %v", err)
	}
	return families
}

// value is the value of the family's series whose labels include want.
func value(t *testing.T, families map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	f := families[name]
	if f == nil {
		t.Fatalf("no %s in the scrape", name)
	}
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if !match {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no %s%v in the scrape", name, want)
	return 0
}

// What the parts tell and what the swarm's state says both reach a scrape.
func TestRegistryScrape(t *testing.T) {
	r := New("1.2.3")
	reads := 0
	r.WatchSwarm(func() cluster.Stats {
		reads++
		return cluster.Stats{
			Manager:      true,
			Raft:         store.RaftStats{Leader: true, LastIndex: 42, CommitIndex: 41, AppliedIndex: 40, LogEntries: 30, DBBytes: 65536},
			Tasks:        map[swarm.TaskState]int{swarm.TaskStateRunning: 3, swarm.TaskStatePending: 1},
			PendingTasks: 1,
			Nodes:        map[swarm.NodeState]int{swarm.NodeStateReady: 2},
		}
	})
	r.WatchMesh(func() []cluster.PeerTraffic {
		return []cluster.PeerTraffic{{NodeID: "node2", ReceiveBytes: 1500, TransmitBytes: 900, LastHandshake: time.Unix(1700000000, 0)}, {NodeID: "node3"}}
	})
	r.Committed(3 * time.Millisecond)
	r.Committed(5 * time.Millisecond)
	r.Placed(time.Second)
	r.Heartbeat("node1")
	r.Heartbeat("node1")
	r.ObserveRequest("/nodes/:id", "GET", 404, time.Millisecond)
	r.Pulled("peer", nil)
	r.Pulled("registry", errors.New("no such image"))
	r.LayerServed(1000, nil)
	r.LayerServed(500, errors.New("peer went away"))

	f := scrape(t, r)
	if reads != 1 {
		t.Errorf("the swarm's state was read %d times in one scrape", reads)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"shoal_build_info", map[string]string{"version": "1.2.3"}, 1},
		{"shoal_swarm_manager", nil, 1},
		{"shoal_raft_leader", nil, 1},
		{"shoal_raft_index", map[string]string{"kind": "last"}, 42},
		{"shoal_raft_index", map[string]string{"kind": "commit"}, 41},
		{"shoal_raft_index", map[string]string{"kind": "applied"}, 40},
		{"shoal_raft_log_entries", nil, 30},
		{"shoal_raft_db_bytes", nil, 65536},
		{"shoal_raft_commit_seconds", nil, 2},
		{"shoal_tasks", map[string]string{"state": "running"}, 3},
		{"shoal_tasks", map[string]string{"state": "failed"}, 0},
		{"shoal_scheduler_pending_tasks", nil, 1},
		{"shoal_scheduler_placement_seconds", nil, 1},
		{"shoal_nodes", map[string]string{"state": "ready"}, 2},
		{"shoal_nodes", map[string]string{"state": "down"}, 0},
		{"shoal_dispatcher_heartbeats_total", map[string]string{"node": "node1"}, 2},
		{"shoal_api_request_duration_seconds", map[string]string{"route": "/nodes/:id", "method": "GET", "status": "404"}, 1},
		{"shoal_image_pulls_total", map[string]string{"source": "peer", "result": "success"}, 1},
		{"shoal_image_pulls_total", map[string]string{"source": "registry", "result": "failure"}, 1},
		{"shoal_image_peer_layers_served_total", map[string]string{"result": "failure"}, 1},
		{"shoal_image_peer_layer_bytes_served_total", nil, 1000},
		{"shoal_mesh_peer_receive_bytes_total", map[string]string{"peer": "node2"}, 1500},
		{"shoal_mesh_peer_transmit_bytes_total", map[string]string{"peer": "node2"}, 900},
		{"shoal_mesh_peer_last_handshake_seconds", map[string]string{"peer": "node2"}, 1700000000},
		{"shoal_mesh_peer_last_handshake_seconds", map[string]string{"peer": "node3"}, 0},
	} {
		if got := value(t, f, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if f["go_goroutines"] == nil || f["process_resident_memory_bytes"] == nil {
		t.Error("no Go runtime or process metrics")
	}
}

// A worker, or a node outside a swarm, reports that it is no manager and no
// Raft or swarm-wide figures, which would read as zeros on a dashboard.
func TestRegistryScrapeOfAWorker(t *testing.T) {
	r := New("1.2.3")
	r.WatchSwarm(func() cluster.Stats { return cluster.Stats{} })
	f := scrape(t, r)
	if got := value(t, f, "shoal_swarm_manager", nil); got != 0 {
		t.Errorf("shoal_swarm_manager = %v on a worker", got)
	}
	for _, name := range []string{"shoal_raft_leader", "shoal_raft_index", "shoal_tasks", "shoal_nodes"} {
		if f[name] != nil {
			t.Errorf("a worker reports %s", name)
		}
	}
}
