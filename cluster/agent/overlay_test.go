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
