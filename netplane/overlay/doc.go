// Package overlay is the host side of a node's overlay networks: layer 3 over
// the node's WireGuard mesh, with no bridge and no VXLAN. A task joins a
// network through a veth pair whose host end routes: the task sends
// everything for the network to the network's gateway address, which is the
// host end, and the host routes each task address as a /32, locally to its
// host end or to the WireGuard interface for tasks of other nodes.
//
// A Plane attaches task sandboxes (Attach, Detach) and makes the node's
// routes and one nftables table match the desired networks and virtual IPs
// (Apply): isolation between networks, VIP load balancing by DNAT, and the
// masquerade the routing mesh needs. It keeps no state file: every kernel
// object it makes is named or marked so that a restarted daemon finds it.
package overlay
