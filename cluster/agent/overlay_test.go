package agent

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/shoal-project/shoal/cluster/session"
)

// A service resolves on each of its networks by name and by alias, to its VIP,
// and tasks.<name> and tasks.<alias> to its running tasks, as in Docker (a
// stack's services are found by their short name so).
func TestRecordsAliases(t *testing.T) {
	vip, t1, t2 := netip.MustParseAddr("10.0.1.2"), netip.MustParseAddr("10.0.1.3"), netip.MustParseAddr("10.0.1.4")
	v := &session.Overlay{
		Services: []session.ServiceEndpoint{{ID: "s1", Name: "shop_redis",
			VIPs: map[string]netip.Addr{"n1": vip}, Aliases: map[string][]string{"n1": {"redis"}}}},
		Tasks: []session.TaskEndpoint{
			{ID: "a", ServiceID: "s1", Slot: 1, Running: true, Addrs: map[string]netip.Addr{"n1": t1}},
			{ID: "b", ServiceID: "s1", Slot: 2, Running: true, Addrs: map[string]netip.Addr{"n1": t2}},
			{ID: "c", ServiceID: "s1", Slot: 3, Addrs: map[string]netip.Addr{"n1": netip.MustParseAddr("10.0.1.5")}},
		},
	}
	got := records(v)["n1"]
	want := map[string][]netip.Addr{
		"shop_redis": {vip}, "redis": {vip},
		"tasks.shop_redis": {t1, t2}, "tasks.redis": {t1, t2},
		"shop_redis.1.a": {t1}, "shop_redis.2.b": {t2},
	}
	if len(got) != len(want) {
		t.Errorf("records: %v, want %v", got, want)
	}
	for name, addrs := range want {
		if !slices.Equal(got[name], addrs) {
			t.Errorf("%s: %v, want %v", name, got[name], addrs)
		}
	}
}

// The relay: none while no publishing service keeps its clients' addresses;
// then every node gets one, with the other nodes as peers and, as backends,
// the ingress addresses of such services' running tasks on other nodes.
func TestRelayOf(t *testing.T) {
	ingress := session.OverlayNetwork{ID: "ing", Ingress: true, Subnet: netip.MustParsePrefix("10.0.0.0/24")}
	port := []session.IngressPort{{Protocol: "tcp", Published: 8080, Target: 80}}
	addr := func(s string) map[string]netip.Addr { return map[string]netip.Addr{"ing": netip.MustParseAddr(s)} }
	v := &session.Overlay{
		Networks: []session.OverlayNetwork{ingress},
		Services: []session.ServiceEndpoint{{ID: "keep", Ports: port}, {ID: "masq", Ports: port}},
		Tasks: []session.TaskEndpoint{
			{ID: "k1", ServiceID: "keep", NodeID: "n1", Running: true, Addrs: addr("10.0.0.3")},
			{ID: "k2", ServiceID: "keep", NodeID: "n2", Running: true, Addrs: addr("10.0.0.4")},
			{ID: "k3", ServiceID: "keep", NodeID: "n3", Addrs: addr("10.0.0.5")},
			{ID: "m2", ServiceID: "masq", NodeID: "n2", Running: true, Addrs: addr("10.0.0.6")},
		},
		Mesh: []session.MeshPeer{{NodeID: "n1", Addr: "10.254.0.1"}, {NodeID: "n2", Addr: "10.254.0.2"}, {NodeID: "n3", Addr: "10.254.0.3"}},
	}
	if r := relayOf(v, "n1"); r != nil {
		t.Fatalf("relay without a service that keeps client addresses: %+v", r)
	}
	v.Services[0].KeepClientSource = true
	r := relayOf(v, "n1")
	if r == nil {
		t.Fatal("no relay for a service that keeps client addresses")
	}
	m := netip.MustParseAddr
	if r.Self != m("10.254.0.1") || !slices.Equal(r.Peers, []netip.Addr{m("10.254.0.2"), m("10.254.0.3")}) {
		t.Errorf("relay self %s, peers %v", r.Self, r.Peers)
	}
	if len(r.Backends) != 1 || r.Backends[m("10.0.0.4")] != m("10.254.0.2") {
		t.Errorf("relay backends %v, want only keep's running task on n2", r.Backends)
	}
	if r := relayOf(v, "n2"); r == nil || r.Self != m("10.254.0.2") || r.Backends[m("10.0.0.3")] != m("10.254.0.1") || len(r.Backends) != 1 {
		t.Errorf("n2's relay: %+v", r)
	}
}
