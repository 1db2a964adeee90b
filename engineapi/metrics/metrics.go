// Package metrics is shoal's Prometheus registry: what the daemon's parts tell
// as it happens (commit and API latencies, placements, heartbeats, pulls, layers
// served to peers), and what is read from the swarm when metrics are scraped
// (Raft indexes, tasks by state, nodes by status). The parts know it only as the
// small interfaces they declare (cluster.Metrics, engineapi.RequestObserver,
// image.Metrics); main builds one Registry and hands it to each.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shoal-project/shoal/cluster"
)

// namespace prefixes every metric of shoal's own.
const namespace = "shoal"

// Registry holds the daemon's metrics and serves them.
type Registry struct {
	reg        *prometheus.Registry
	commit     prometheus.Histogram
	placement  prometheus.Histogram
	heartbeats *prometheus.CounterVec
	requests   *prometheus.HistogramVec
	pulls      *prometheus.CounterVec
	layers     *prometheus.CounterVec
	layerBytes prometheus.Counter
}

// New makes the registry, with the Go runtime's and the process's metrics and
// shoal's version as shoal_build_info.
func New(version string) *Registry {
	r := &Registry{reg: prometheus.NewRegistry()}
	r.commit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "raft", Name: "commit_seconds",
		Help:    "Time from a write's proposal by the leader until the leader applied it.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms .. 4 s
	})
	r.placement = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "scheduler", Name: "placement_seconds",
		Help:    "Time a task waited from its creation until the scheduler's assignment was committed.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1 ms .. 4 min
	})
	r.heartbeats = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "dispatcher", Name: "heartbeats_total",
		Help: "Heartbeats received from nodes in their sessions, by node ID.",
	}, []string{"node"})
	r.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "api", Name: "request_duration_seconds",
		Help:    "Engine API requests by route pattern, method and status; streams last as long as their clients.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10), // 0.5 ms .. 2 min
	}, []string{"route", "method", "status"})
	r.pulls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "image", Name: "pulls_total",
		Help: "Image pulls by source (registry, peer) and result (success, failure).",
	}, []string{"source", "result"})
	r.layers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "image", Name: "peer_layers_served_total",
		Help: "Layers sent to peer nodes, by result (success, failure: cut short).",
	}, []string{"result"})
	r.layerBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "image", Name: "peer_layer_bytes_served_total",
		Help: "Bytes of the layers sent whole to peer nodes.",
	})
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info", Help: "Always 1; the version is a label.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	info.Set(1)
	r.reg.MustRegister(r.commit, r.placement, r.heartbeats, r.requests, r.pulls, r.layers, r.layerBytes, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// WatchSwarm adds the metrics read from the swarm at each scrape, through stats
// (a Cluster's Stats).
func (r *Registry) WatchSwarm(stats func() cluster.Stats) {
	r.reg.MustRegister(swarmCollector{stats: stats})
}

// WatchMesh adds the data plane's bytes and handshakes per peer node, read at
// each scrape through traffic (a Cluster's MeshTraffic).
func (r *Registry) WatchMesh(traffic func() []cluster.PeerTraffic) {
	r.reg.MustRegister(meshCollector{traffic: traffic})
}

// Handler serves the metrics in Prometheus's text format (/metrics).
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg})
}

// Gatherer is the registry for tests and other exporters.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Committed observes a Raft commit (store.Metrics).
func (r *Registry) Committed(elapsed time.Duration) { r.commit.Observe(elapsed.Seconds()) }

// Placed observes a task's wait for a node (scheduler.Metrics).
func (r *Registry) Placed(wait time.Duration) { r.placement.Observe(wait.Seconds()) }

// Heartbeat counts a node's heartbeat (dispatcher.Metrics).
func (r *Registry) Heartbeat(nodeID string) { r.heartbeats.WithLabelValues(nodeID).Inc() }

// ObserveRequest observes an API request (engineapi.RequestObserver).
func (r *Registry) ObserveRequest(route, method string, status int, elapsed time.Duration) {
	r.requests.WithLabelValues(route, method, strconv.Itoa(status)).Observe(elapsed.Seconds())
}

// Pulled counts a pull (image.Metrics).
func (r *Registry) Pulled(source string, err error) {
	r.pulls.WithLabelValues(source, result(err)).Inc()
}

// LayerServed counts a layer sent to a peer (image.Metrics).
func (r *Registry) LayerServed(bytes int64, err error) {
	r.layers.WithLabelValues(result(err)).Inc()
	if err == nil {
		r.layerBytes.Add(float64(bytes))
	}
}

func result(err error) string {
	if err != nil {
		return "failure"
	}
	return "success"
}
