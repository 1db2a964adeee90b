package session

import (
	"net/netip"
	"time"
)

// Overlay is what every node needs of the swarm's overlay networks to route,
// balance and answer names: each network, each service's endpoint on them and
// each address a task holds, on whatever node. Sessions carry it whole when
// they open and whenever it changes; it is small for the fleets shoal serves
// (a few hundred tasks make tens of kilobytes).
type Overlay struct {
	// Version grows with every change the manager sends.
	Version  uint64
	Networks []OverlayNetwork  `json:",omitempty"`
	Services []ServiceEndpoint `json:",omitempty"`
	Tasks    []TaskEndpoint    `json:",omitempty"`
	// Mesh is every ready node of the WireGuard mesh, as Message.Mesh: here
	// every session has it within moments of a change (a node's new key),
	// where keepalives carry it within a heartbeat period.
	Mesh []MeshPeer `json:",omitempty"`
}

// OverlayNetwork is one overlay network's address space.
type OverlayNetwork struct {
	ID       string
	Name     string
	Subnet   netip.Prefix
	Gateway  netip.Addr
	Internal bool              `json:",omitempty"`
	Ingress  bool              `json:",omitempty"`
	Options  map[string]string `json:",omitempty"`
	// What a node shows of the network in its own `docker network ls` and
	// inspect, a worker too (which has no store to read it from).
	Attachable bool              `json:",omitempty"`
	Labels     map[string]string `json:",omitempty"`
	Created    time.Time         `json:",omitzero"`
}

// ServiceEndpoint is how a service is reached on the networks it joins.
type ServiceEndpoint struct {
	ID   string
	Name string
	// DNSRR: the service's name resolves to its tasks' addresses, it has no
	// virtual IPs.
	DNSRR bool `json:",omitempty"`
	// VIPs are its virtual IPs by network ID.
	VIPs map[string]netip.Addr `json:",omitempty"`
	// Aliases are the extra names it has on each network, by network ID.
	Aliases map[string][]string `json:",omitempty"`
	// Ports are the ports it publishes through the routing mesh.
	Ports []IngressPort `json:",omitempty"`
	// KeepClientSource: connections the routing mesh sends to its tasks on
	// other nodes keep the client's source address (the service's label
	// ClientSourceLabel=ClientSourcePreserve), relayed instead of
	// masqueraded.
	KeepClientSource bool `json:",omitempty"`
}

// ClientSourceLabel is the service label that asks the routing mesh to keep
// clients' source addresses across nodes, with the value
// ClientSourcePreserve. Without it, connections to tasks on other nodes come
// from the node that took them (tasks on that node see the client anyway).
const (
	ClientSourceLabel    = "com.shoal.ingress.client-source"
	ClientSourcePreserve = "preserve"
)

// IngressPort is a port published on every node and balanced over the
// service's tasks, wherever they run.
type IngressPort struct {
	Protocol  string // tcp, udp or sctp
	Published uint16
	Target    uint16
}

// TaskEndpoint is the addresses one task holds, from its allocation until it
// ends.
type TaskEndpoint struct {
	ID        string
	ServiceID string
	NodeID    string
	// Slot is the task's slot (0 for a global service's: its node names it).
	Slot int `json:",omitempty"`
	// Addrs are its addresses by network ID.
	Addrs map[string]netip.Addr
	// Running: the task runs (and passed its first health check), so it
	// takes connections and its name resolves.
	Running bool `json:",omitempty"`
}
