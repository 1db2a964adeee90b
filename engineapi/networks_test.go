package engineapi

import (
	"encoding/json"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

const (
	webID    = "aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111"
	dbID     = "bbbb2222bbbb2222bbbb2222bbbb2222bbbb2222bbbb2222bbbb2222bbbb2222"
	noNetID  = "cccc3333cccc3333cccc3333cccc3333cccc3333cccc3333cccc3333cccc3333"
	webEPID  = "eeee5555eeee5555eeee5555eeee5555eeee5555eeee5555eeee5555eeee5555"
	webMAC   = "02:42:ac:1e:00:02"
	netTestN = "shoaltest0"
)

// taskSummary is a running task container with the given endpoints.
func taskSummary(id, name string, eps map[string]*network.EndpointSettings) container.Summary {
	return container.Summary{ID: id, Names: []string{"/" + name}, State: container.StateRunning,
		NetworkSettings: &container.NetworkSettingsSummary{Networks: eps}}
}

// startNetworkAPI serves a node whose bridge is netTestN on 172.30.0.0/16 with two
// task containers on it (one keyed "default" with MAC and endpoint ID, one keyed
// "bridge" without) and one without a network.
func startNetworkAPI(t *testing.T) *svcAPI {
	t.Helper()
	mac, _ := net.ParseMAC(webMAC)
	ctrs := newCtrFake(
		taskSummary(webID, "web.1.x1", map[string]*network.EndpointSettings{"default": {
			IPAddress: netip.MustParseAddr("172.30.0.2"), IPPrefixLen: 16, EndpointID: webEPID,
			MacAddress: network.HardwareAddr(mac)}}),
		taskSummary(dbID, "db.1.y2", map[string]*network.EndpointSettings{"bridge": {
			IPAddress: netip.MustParseAddr("172.30.0.3")}}),
		taskSummary(noNetID, "batch.1.z3", map[string]*network.EndpointSettings{}),
	)
	return startSvcAPI(t, Config{Swarm: newServiceFake(), Containers: ctrs, Images: &imageFake{},
		Bridge: newBridgeFake(netTestN, "172.30.0.0/16")})
}

func TestNetworkList(t *testing.T) {
	api := startNetworkAPI(t)
	tests := []struct {
		name, filters string
		status        int
		want          string // names, or the error message
	}{
		{"all", ``, 200, "bridge host none"},
		{"driver", `{"driver":{"bridge":true}}`, 200, "bridge"},
		{"driver is exact", `{"driver":{"bri":true}}`, 200, ""},
		{"null driver", `{"driver":{"null":true}}`, 200, "none"},
		{"name is a regexp", `{"name":{"o":true}}`, 200, "host none"},
		{"id prefix", `{"id":{"` + networkID("host")[:10] + `":true}}`, 200, "host"},
		{"scope local", `{"scope":{"local":true}}`, 200, "bridge host none"},
		{"scope swarm", `{"scope":{"swarm":true}}`, 200, ""},
		{"builtin", `{"type":{"builtin":true}}`, 200, "bridge host none"},
		{"custom", `{"type":{"custom":true}}`, 200, ""},
		{"predefined are not dangling", `{"dangling":{"true":true}}`, 200, ""},
		{"predefined are in use", `{"dangling":{"false":true}}`, 200, "bridge host none"},
		{"label", `{"label":{"a":true}}`, 200, ""},
		{"legacy form", `{"name":["none"]}`, 200, "none"},
		{"bad type", `{"type":{"overlay":true}}`, 400, "invalid filter: 'type'='overlay'"},
		{"bad dangling", `{"dangling":{"maybe":true}}`, 400, `invalid value for filter 'dangling', must be "true" (or "1"), or "false" (or "0")`},
		{"unknown filter", `{"until":{"1h":true}}`, 400, "invalid filter 'until'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := api.call(t, "GET", "/v1.51/networks?filters="+url.QueryEscape(tc.filters), nil, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if tc.status != 200 {
				if strings.TrimSpace(string(body)) != `{"message":`+jsonString(tc.want)+`}` {
					t.Fatalf("body %s, want %q", body, tc.want)
				}
				return
			}
			var list []network.Summary
			if err := json.Unmarshal(body, &list); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, nw := range list {
				names = append(names, nw.Name)
			}
			if got := strings.Join(names, " "); got != tc.want {
				t.Fatalf("got %q, want %q (%s)", got, tc.want, body)
			}
		})
	}
}

