// Package nodenet names the node-local networks a service may attach its
// tasks to, as Docker's swarm does: the predefined "host" and "bridge"
// networks every node has. They are not swarm networks (no store object, no
// addresses, no virtual IPs): a service names one by name or by the ID the
// network API shows, and its spec keeps the ID.
//
// A task on the host network runs in the node's own network namespace; a
// task on the bridge network is what every task without a swarm network
// already is: on the node's bridge.
package nodenet

import (
	"slices"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/netplane/bridge"
)

// The predefined networks a service may name.
const (
	Host   = "host"
	Bridge = bridge.NetworkName
)

// ID is the ID of the node-local network named name (the network API's).
func ID(name string) string { return bridge.NetworkID(name) }

// Resolve returns the ID of the node-local network ref names, by name or by
// full ID, and whether it names one.
func Resolve(ref string) (string, bool) {
	for _, name := range []string{Host, Bridge} {
		if ref == name || ref == ID(name) {
			return ID(name), true
		}
	}
	return "", false
}

// IsNodeLocal reports whether id is the ID of a node-local network.
func IsNodeLocal(id string) bool { return id == ID(Host) || id == ID(Bridge) }

// UsesHost reports whether a task with spec runs on the host network.
func UsesHost(spec swarm.TaskSpec) bool {
	return slices.ContainsFunc(spec.Networks, func(na swarm.NetworkAttachmentConfig) bool { return na.Target == ID(Host) })
}

// SwarmNetworks are the attachments of spec to swarm networks: all but the
// node-local ones.
func SwarmNetworks(spec swarm.TaskSpec) []swarm.NetworkAttachmentConfig {
	var out []swarm.NetworkAttachmentConfig
	for _, na := range spec.Networks {
		if !IsNodeLocal(na.Target) {
			out = append(out, na)
		}
	}
	return out
}
