package cluster

import (
	"net"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// minCertExpiry is the shortest node certificate lifetime swarmkit accepts.
const minCertExpiry = time.Hour

// ValidateInitRequest refuses a `swarm init` dockerd refuses, before the node
// changes: a data path address that is not an IP or an interface, and a spec
// ValidateSwarmSpec refuses.
func ValidateInitRequest(req swarm.InitRequest) error {
	if err := validateDataPathAddr(req.DataPathAddr); err != nil {
		return err
	}
	return ValidateSwarmSpec(req.Spec)
}

// ValidateJoinRequest refuses a `swarm join` whose data path address dockerd
// refuses.
func ValidateJoinRequest(req swarm.JoinRequest) error {
	return validateDataPathAddr(req.DataPathAddr)
}

// ValidateSwarmSpec refuses a swarm spec swarmkit refuses: a node certificate
// lifetime under an hour (0 means the default).
func ValidateSwarmSpec(spec swarm.Spec) error {
	if e := spec.CAConfig.NodeCertExpiry; e != 0 && e < minCertExpiry {
		return errInvalidf("rpc error: code = InvalidArgument desc = minimum certificate expiry time is: %s", minCertExpiry)
	}
	return nil
}

// validateDataPathAddr accepts "", a non-zero IP address or an interface name,
// as dockerd does.
func validateDataPathAddr(addr string) error {
	if addr == "" {
		return nil
	}
	if ip := net.ParseIP(addr); ip != nil && !ip.IsUnspecified() {
		return nil
	}
	if _, err := net.InterfaceByName(addr); err == nil {
		return nil
	}
	return errInvalidf("data path address must be a non-zero IP address or network interface (without a port number)")
}
