package bridge

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
)

// Info is what a Network shows of itself: the bridge device and its address plan.
type Info struct {
	BridgeName string       // the Linux bridge, e.g. "shoal0"
	Subnet     netip.Prefix // the sandboxes' subnet
	Gateway    netip.Addr   // the bridge's own address in Subnet
}

// Info describes the network. It never changes after New.
func (n *Network) Info() Info {
	return Info{BridgeName: n.cfg.BridgeName, Subnet: n.cfg.Subnet, Gateway: n.gateway}
}

// NetworkName is what Docker calls a node's default network, whatever the Linux
// bridge behind it is named; task containers' endpoints are on it.
const NetworkName = "bridge"

// NetworkID is the stable ID of the node network named name ("bridge", "host",
// "none"): 64 hex digits like dockerd's, the same on every node and across
// restarts, so that the network API and the containers' endpoints agree.
func NetworkID(name string) string {
	sum := sha256.Sum256([]byte("shoal-network:" + name))
	return hex.EncodeToString(sum[:])
}