func TestNetworkInspect(t *testing.T) {
	api := startNetworkAPI(t)
	bridgeID := networkID("bridge")
	for _, ref := range []string{"bridge", bridgeID, bridgeID[:12], "bridge?verbose=true&scope=local"} {
		resp, body := api.call(t, "GET", "/v1.51/networks/"+ref, nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("inspect %s: %d %s", ref, resp.StatusCode, body)
		}
		var nw network.Inspect
		if err := json.Unmarshal(body, &nw); err != nil {
			t.Fatal(err)
		}
		if nw.Name != "bridge" || nw.ID != bridgeID || nw.Driver != "bridge" || nw.Scope != "local" ||
			nw.EnableIPv6 || nw.Internal || nw.Attachable || nw.Ingress ||
			time.Since(nw.Created) > time.Minute || nw.Options["com.docker.network.bridge.name"] != netTestN {
			t.Fatalf("inspect %s: %s", ref, body)
		}
		if len(nw.IPAM.Config) != 1 || nw.IPAM.Config[0].Subnet.String() != "172.30.0.0/16" ||
			nw.IPAM.Config[0].Gateway.String() != "172.30.0.1" {
			t.Fatalf("IPAM of %s: %+v", ref, nw.IPAM)
		}
		web, db := nw.Containers[webID], nw.Containers[dbID]
		if len(nw.Containers) != 2 || web.Name != "web.1.x1" || web.EndpointID != webEPID ||
			web.MacAddress.String() != webMAC || web.IPv4Address.String() != "172.30.0.2/16" {
			t.Fatalf("containers of %s: %s", ref, body)
		}
		if db.Name != "db.1.y2" || len(db.EndpointID) != 64 || db.IPv4Address.String() != "172.30.0.3/16" {
			t.Fatalf("db endpoint: %+v", db)
		}
	}
	resp, body := api.call(t, "GET", "/v1.51/networks/host", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"Driver":"host"`) ||
		!strings.Contains(string(body), `"Containers":{}`) || !strings.Contains(string(body), `"Config":[]`) {
		t.Fatalf("inspect host: %d %s", resp.StatusCode, body)
	}

	// `service create --network host` asks for the host network in the swarm
	// scope: a service may join it, as dockerd's swarmkit copy of it.
	resp, body = api.call(t, "GET", "/v1.51/networks/host?scope=swarm", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"Driver":"host"`) {
		t.Fatalf("inspect host in the swarm scope: %d %s", resp.StatusCode, body)
	}

	tests := []struct{ name, path, message string }{
		{"unknown", "/networks/nosuch", "network nosuch not found"},
		{"service create asks for swarm networks", "/networks/none?scope=swarm", "network none not found"},
		{"ingress is not listed", "/networks/ingress", "network ingress not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := api.call(t, "GET", "/v1.51"+tc.path, nil, nil)
			if resp.StatusCode != 404 || strings.TrimSpace(string(body)) != `{"message":`+jsonString(tc.message)+`}` {
				t.Fatalf("%d %s, want 404 %q", resp.StatusCode, body, tc.message)
			}
		})
	}
}

