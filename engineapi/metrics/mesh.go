package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-project/shoal/cluster"
)

var (
	descMeshReceived = prometheus.NewDesc("shoal_mesh_peer_receive_bytes_total",
		"Bytes this node's WireGuard interface received from another node (since the interface opened).", []string{"peer"}, nil)
	descMeshSent = prometheus.NewDesc("shoal_mesh_peer_transmit_bytes_total",
		"Bytes this node's WireGuard interface sent to another node (since the interface opened).", []string{"peer"}, nil)
	descMeshHandshake = prometheus.NewDesc("shoal_mesh_peer_last_handshake_seconds",
		"When the last WireGuard handshake with another node completed (Unix time; 0 for none yet).", []string{"peer"}, nil)
)

// meshCollector reads the data plane's counters per peer node when metrics are
// scraped.
type meshCollector struct {
	traffic func() []cluster.PeerTraffic
}

// Describe sends the descriptions of every metric Collect may send.
func (c meshCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMeshReceived, descMeshSent, descMeshHandshake} {
		ch <- d
	}
}

// Collect reads the counters once and sends them.
func (c meshCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.traffic() {
		ch <- prometheus.MustNewConstMetric(descMeshReceived, prometheus.CounterValue, float64(p.ReceiveBytes), p.NodeID)
		ch <- prometheus.MustNewConstMetric(descMeshSent, prometheus.CounterValue, float64(p.TransmitBytes), p.NodeID)
		handshake := 0.0
		if !p.LastHandshake.IsZero() {
			handshake = float64(p.LastHandshake.Unix())
		}
		ch <- prometheus.MustNewConstMetric(descMeshHandshake, prometheus.GaugeValue, handshake, p.NodeID)
	}
}
