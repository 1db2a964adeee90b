package engineapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestSwarmInitWithDockerCLI(t *testing.T) {
	sw := newSwarmFake("initnode0123456789abcdefg", "init-host")
	api := startSystemAPI(t, Config{Swarm: sw})

	out, errOut, err := api.docker(t, "swarm", "init", "--advertise-addr", "127.0.0.1", "--task-history-limit", "3")
	if err != nil {
		t.Fatalf("docker swarm init: %v\nstderr: %s", err, errOut)
	}
	for _, want := range []string{
		"Swarm initialized: current node (initnode0123456789abcdefg) is now a manager.",
		"docker swarm join --token SWMTKN-1-digest0000-workersecret 127.0.0.1:2377",
		"To add a manager to this swarm, run 'docker swarm join-token manager'",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("docker swarm init output lacks %q:\n%s", want, out)
		}
	}
	if got := sw.calls().lastInit.AdvertiseAddr; got != "127.0.0.1" {
		t.Errorf("init request AdvertiseAddr = %q", got)
	}
	if l := sw.calls().lastInit.Spec.Orchestration.TaskHistoryRetentionLimit; l == nil || *l != 3 {
		t.Errorf("init request TaskHistoryRetentionLimit = %v, want 3", l)
	}

	_, errOut, err = api.docker(t, "swarm", "init")
	if err == nil || !strings.Contains(errOut, `This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.`) {
		t.Errorf("second docker swarm init: err %v, stderr %q", err, errOut)
	}

	out, errOut, err = api.docker(t, "swarm", "join-token", "manager")
	if err != nil || !strings.Contains(out, "docker swarm join --token SWMTKN-1-digest0000-managersecret 127.0.0.1:2377") {
		t.Errorf("docker swarm join-token manager: %v\n%s%s", err, out, errOut)
	}
}

func TestSwarmUpdateAndRotateWithDockerCLI(t *testing.T) {
	sw := newSwarmFake("updnode0123456789abcdefgh", "upd-host")
	sw.activate("127.0.0.1")
	api := startSystemAPI(t, Config{Swarm: sw})

	if _, errOut, err := api.docker(t, "swarm", "update", "--task-history-limit", "9"); err != nil {
		t.Fatalf("docker swarm update: %v\n%s", err, errOut)
	}
	if l := sw.calls().lastUpdate.spec.Orchestration.TaskHistoryRetentionLimit; l == nil || *l != 9 || sw.calls().lastUpdate.version != 10 {
		t.Errorf("update got limit %v at version %d, want 9 at 10", l, sw.calls().lastUpdate.version)
	}

	out, errOut, err := api.docker(t, "swarm", "join-token", "--rotate", "worker")
	if err != nil {
		t.Fatalf("docker swarm join-token --rotate worker: %v\n%s", err, errOut)
	}
	if !sw.calls().lastUpdate.flags.RotateWorkerToken || sw.calls().lastUpdate.flags.RotateManagerToken {
		t.Errorf("rotation flags = %+v, want only the worker token", sw.calls().lastUpdate.flags)
	}
	if !strings.Contains(out, "SWMTKN-1-digest0000-rotatedworker") {
		t.Errorf("rotated token not printed:\n%s", out)
	}
}

func TestSwarmLeaveWithDockerCLI(t *testing.T) {
	sw := newSwarmFake("leavenode0123456789abcdef", "leave-host")
	sw.activate("127.0.0.1")
	api := startSystemAPI(t, Config{Swarm: sw})

	_, errOut, err := api.docker(t, "swarm", "leave")
	if err == nil || !strings.Contains(errOut, "Use `--force` to ignore this message.") {
		t.Errorf("docker swarm leave without force: err %v, stderr %q", err, errOut)
	}
	out, errOut, err := api.docker(t, "swarm", "leave", "--force")
	if err != nil || !strings.Contains(out, "Node left the swarm.") || !sw.calls().lastLeaveForce {
		t.Errorf("docker swarm leave --force: %v force=%v\n%s%s", err, sw.calls().lastLeaveForce, out, errOut)
	}
	if _, _, h := api.do(t, http.MethodGet, "/_ping", "", ""); h.Get("Swarm") != "inactive" {
		t.Errorf("after leave the ping says Swarm %q", h.Get("Swarm"))
	}
}

