package agent

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/shoal-project/shoal/cluster/session"
)

// A node shows a network once one of its tasks is on it, keeps showing it
// after its tasks leave, and forgets it when the network is removed.
func TestLocalNetworksFollowTheView(t *testing.T) {
	a := New(Config{NodeID: "n1"})
	names := func() (out []string) {
		for _, n := range a.Networks() {
			out = append(out, n.Name)
		}
		return out
	}
	back := session.OverlayNetwork{ID: "b", Name: "back"}
	front := session.OverlayNetwork{ID: "f", Name: "front"}
	task := func(node, network string) session.TaskEndpoint {
		return session.TaskEndpoint{ID: node + network, NodeID: node, Addrs: map[string]netip.Addr{network: netip.MustParseAddr("10.0.1.2")}}
	}
	for _, step := range []struct {
		view *session.Overlay
		want []string
	}{
		{&session.Overlay{Networks: []session.OverlayNetwork{back, front}, Tasks: []session.TaskEndpoint{task("n2", "b")}}, nil},
		{&session.Overlay{Networks: []session.OverlayNetwork{back, front}, Tasks: []session.TaskEndpoint{task("n1", "b"), task("n2", "f")}}, []string{"back"}},
		{&session.Overlay{Networks: []session.OverlayNetwork{back, front}, Tasks: []session.TaskEndpoint{task("n1", "f")}}, []string{"back", "front"}},
		{&session.Overlay{Networks: []session.OverlayNetwork{front}}, []string{"front"}},
		{nil, []string{"front"}},
	} {
		a.networks.follow("n1", step.view)
		if got := names(); !slices.Equal(got, step.want) {
			t.Errorf("after view %+v: networks %v, want %v", step.view, got, step.want)
		}
	}
}
