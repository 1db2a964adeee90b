package engineapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

// twoWorkers are the worker nodes of the node tests.
func twoWorkers() []swarm.Node {
	return []swarm.Node{
		{
			ID:          "wrk1aaaaaaaaaaaaaaaaaaaaa",
			Meta:        swarm.Meta{Version: swarm.Version{Index: 20}},
			Spec:        swarm.NodeSpec{Role: swarm.NodeRoleWorker, Availability: swarm.NodeAvailabilityActive, Annotations: swarm.Annotations{Labels: map[string]string{"zone": "b", "gpu": ""}}},
			Description: swarm.NodeDescription{Hostname: "edge-1", Engine: swarm.EngineDescription{EngineVersion: "0.1.0", Labels: map[string]string{"edge": "yes"}}},
			Status:      swarm.NodeStatus{State: swarm.NodeStateReady, Addr: "10.0.0.2"},
		},
		{
			ID:          "wrk2bbbbbbbbbbbbbbbbbbbbb",
			Meta:        swarm.Meta{Version: swarm.Version{Index: 21}},
			Spec:        swarm.NodeSpec{Role: swarm.NodeRoleWorker, Availability: swarm.NodeAvailabilityDrain},
			Description: swarm.NodeDescription{Hostname: "edge-2", Engine: swarm.EngineDescription{EngineVersion: "0.1.0"}},
			Status:      swarm.NodeStatus{State: swarm.NodeStateDown, Addr: "10.0.0.3"},
		},
	}
}

