// Package bridge gives task containers node-local networking in the way Docker's
// default bridge does: each sandbox is a named network namespace with loopback up and
// one veth into a Linux bridge, an address from the bridge subnet and a default route
// via the bridge; outbound traffic is masqueraded and host ports can be published to a
// sandbox with nftables DNAT.
//
// A Network is bound to the network namespace of the thread that calls New (the host
// namespace) and never moves a long-lived goroutine into another one. Its allocations
// (addresses, published ports) are kept in a JSON file so that a restarted daemon adopts
// the bridge, the nftables table and the sandboxes instead of recreating them.
package bridge