func TestSwarmEndpointErrors(t *testing.T) {
	notInSwarm := `This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`
	tests := []struct {
		name        string
		noSwarm     bool // no control plane configured at all
		active      bool
		method      string
		path        string
		contentType string
		body        string
		wantStatus  int
		wantMsg     string
	}{
		{"inspect outside a swarm", false, false, "GET", "/swarm", "", "", 503, notInSwarm},
		{"inspect without control plane", true, false, "GET", "/v1.41/swarm", "", "", 503, notInSwarm},
		{"init with broken JSON", false, false, "POST", "/swarm/init", "application/json", "{bad", 400, "invalid JSON"},
		{"init with trailing data", false, false, "POST", "/swarm/init", "application/json", "{} {}", 400, "unexpected content after JSON"},
		{"init with text body", false, false, "POST", "/swarm/init", "text/plain", "{}", 400, "unsupported Content-Type header (text/plain): must be 'application/json'"},
		{"init with bad availability", false, false, "POST", "/swarm/init", "application/json", `{"ListenAddr":"0.0.0.0:2377","Availability":"sleepy"}`, 400, `invalid availability "sleepy"`},
		{"init with wrong field type", false, false, "POST", "/swarm/init", "application/json", `{"ListenAddr":5}`, 400, "invalid JSON"},
		{"init with data path 0.0.0.0", false, false, "POST", "/swarm/init", "application/json", `{"ListenAddr":"0.0.0.0:2377","AdvertiseAddr":"127.0.0.1","DataPathAddr":"0.0.0.0"}`, 400, "data path address must be a non-zero IP address or network interface (without a port number)"},
		{"init with a 15m certificate", false, false, "POST", "/swarm/init", "application/json", `{"ListenAddr":"0.0.0.0:2377","Spec":{"CAConfig":{"NodeCertExpiry":900000000000}}}`, 400, "minimum certificate expiry time is: 1h0m0s"},
		{"join without remote", false, false, "POST", "/swarm/join", "application/json", `{"ListenAddr":"0.0.0.0:2377","JoinToken":"x"}`, 400, "at least 1 RemoteAddr is required to join"},
		{"join with data path 0.0.0.0", false, false, "POST", "/swarm/join", "application/json", `{"ListenAddr":"0.0.0.0:2377","RemoteAddrs":["10.0.0.1:2377"],"DataPathAddr":"0.0.0.0"}`, 400, "data path address must be a non-zero IP address"},
		{"update with a 15m certificate", false, true, "POST", "/swarm/update?version=10", "application/json", `{"CAConfig":{"NodeCertExpiry":900000000000}}`, 400, "rpc error: code = InvalidArgument desc = minimum certificate expiry time is: 1h0m0s"},
		{"update without version", false, true, "POST", "/swarm/update", "application/json", `{}`, 400, "invalid swarm version ''"},
		{"update with bad rotate flag", false, true, "POST", "/swarm/update?version=10&rotateWorkerToken=maybe", "application/json", `{}`, 400, "invalid value for rotateWorkerToken: maybe"},
		{"update out of sequence", false, true, "POST", "/swarm/update?version=3", "application/json", `{}`, 400, "update out of sequence"},
		{"unlock outside a swarm", false, false, "POST", "/swarm/unlock", "application/json", `{"UnlockKey":"k"}`, 503, notInSwarm},
		{"unlock an unlocked swarm", false, true, "POST", "/swarm/unlock", "application/json", `{"UnlockKey":"k"}`, 409, "swarm is not locked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{}
			if !tt.noSwarm {
				sw := newSwarmFake("errnode0123456789abcdefgh", "err-host")
				if tt.active {
					sw.activate("127.0.0.1")
				}
				cfg.Swarm = sw
			}
			api := startSystemAPI(t, cfg)
			status, body, _ := api.do(t, tt.method, tt.path, tt.contentType, tt.body)
			if status != tt.wantStatus {
				t.Errorf("status %d, want %d (body %s)", status, tt.wantStatus, body)
			}
			var msg struct{ Message string }
			if err := json.Unmarshal([]byte(body), &msg); err != nil || !strings.Contains(msg.Message, tt.wantMsg) {
				t.Errorf("body %q, want a message containing %q", body, tt.wantMsg)
			}
		})
	}
}

// Without autolock dockerd answers the unlock key with an empty one (the CLI
// then says "no unlock key is set").
func TestUnlockKeyNotSet(t *testing.T) {
	sw := newSwarmFake("keynode0123456789abcdefgh", "key-host")
	sw.activate("127.0.0.1")
	api := startSystemAPI(t, Config{Swarm: sw})
	status, body, _ := api.do(t, http.MethodGet, "/v1.41/swarm/unlockkey", "", "")
	if status != http.StatusOK || strings.TrimSpace(body) != `{"UnlockKey":""}` {
		t.Fatalf("GET /swarm/unlockkey: %d %s", status, body)
	}
}

func TestSwarmInitReturnsNodeIDAsJSONString(t *testing.T) {
	sw := newSwarmFake("jsonnode0123456789abcdefg", "json-host")
	api := startSystemAPI(t, Config{Swarm: sw})
	status, body, _ := api.do(t, http.MethodPost, "/v1.41/swarm/init", "application/json", `{"ListenAddr":"0.0.0.0:2377","DataPathPort":4789}`)
	if status != http.StatusOK || strings.TrimSpace(body) != `"jsonnode0123456789abcdefg"` {
		t.Fatalf("POST /swarm/init: %d %s", status, body)
	}
	if sw.calls().lastInit.DataPathPort != 4789 {
		t.Errorf("DataPathPort %d lost for API 1.41", sw.calls().lastInit.DataPathPort)
	}
	if status, body, _ = api.do(t, http.MethodGet, "/swarm", "", ""); status != http.StatusOK || !strings.Contains(body, `"JoinTokens":{"Worker":"SWMTKN-1-digest0000-workersecret"`) {
		t.Errorf("GET /swarm after init: %d %s", status, body)
	}
}
