package engineapi

import (
	"net/netip"

	"github.com/shoal-project/shoal/netplane/bridge"
)

// bridgeFake is a node's bridge network with a fixed device name and subnet.
type bridgeFake struct{ info bridge.Info }

func newBridgeFake(name, subnet string) *bridgeFake {
	p := netip.MustParsePrefix(subnet)
	return &bridgeFake{info: bridge.Info{BridgeName: name, Subnet: p, Gateway: p.Addr().Next()}}
}

func (f *bridgeFake) Info() bridge.Info { return f.info }
