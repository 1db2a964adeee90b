package bridge

import "net/netip"

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
