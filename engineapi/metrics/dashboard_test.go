package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/cluster"
)

// dashboard is the part of docs/grafana/shoal.json this test reads.
type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

var metricName = regexp.MustCompile(`\b(?:shoal|go|process)_[a-z_]+\b`)

// Every metric the Grafana dashboard queries is one the registry serves, so that
// renaming a metric without the dashboard fails here rather than on a screen.
func TestDashboardQueriesServedMetrics(t *testing.T) {
	data, err := os.ReadFile("../../docs/grafana/shoal.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("docs/grafana/shoal.json: %v", err)
	}
	r := New("test")
	r.WatchSwarm(func() cluster.Stats { return cluster.Stats{Manager: true} })
	// One of each, so that every labelled family has a series.
	r.Heartbeat("n1")
	r.ObserveRequest("/_ping", "GET", 200, time.Millisecond)
	r.Pulled("peer", nil)
	r.LayerServed(1, nil)
	served := scrape(t, r)
	queried := 0
	for _, p := range d.Panels {
		for _, target := range p.Targets {
			for _, name := range metricName.FindAllString(target.Expr, -1) {
				queried++
				family := name
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					if base, ok := strings.CutSuffix(name, suffix); ok && served[base] != nil {
						family = base
					}
				}
				if served[family] == nil {
					t.Errorf("panel %q queries %s, which the registry does not serve", p.Title, name)
				}
			}
		}
	}
	if queried < 10 {
		t.Fatalf("the dashboard queries %d metrics; the test read it wrong", queried)
	}
}
