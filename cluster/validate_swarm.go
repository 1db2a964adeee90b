package cluster

import (
	"net"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// MinCertExpiry is the shortest node certificate lifetime swarmkit accepts,
// and shoal by default. A daemon started with --min-cert-expiry accepts less,
// so that a lab can watch certificates renew within seconds.
const MinCertExpiry = time.Hour

// ValidateInitRequest refuses a `swarm init` dockerd refuses, before the node
// changes: a data path address that is not an IP or an interface, and a spec
// ValidateSwarmSpec refuses.
func ValidateInitRequest(req swarm.InitRequest, minCertExpiry time.Duration) error {
	if err := validateDataPathAddr(req.DataPathAddr); err != nil {
		return err
	}
	return ValidateSwarmSpec(req.Spec, minCertExpiry)
}

// ValidateJoinRequest refuses a `swarm join` whose data path address dockerd
// refuses.
func ValidateJoinRequest(req swarm.JoinRequest) error {
	return validateDataPathAddr(req.DataPathAddr)
}

// checkListenAddr refuses an init or join without a listen address, as dockerd
// does once it knows the node is in no swarm (the CLI always sends one,
// 0.0.0.0:2377 by default).
func checkListenAddr(addr string) error {
	if addr == "" {
		return errInvalidf(`invalid ListenAddr "": invalid empty address`)
	}
	return nil
}

// ValidateSwarmSpec refuses a swarm spec swarmkit refuses: a node certificate
// lifetime (0 means the default) under minCertExpiry, itself MinCertExpiry
// when zero.
func ValidateSwarmSpec(spec swarm.Spec, minCertExpiry time.Duration) error {
	if minCertExpiry <= 0 {
		minCertExpiry = MinCertExpiry
	}
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
