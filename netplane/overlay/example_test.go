package overlay_test

import (
	"context"
	"log"
	"net/netip"

	"github.com/shoal-project/shoal/netplane/overlay"
)

// The agent's use: open the Plane in the host's namespace, attach each task
// to its networks, and apply the node's view of networks and VIPs whenever it
// changes.
func Example() {
	ctx := context.Background()
	plane, err := overlay.New(ctx, overlay.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer plane.Close() // tasks keep their networks while the daemon is down

	web := overlay.Network{ID: "web", Subnet: netip.MustParsePrefix("10.0.1.0/24")}
	if _, err := plane.Attach(ctx, "task1", "/run/shoal/netns/task1", overlay.Attachment{
		NetworkID: web.ID, Subnet: web.Subnet, Gateway: netip.MustParseAddr("10.0.1.1"),
		Addr: netip.MustParseAddr("10.0.1.5"), IfName: "eth1", MTU: 1420,
	}); err != nil {
		log.Fatal(err)
	}
	if err := plane.Apply(ctx, overlay.State{
		Device:   "shoal-abcdefghi", // the node's WireGuard interface
		Networks: []overlay.Network{web},
		VIPs:     []overlay.VIP{{Addr: netip.MustParseAddr("10.0.1.2"), Backends: []netip.Addr{netip.MustParseAddr("10.0.1.5")}}},
	}); err != nil {
		log.Fatal(err)
	}
}
