package container

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/netip"
	"slices"

	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// bridgeNetwork is the endpoint name of a container on the node's bridge: Docker
// calls its default network "bridge", whatever the host's interface is named.
const bridgeNetwork = "bridge"

// endpoints are the container's network endpoints as inspect and `docker ps` show
// them; a container with no address has none.
func endpoints(rec record) map[string]*network.EndpointSettings {
	out := map[string]*network.EndpointSettings{}
	for _, n := range rec.Networks {
		ep := &network.EndpointSettings{
			NetworkID: n.NetworkID, EndpointID: networkEndpointID(rec.ID, n.NetworkID),
			IPAddress: n.Address.Addr(), IPPrefixLen: n.Address.Bits(), Gateway: n.Gateway,
			IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: n.Address.Addr()},
			DNSNames:   dnsNames(rec),
		}
		if mac, err := net.ParseMAC(n.MAC); err == nil {
			ep.MacAddress = network.HardwareAddr(mac)
		}
		out[n.Name] = ep
	}
	if rec.HostConfig.NetworkMode.IsHost() {
		// The node's own namespace: an endpoint with no address of its own.
		out[string(rec.HostConfig.NetworkMode)] = &network.EndpointSettings{NetworkID: rec.NetworkID, EndpointID: EndpointID(rec.ID)}
		return out
	}
	// On overlay networks, the bridge is the container's way out of the swarm,
	// as Docker's docker_gwbridge, which dockerd does not list either.
	if rec.IPAddress == "" || len(rec.Networks) > 0 {
		return out
	}
	ep := &network.EndpointSettings{
		NetworkID:   rec.NetworkID,
		EndpointID:  EndpointID(rec.ID),
		IPPrefixLen: rec.IPPrefixLen,
	}
	if a, err := netip.ParseAddr(rec.IPAddress); err == nil {
		ep.IPAddress = a
	}
	if g, err := netip.ParseAddr(rec.Gateway); err == nil {
		ep.Gateway = g
	}
	if mac, err := net.ParseMAC(rec.MacAddress); err == nil {
		ep.MacAddress = network.HardwareAddr(mac)
	}
	name := string(rec.HostConfig.NetworkMode)
	if name == "" || name == "default" {
		name = bridgeNetwork
	}
	out[name] = ep
	return out
}

// dnsNames are the names a container answers to on a swarm network, as moby 28
// lists them: its name, its short ID and its hostname, each once. A service's
// aliases are the service's names, not the container's: they are not listed.
func dnsNames(rec record) []string {
	var out []string
	for _, n := range []string{rec.Name, shortContainerID(rec.ID), rec.Config.Hostname} {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func shortContainerID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// networkEndpointID is the stable 64-hex ID of a container's endpoint on a
// network other than the bridge.
func networkEndpointID(containerID, networkID string) string {
	sum := sha256.Sum256([]byte("shoal-endpoint:" + containerID + "/" + networkID))
	return hex.EncodeToString(sum[:])
}

// EndpointID is the stable 64-hex ID of a container's endpoint on the node's
// bridge, as inspect and the network API show it.
func EndpointID(containerID string) string {
	sum := sha256.Sum256([]byte("shoal-endpoint:" + containerID))
	return hex.EncodeToString(sum[:])
}

// sandboxID is a stable 64-hex ID for the network namespace at path; "" for none.
func sandboxID(netnsPath string) string {
	if netnsPath == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("sandbox/" + netnsPath))
	return hex.EncodeToString(sum[:])
}

// LegacyInspectResponse is a container as `docker inspect` shows it to clients of
// API versions before 1.52: with the bridge endpoint's fields repeated at the top of
// NetworkSettings, where scripts still read {{.NetworkSettings.IPAddress}}. moby's
// API module dropped those fields; this type puts them back in the JSON.
type LegacyInspectResponse struct {
	ctypes.InspectResponse
	NetworkSettings *LegacyNetworkSettings
}

// LegacyNetworkSettings is NetworkSettings with the deprecated top-level fields of
// the default network's endpoint.
type LegacyNetworkSettings struct {
	ctypes.NetworkSettings
	Bridge                 string
	HairpinMode            bool
	LinkLocalIPv6Address   string
	LinkLocalIPv6PrefixLen int
	SecondaryIPAddresses   []LegacyAddress
	SecondaryIPv6Addresses []LegacyAddress
	EndpointID             string
	Gateway                string
	GlobalIPv6Address      string
	GlobalIPv6PrefixLen    int
	IPAddress              string
	IPPrefixLen            int
	IPv6Gateway            string
	MacAddress             string
}

// LegacyAddress is an address with its prefix length, as the deprecated
// SecondaryIPAddresses list holds them.
type LegacyAddress struct {
	Addr      string
	PrefixLen int
}

// WithLegacyNetworkFields returns resp with the deprecated top-level
// NetworkSettings fields filled from its "bridge" endpoint, as dockerd fills them
// for API versions before 1.52.
func WithLegacyNetworkFields(resp ctypes.InspectResponse) LegacyInspectResponse {
	out := LegacyInspectResponse{InspectResponse: resp}
	if resp.NetworkSettings == nil {
		return out
	}
	ns := &LegacyNetworkSettings{NetworkSettings: *resp.NetworkSettings}
	if ep := resp.NetworkSettings.Networks[bridgeNetwork]; ep != nil {
		ns.EndpointID = ep.EndpointID
		ns.IPPrefixLen = ep.IPPrefixLen
		ns.GlobalIPv6PrefixLen = ep.GlobalIPv6PrefixLen
		ns.MacAddress = ep.MacAddress.String()
		if ep.IPAddress.IsValid() {
			ns.IPAddress = ep.IPAddress.String()
		}
		if ep.Gateway.IsValid() {
			ns.Gateway = ep.Gateway.String()
		}
		if ep.GlobalIPv6Address.IsValid() {
			ns.GlobalIPv6Address = ep.GlobalIPv6Address.String()
		}
		if ep.IPv6Gateway.IsValid() {
			ns.IPv6Gateway = ep.IPv6Gateway.String()
		}
	}
	out.NetworkSettings = ns
	return out
}
