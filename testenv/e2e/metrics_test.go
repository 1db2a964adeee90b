package e2e

import (
	"context"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
	"github.com/shoal-project/shoal/testenv"
)

// A daemon with --metrics-addr on the loopback serves Prometheus's text format
// there; after swarm init and a service, the Raft, scheduler, task, node,
// heartbeat and API metrics say what the swarm did.
func TestMetricsScrape(t *testing.T) {
	t.Parallel()
	n := testenv.StartNode(t, "metrics", testenv.Options{Args: []string{"--metrics-addr", "127.0.0.1:9323"}})
	n.MustDocker("swarm", "init", "--advertise-addr", "127.0.0.1")
	archive := imagetest.BusyboxArchive(t, t.TempDir(), "busybox:latest")
	n.MustDocker("load", "-i", archive)
	n.MustDocker("service", "create", "--detach", "--name", "web", "--replicas", "2", "busybox", "sleep", "3600")
	waitRunning(t, n, "web", 2)

	var f map[string]*dto.MetricFamily
	testenv.WaitFor(t, 30*time.Second, "a heartbeat counted and both tasks running in the metrics", func() (bool, string) {
		var text string
		f, text = scrapeMetrics(t, n, "http://127.0.0.1:9323/metrics")
		return sum(f, "shoal_dispatcher_heartbeats_total", nil) > 0 && sum(f, "shoal_tasks", map[string]string{"state": "running"}) == 2, text
	})
	for _, c := range []struct {
		name   string
		labels map[string]string
		ok     func(float64) bool
		want   string
	}{
		{"shoal_swarm_manager", nil, eq(1), "1"},
		{"shoal_raft_leader", nil, eq(1), "1"},
		{"shoal_raft_index", map[string]string{"kind": "applied"}, gt(0), "> 0"},
		{"shoal_raft_log_entries", nil, gt(0), "> 0"},
		{"shoal_raft_db_bytes", nil, gt(0), "> 0"},
		{"shoal_raft_commit_seconds", nil, gt(0), "commits observed"},
		{"shoal_scheduler_pending_tasks", nil, eq(0), "0"},
		{"shoal_scheduler_placement_seconds", nil, func(v float64) bool { return v >= 2 }, "two placements at least"},
		{"shoal_nodes", map[string]string{"state": "ready"}, eq(1), "1"},
		{"shoal_nodes", map[string]string{"state": "down"}, eq(0), "0"},
		{"shoal_tasks", map[string]string{"state": "failed"}, eq(0), "0"},
		{"shoal_api_request_duration_seconds", map[string]string{"route": "/services/create", "method": "POST", "status": "201"}, eq(1), "one service created"},
		{"shoal_api_request_duration_seconds", map[string]string{"route": "/swarm/init", "method": "POST", "status": "200"}, eq(1), "one swarm init"},
		{"shoal_build_info", nil, eq(1), "1"},
	} {
		if got := sum(f, c.name, c.labels); !c.ok(got) {
			t.Errorf("%s%v = %v, want %s", c.name, c.labels, got, c.want)
		}
	}
	// The histograms' sums are seconds: a commit on one node takes far less
	// than a second, and a task waits less than the test has run.
	if mean := histogramSum(f, "shoal_raft_commit_seconds") / sum(f, "shoal_raft_commit_seconds", nil); mean <= 0 || mean > 1 {
		t.Errorf("mean commit latency %v s", mean)
	}
}

// Metrics off the loopback take the API's mutual TLS: a client with a
// certificate the CA signed reads them; one without is refused, as is plain HTTP.
func TestMetricsOverMutualTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, caKey := newTestCA(t, "shoal test CA")
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	issueTestCert(t, dir, "server", ca, caKey, x509.ExtKeyUsageServerAuth)
	issueTestCert(t, dir, "client", ca, caKey, x509.ExtKeyUsageClientAuth)
	n := testenv.StartNode(t, "metricstls", testenv.Options{Args: []string{
		"--metrics-addr", "0.0.0.0:9323", "--tlsverify", "--tlscacert", filepath.Join(dir, "ca.pem"),
		"--tlscert", filepath.Join(dir, "server-cert.pem"), "--tlskey", filepath.Join(dir, "server-key.pem"),
	}})
	f, _ := scrapeMetrics(t, n, "https://127.0.0.1:9323/metrics", "--cacert", filepath.Join(dir, "ca.pem"),
		"--cert", filepath.Join(dir, "client-cert.pem"), "--key", filepath.Join(dir, "client-key.pem"))
	if got := sum(f, "shoal_swarm_manager", nil); got != 0 {
		t.Errorf("shoal_swarm_manager = %v outside a swarm", got)
	}
	for _, args := range [][]string{
		{"--cacert", filepath.Join(dir, "ca.pem"), "https://127.0.0.1:9323/metrics"},
		{"http://127.0.0.1:9323/metrics"},
	} {
		if out, err := curl(n, args...); err == nil {
			t.Errorf("curl %v was served:\n%s", args, out)
		}
	}
}

// curl runs curl in the node's network namespace.
func curl(n *testenv.Node, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := n.Command(ctx, "curl", append([]string{"-sSf", "--max-time", "10"}, args...)...).CombinedOutput()
	return string(out), err
}

// scrapeMetrics reads url from inside the node's namespace and parses
// Prometheus's text format.
func scrapeMetrics(t *testing.T, n *testenv.Node, url string, curlArgs ...string) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	out, err := curl(n, append(curlArgs, url)...)
	if err != nil {
		t.Fatalf("scrape %s: %v\n%s", url, err, out)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	f, err := parser.TextToMetricFamilies(strings.NewReader(out))
	if err != nil {
		t.Fatalf("parse the scrape of %s: %v\n%s", url, err, out)
	}
	return f, out
}

// sum adds the values of a family's series whose labels include want (a
// histogram's sample counts); a family not there sums to -1.
func sum(f map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	fam := f[name]
	if fam == nil {
		return -1
	}
	var total float64
	for _, m := range fam.GetMetric() {
		if !hasLabels(m, want) {
			continue
		}
		switch {
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	return total
}

// histogramSum is the sum of a histogram's samples, over its series.
func histogramSum(f map[string]*dto.MetricFamily, name string) float64 {
	var total float64
	if fam := f[name]; fam != nil {
		for _, m := range fam.GetMetric() {
			total += m.GetHistogram().GetSampleSum()
		}
	}
	return total
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
func gt(min float64) func(float64) bool  { return func(v float64) bool { return v > min } }