func TestNetworkChangesRefused(t *testing.T) {
	api := startNetworkAPI(t)
	tests := []struct {
		name, method, path, body string
		status                   int
		message                  string
	}{
		{"create overlay outside a swarm", "POST", "/networks/create", `{"Name":"x","Driver":"overlay"}`, 503,
			"This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."},
		{"create bad subnet", "POST", "/networks/create", `{"Name":"x","Driver":"overlay","IPAM":{"Config":[{"Subnet":"bogus"}]}}`, 400,
			"Invalid subnet bogus : invalid CIDR address: bogus"},
		{"create bridge", "POST", "/networks/create", `{"Name":"x","Driver":"bridge"}`, 501,
			`network driver "bridge" is not supported: shoal's task containers use the node's predefined bridge network`},
		{"create default driver", "POST", "/networks/create", `{"Name":"x"}`, 501,
			`network driver "bridge" is not supported: shoal's task containers use the node's predefined bridge network`},
		{"create macvlan", "POST", "/networks/create", `{"Name":"x","Driver":"macvlan"}`, 501,
			`network driver "macvlan" is not supported: shoal's task containers use the node's predefined bridge network`},
		{"create host", "POST", "/networks/create", `{"Name":"x","Driver":"host"}`, 403, `only one instance of "host" network is allowed`},
		{"create unknown driver", "POST", "/networks/create", `{"Name":"x","Driver":"weave"}`, 404, `plugin "weave" not found`},
		{"create predefined name", "POST", "/networks/create", `{"Name":"bridge","Driver":"overlay"}`, 403,
			"operation is not permitted on predefined bridge network"},
		{"create bad body", "POST", "/networks/create", `{`, 400, "invalid JSON: unexpected EOF"},
		{"remove bridge", "DELETE", "/networks/bridge", ``, 403, "bridge is a pre-defined network and cannot be removed"},
		{"remove none by ID", "DELETE", "/networks/" + networkID("none"), ``, 403, "none is a pre-defined network and cannot be removed"},
		{"remove unknown", "DELETE", "/networks/nosuch", ``, 404, "network nosuch not found"},
		{"connect", "POST", "/networks/bridge/connect", `{"Container":"web.1.x1"}`, 501,
			"shoal runs containers only as swarm tasks: they cannot be connected to or disconnected from networks by hand"},
		{"disconnect", "POST", "/networks/bridge/disconnect", `{"Container":"web.1.x1"}`, 501,
			"shoal runs containers only as swarm tasks: they cannot be connected to or disconnected from networks by hand"},
		{"connect unknown", "POST", "/networks/nosuch/connect", `{"Container":"web.1.x1"}`, 404, "network nosuch not found"},
		{"prune bad filter", "POST", "/networks/prune?filters=" + url.QueryEscape(`{"dangling":{"true":true}}`), ``, 400, "invalid filter 'dangling'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"Content-Type": "application/json"}
			resp, body := api.call(t, tc.method, "/v1.51"+tc.path, strings.NewReader(tc.body), hdr)
			if resp.StatusCode != tc.status || strings.TrimSpace(string(body)) != `{"message":`+jsonString(tc.message)+`}` {
				t.Fatalf("%d %s, want %d %q", resp.StatusCode, body, tc.status, tc.message)
			}
		})
	}
	resp, body := api.call(t, "POST", "/v1.51/networks/prune?filters="+url.QueryEscape(`{"until":{"24h":true}}`), nil, nil)
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"NetworksDeleted":[]}` {
		t.Fatalf("prune: %d %s", resp.StatusCode, body)
	}
}

// The docker CLI's network commands read the predefined networks and print Docker's
// refusals.
func TestNetworkDockerCLI(t *testing.T) {
	api := startNetworkAPI(t)
	short := func(name string) string { return networkID(name)[:12] }
	want := "NETWORK ID     NAME      DRIVER    SCOPE\n" +
		short("bridge") + "   bridge    bridge    local\n" +
		short("host") + "   host      host      local\n" +
		short("none") + "   none      null      local\n"
	if out := api.mustDocker(t, "network", "ls"); out != want {
		t.Fatalf("network ls:\n%s\nwant:\n%s", out, want)
	}
	if out := api.mustDocker(t, "network", "ls", "--filter", "driver=bridge", "--format", "{{.Name}} {{.Driver}}"); out != "bridge bridge\n" {
		t.Fatalf("network ls --filter driver=bridge: %q", out)
	}
	out := api.mustDocker(t, "network", "inspect", "--format",
		`{{.Name}} {{.Options}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{range $id, $c := .Containers}}{{$c.Name}}={{$c.IPv4Address}} {{end}}`, "bridge")
	if want := "bridge map[com.docker.network.bridge.default_bridge:true com.docker.network.bridge.enable_ip_masquerade:true com.docker.network.bridge.name:" +
		netTestN + "] 172.30.0.0/16 172.30.0.1 web.1.x1=172.30.0.2/16 db.1.y2=172.30.0.3/16 \n"; out != want {
		// Go templates range over maps in key order: web's ID sorts before db's.
		t.Fatalf("network inspect bridge:\n%q\nwant\n%q", out, want)
	}

	refusals := []struct {
		args []string
		want string
	}{
		{[]string{"network", "inspect", "nosuch"}, "network nosuch not found"},
		{[]string{"network", "create", "-d", "overlay", "x"}, "Error response from daemon: This node is not a swarm manager."},
		{[]string{"network", "rm", "bridge"}, "Error response from daemon: bridge is a pre-defined network and cannot be removed"},
		{[]string{"network", "create", "bridge"}, "Error response from daemon: operation is not permitted on predefined bridge network"},
	}
	for _, r := range refusals {
		stdout, stderr, err := api.docker(t, "", r.args...)
		if err == nil || !strings.Contains(stderr, r.want) {
			t.Fatalf("docker %s: %v\nstdout: %s\nstderr: %s\nwant %q", strings.Join(r.args, " "), err, stdout, stderr, r.want)
		}
	}
	if out := api.mustDocker(t, "network", "prune", "-f"); out != "" {
		t.Fatalf("network prune -f: %q", out)
	}
}