func TestNodeListFilters(t *testing.T) {
	sw := newSwarmFake("mgr0cccccccccccccccccccccc", "edge-0")
	sw.activate("10.0.0.1", twoWorkers()...)
	api := startSystemAPI(t, Config{Swarm: sw})

	tests := []struct {
		name       string
		filters    string
		wantStatus int
		want       []string // hostnames, in order
		wantMsg    string
	}{
		{"all", "", 200, []string{"edge-0", "edge-1", "edge-2"}, ""},
		{"id prefix", `{"id":{"wrk2":true}}`, 200, []string{"edge-2"}, ""},
		{"name prefix", `{"name":{"edge-":true}}`, 200, []string{"edge-0", "edge-1", "edge-2"}, ""},
		{"name exact", `{"name":{"edge-1":true}}`, 200, []string{"edge-1"}, ""},
		{"role manager", `{"role":{"manager":true}}`, 200, []string{"edge-0"}, ""},
		{"role worker, legacy form", `{"role":["WORKER"]}`, 200, []string{"edge-1", "edge-2"}, ""},
		{"node label key", `{"node.label":{"gpu":true}}`, 200, []string{"edge-1"}, ""},
		{"node label value", `{"node.label":{"zone=a":true}}`, 200, []string{"edge-0"}, ""},
		{"engine label", `{"label":{"edge=yes":true}}`, 200, []string{"edge-0", "edge-1"}, ""},
		{"membership accepted", `{"membership":{"accepted":true}}`, 200, []string{"edge-0", "edge-1", "edge-2"}, ""},
		{"membership pending", `{"membership":{"pending":true}}`, 200, []string{}, ""},
		{"bad role", `{"role":{"boss":true}}`, 400, nil, "Invalid role filter: 'boss'"},
		{"bad membership", `{"membership":{"maybe":true}}`, 400, nil, "Invalid membership filter: 'maybe'"},
		{"unknown filter", `{"colour":{"red":true}}`, 400, nil, "invalid filter 'colour'"},
		{"not JSON", `{nope`, 400, nil, "invalid filter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/nodes"
			if tt.filters != "" {
				path += "?filters=" + url.QueryEscape(tt.filters)
			}
			status, body, _ := api.do(t, http.MethodGet, path, "", "")
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tt.wantStatus, body)
			}
			if tt.wantMsg != "" {
				if !strings.Contains(body, tt.wantMsg) {
					t.Errorf("body %s lacks %q", body, tt.wantMsg)
				}
				return
			}
			var nodes []swarm.Node
			if err := json.Unmarshal([]byte(body), &nodes); err != nil {
				t.Fatalf("decode: %v (%s)", err, body)
			}
			got := []string{}
			for _, n := range nodes {
				got = append(got, n.Description.Hostname)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("nodes %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNodeCommandsWithDockerCLI(t *testing.T) {
	sw := newSwarmFake("mgr0dddddddddddddddddddddd", "lab-0")
	sw.activate("10.0.0.1", twoWorkers()...)
	api := startSystemAPI(t, Config{Swarm: sw})

	out, errOut, err := api.docker(t, "node", "ls")
	if err != nil {
		t.Fatalf("docker node ls: %v\n%s", err, errOut)
	}
	self := regexp.MustCompile(`(?m)^mgr0dddddddddddddddddddddd \*\s+lab-0\s+Ready\s+Active\s+Leader\s+0\.1\.0$`)
	if !self.MatchString(out) {
		t.Errorf("docker node ls does not mark self as the ready leader:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^wrk2bbbbbbbbbbbbbbbbbbbbb\s+edge-2\s+Down\s+Drain\s+0\.1\.0$`).MatchString(out) {
		t.Errorf("docker node ls misses the drained, down worker:\n%s", out)
	}

	out, errOut, err = api.docker(t, "node", "ls", "--filter", "role=worker", "-q")
	if err != nil || strings.Fields(out)[0] != "wrk1aaaaaaaaaaaaaaaaaaaaa" || len(strings.Fields(out)) != 2 {
		t.Errorf("docker node ls --filter role=worker -q: %v %q %s", err, out, errOut)
	}

	out, errOut, err = api.docker(t, "node", "inspect", "--pretty", "self")
	if err != nil {
		t.Fatalf("docker node inspect --pretty self: %v\n%s", err, errOut)
	}
	for _, want := range []string{"ID:\t\t\tmgr0dddddddddddddddddddddd", "Hostname:              \tlab-0", "Manager Status:", "Leader:\t\tYes", "zone=a"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker node inspect --pretty self lacks %q:\n%s", want, out)
		}
	}

	if _, errOut, err := api.docker(t, "node", "update", "--availability", "drain", "--label-add", "rack=r1", "self"); err != nil {
		t.Fatalf("docker node update: %v\n%s", err, errOut)
	}
	if sw.calls().lastNodeUpdate.Availability != swarm.NodeAvailabilityDrain || sw.calls().lastNodeUpdate.Labels["rack"] != "r1" || sw.calls().lastNodeVersion != 9 {
		t.Errorf("node update got %+v at version %d", sw.calls().lastNodeUpdate, sw.calls().lastNodeVersion)
	}

	if _, errOut, err := api.docker(t, "node", "promote", "edge-1"); err != nil {
		t.Fatalf("docker node promote: %v\n%s", err, errOut)
	}
	if sw.calls().lastNodeUpdate.Role != swarm.NodeRoleManager {
		t.Errorf("promote sent role %q", sw.calls().lastNodeUpdate.Role)
	}

	_, errOut, err = api.docker(t, "node", "rm", "edge-1")
	if err == nil || !strings.Contains(errOut, "node edge-1 is not down and can't be removed") {
		t.Errorf("docker node rm of a ready node: %v %q", err, errOut)
	}
	if out, errOut, err := api.docker(t, "node", "rm", "--force", "edge-1"); err != nil || strings.TrimSpace(out) != "edge-1" {
		t.Errorf("docker node rm --force: %v %q %s", err, out, errOut)
	}
	if !slices.Equal(sw.calls().removed, []string{"wrk1aaaaaaaaaaaaaaaaaaaaa"}) {
		t.Errorf("removed %v", sw.calls().removed)
	}

	_, errOut, err = api.docker(t, "node", "inspect", "nosuchnode")
	// The 20.10 CLI prints its own "No such node" for a 404; later ones the message.
	if err == nil || !strings.Contains(errOut, "nosuchnode") {
		t.Errorf("docker node inspect of a missing node: %v %q", err, errOut)
	}
}

func TestNodeUpdateValidation(t *testing.T) {
	sw := newSwarmFake("mgr0eeeeeeeeeeeeeeeeeeeeee", "val-0")
	sw.activate("10.0.0.1")
	api := startSystemAPI(t, Config{Swarm: sw})
	tests := []struct {
		name, path, body string
		wantStatus       int
		wantMsg          string
	}{
		{"no version", "/nodes/val-0/update", `{"Role":"manager","Availability":"active"}`, 400, "invalid node version ''"},
		{"bad role", "/nodes/val-0/update?version=9", `{"Role":"king","Availability":"active"}`, 400, `invalid Role: "king"`},
		{"bad availability", "/nodes/val-0/update?version=9", `{"Role":"worker","Availability":"off"}`, 400, `invalid Availability: "off"`},
		{"stale version", "/nodes/val-0/update?version=2", `{"Role":"manager","Availability":"pause"}`, 400, "update out of sequence"},
		{"unknown node", "/nodes/ghost/update?version=9", `{"Role":"manager","Availability":"pause"}`, 404, "node ghost not found"},
		{"ok", "/nodes/val-0/update?version=9", `{"Role":"manager","Availability":"pause"}`, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, _ := api.do(t, http.MethodPost, tt.path, "application/json", tt.body)
			var msg struct{ Message string }
			_ = json.Unmarshal([]byte(body), &msg)
			if status != tt.wantStatus || !strings.Contains(msg.Message, tt.wantMsg) {
				t.Errorf("status %d body %q, want %d with %q", status, body, tt.wantStatus, tt.wantMsg)
			}
		})
	}
}
