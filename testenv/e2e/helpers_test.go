// Package e2e drives real shoal daemons with the real docker CLI, as a user would.
package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
	"github.com/shoal-project/shoal/testenv"
)

// newSwarm starts a node, makes it a single-node swarm and loads busybox:latest.
func newSwarm(t *testing.T, name string) *testenv.Node {
	t.Helper()
	n := testenv.StartNode(t, name, testenv.Options{})
	n.MustDocker("swarm", "init", "--advertise-addr", "127.0.0.1")
	archive := imagetest.BusyboxArchive(t, t.TempDir(), "busybox:latest")
	if out := n.MustDocker("load", "-i", archive); !strings.Contains(out, "Loaded image: busybox:latest") {
		t.Fatalf("docker load said %q", out)
	}
	return n
}

// taskRow is one line of `docker service ps --format json`-like output.
type taskRow struct {
	ID, Name, Image, Node, DesiredState, CurrentState, Error string
}

// serviceTasks lists a service's tasks as `docker service ps --no-trunc` shows them.
func serviceTasks(t *testing.T, n *testenv.Node, service string, extra ...string) []taskRow {
	t.Helper()
	args := append([]string{"service", "ps", "--no-trunc", "--format", "{{json .}}"}, extra...)
	out := n.MustDocker(append(args, service)...)
	var rows []taskRow
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r taskRow
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("parse service ps line %q: %v", line, err)
		}
		rows = append(rows, r)
	}
	return rows
}

// waitRunning waits until the service has want tasks whose desired and current
// states are Running.
func waitRunning(t *testing.T, n *testenv.Node, service string, want int) {
	t.Helper()
	testenv.WaitFor(t, 60*time.Second, service+" running", func() (bool, string) {
		out, err := n.Docker("service", "ps", "--filter", "desired-state=running", "--format", "{{.CurrentState}}", service)
		if err != nil {
			return false, out
		}
		running := strings.Count(out, "Running")
		return running == want && strings.Count(strings.TrimSpace(out), "\n")+1 == want, out
	})
}

// inspect decodes `docker <kind> inspect <ref>` into v.
func inspect(t *testing.T, n *testenv.Node, kind, ref string, v any) {
	t.Helper()
	out := n.MustDocker(kind, "inspect", ref)
	var list []json.RawMessage
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 {
		t.Fatalf("%s inspect %s: %v\n%s", kind, ref, err, out)
	}
	if err := json.Unmarshal(list[0], v); err != nil {
		t.Fatalf("%s inspect %s: %v", kind, ref, err)
	}
}

// storedService is GET /services/{ref} without insertDefaults: the spec as stored,
// which the CLI's progress and `service ls` read.
func storedService(t *testing.T, n *testenv.Node, ref string) swarm.Service {
	t.Helper()
	status, body := apiCall(t, n, "GET", "/services/"+ref, nil)
	var svc swarm.Service
	if status != http.StatusOK || json.Unmarshal([]byte(body), &svc) != nil {
		t.Fatalf("GET /services/%s = %d %s", ref, status, body)
	}
	return svc
}
