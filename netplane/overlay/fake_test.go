package overlay

import (
	"context"
	"errors"
	"net/netip"
	"testing"
)

// Plane and Fake answer the same calls, so a user can take either.
var _ = []interface {
	Attach(context.Context, string, string, Attachment) (Endpoint, error)
	Detach(context.Context, string) error
	Apply(context.Context, State) error
	Teardown(context.Context) error
	Close() error
}{(*Plane)(nil), (*Fake)(nil)}

func TestFakeRecordsWhatAPlaneWouldDo(t *testing.T) {
	ctx := context.Background()
	var f Fake
	att := Attachment{NetworkID: "neta", Subnet: netA.Subnet, Gateway: netip.MustParseAddr("10.10.1.1"),
		Addr: netip.MustParseAddr("10.10.1.5"), IfName: "eth1"}
	ep, err := f.Attach(ctx, "task1", "/run/netns/task1", att)
	if err != nil {
		t.Fatal(err)
	}
	if ep.HostIfName != hostEndName("task1", "neta") || len(ep.HostIfName) > 15 || ep.Addr != att.Addr || len(ep.MAC) != 6 {
		t.Errorf("endpoint %+v", ep)
	}
	if got, ok := f.Attachment("task1", "neta"); !ok || got.MTU != DefaultMTU {
		t.Errorf("recorded attachment %+v %v, want MTU defaulted to %d", got, ok, DefaultMTU)
	}
	bad := att
	bad.Addr = att.Gateway
	if _, err := f.Attach(ctx, "task2", "/run/netns/task2", bad); err == nil {
		t.Errorf("Attach at the gateway's address succeeded, a Plane refuses it")
	}

	s := State{Device: "shoal-x", Networks: []Network{netB, netA},
		VIPs: []VIP{{Addr: netip.MustParseAddr("10.10.1.250"), Backends: []netip.Addr{att.Addr, att.Addr}}}}
	if err := f.Apply(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, n := f.State()
	if n != 1 || got.Networks[0].ID != "neta" || len(got.VIPs[0].Backends) != 1 {
		t.Errorf("state %+v after %d applies, want networks sorted and backends deduplicated", got, n)
	}
	if err := f.Apply(ctx, State{Networks: []Network{ingress, {ID: "other", Subnet: netip.MustParsePrefix("10.11.0.0/24"), Ingress: true}}}); err == nil {
		t.Errorf("two ingress networks applied")
	}

	boom := errors.New("boom")
	f.FailWith(boom)
	if err := f.Detach(ctx, "task1"); !errors.Is(err, boom) {
		t.Errorf("Detach with a failure set: %v", err)
	}
	f.FailWith(nil)
	if err := f.Detach(ctx, "task1"); err != nil || len(f.Endpoints("task1")) != 0 {
		t.Errorf("Detach: %v, endpoints left %v", err, f.Endpoints("task1"))
	}
	if err := f.Teardown(ctx); err != nil || !f.TornDown() {
		t.Fatalf("Teardown: %v", err)
	}
	if err := f.Apply(ctx, s); err == nil {
		t.Errorf("Apply after Teardown succeeded")
	}
}
