package engineapi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/netip"

	"github.com/gin-gonic/gin"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster"
)

// swarmNetworks are the swarm's overlay networks, none on a node that is not
// a manager of a swarm (or cannot read it now): `docker network ls` still lists
// the node's own.
func (n *networkAPI) swarmNetworks(ctx context.Context) []network.Inspect {
	if n.s.cfg.Networks == nil {
		return nil
	}
	list, err := n.s.cfg.Networks.Networks(ctx)
	if err != nil {
		n.s.log.Debug("list swarm networks", "err", err)
		return nil
	}
	out := make([]network.Inspect, 0, len(list))
	for _, sn := range list {
		out = append(out, overlayInspect(sn))
	}
	return out
}

// overlayInspect is a swarm network as dockerd shows it.
func overlayInspect(sn swarm.Network) network.Inspect {
	nw := network.Inspect{Network: network.Network{
		Name: sn.Spec.Name, ID: sn.ID, Created: sn.CreatedAt, Scope: "swarm", Driver: cluster.OverlayDriver,
		EnableIPv4: true, Internal: sn.Spec.Internal, Attachable: sn.Spec.Attachable, Ingress: sn.Spec.Ingress,
		IPAM:    network.IPAM{Driver: "default", Config: []network.IPAMConfig{}},
		Options: map[string]string{},
	}}
	if sn.IPAMOptions != nil {
		if sn.IPAMOptions.Driver.Name != "" {
			nw.IPAM.Driver = sn.IPAMOptions.Driver.Name
		}
		for _, c := range sn.IPAMOptions.Configs {
			nw.IPAM.Config = append(nw.IPAM.Config, network.IPAMConfig{Subnet: c.Subnet, IPRange: c.Range, Gateway: c.Gateway})
		}
	}
	switch {
	case sn.IPAMOptions != nil && len(sn.IPAMOptions.Driver.Options) > 0:
		nw.IPAM.Options = maps.Clone(sn.IPAMOptions.Driver.Options)
	case sn.Spec.IPAMOptions != nil && len(sn.Spec.IPAMOptions.Driver.Options) > 0:
		// A network allocated before the allocation kept its options.
		nw.IPAM.Options = maps.Clone(sn.Spec.IPAMOptions.Driver.Options)
	}
	if sn.DriverState.Options != nil {
		maps.Copy(nw.Options, sn.DriverState.Options)
	}
	// dockerd shows a swarm network's labels as swarmkit holds them: none is
	// null, but for the ingress network, which the swarm creates with an empty
	// set.
	if len(sn.Spec.Labels) > 0 || sn.Spec.Ingress {
		nw.Labels = maps.Clone(orEmptyLabels(sn.Spec.Labels))
	}
	return nw
}

// createOverlay stores a new overlay network in the swarm.
func (n *networkAPI) createOverlay(c *gin.Context, req network.CreateRequest) {
	if n.s.cfg.Networks == nil {
		writeError(c, &apiError{status: http.StatusServiceUnavailable, msg: "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."})
		return
	}
	if req.EnableIPv4 != nil && !*req.EnableIPv4 {
		writeError(c, badRequest("IPv4 cannot be disabled in a Swarm scoped network"))
		return
	}
	if req.EnableIPv6 != nil && *req.EnableIPv6 {
		writeError(c, &apiError{status: http.StatusNotImplemented, msg: "IPv6 overlay networks are not supported by shoal"})
		return
	}
	if req.Scope == "local" {
		writeError(c, &apiError{status: http.StatusForbidden, msg: "cannot downgrade network scope for overlay networks"})
		return
	}
	if req.ConfigOnly || req.ConfigFrom != nil && req.ConfigFrom.Network != "" {
		writeError(c, &apiError{status: http.StatusNotImplemented, msg: "config-only networks are not supported by shoal"})
		return
	}
	cr, err := cluster.NetworkRequestFrom(req)
	if err != nil {
		writeError(c, err)
		return
	}
	if err := checkSubnets(req.IPAM); err != nil {
		writeError(c, err)
		return
	}
	id, err := n.s.cfg.Networks.CreateNetwork(c.Request.Context(), cr)
	if err != nil {
		writeError(c, err)
		return
	}
	respondJSON(c, http.StatusCreated, network.CreateResponse{ID: id, Warning: ""})
}

func orEmptyLabels(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// checkSubnets refuses what swarmkit refuses of an overlay network's IPAM
// config, in the words dockerd passes on: a gateway or range outside its
// subnet.
func checkSubnets(ipam *network.IPAM) error {
	if ipam == nil {
		return nil
	}
	for _, cfg := range ipam.Config {
		if cfg.IPRange.IsValid() && !cfg.Subnet.Contains(cfg.IPRange.Addr()) {
			return badRequest(fmt.Sprintf("rpc error: code = InvalidArgument desc = ipam configuration: subnet %s does not contain range %s", cfg.Subnet, cfg.IPRange))
		}
		if cfg.Gateway.IsValid() && !cfg.Subnet.Contains(cfg.Gateway) {
			return badRequest(fmt.Sprintf("rpc error: code = InvalidArgument desc = ipam configuration: subnet %s does not contain gateway %s", cfg.Subnet, cfg.Gateway))
		}
	}
	return nil
}

// isSwarmUnavailable reports whether err says the node has no swarm to ask.
func isSwarmUnavailable(err error) bool {
	var un interface{ Unavailable() bool }
	return errors.As(err, &un) && un.Unavailable()
}

// createBody is a network create request whose IPAM addresses are read as text,
// so that a bad one gets dockerd's words rather than a JSON decoding error.
type createBody struct {
	network.CreateRequest
	IPAM *struct {
		Driver  string
		Options map[string]string
		Config  []struct {
			Subnet, IPRange, Gateway string
		}
	}
}

// request is the create request with its addresses parsed.
func (b createBody) request() (network.CreateRequest, error) {
	req := b.CreateRequest
	if b.IPAM == nil {
		req.IPAM = nil
		return req, nil
	}
	req.IPAM = &network.IPAM{Driver: b.IPAM.Driver, Options: b.IPAM.Options}
	for _, c := range b.IPAM.Config {
		var cfg network.IPAMConfig
		var err error
		if cfg.Subnet, err = parseCIDR("subnet", c.Subnet); err != nil {
			return req, err
		}
		if cfg.IPRange, err = parseCIDR("range", c.IPRange); err != nil {
			return req, err
		}
		if c.Gateway != "" {
			if cfg.Gateway, err = netip.ParseAddr(c.Gateway); err != nil {
				if req.Driver == "overlay" {
					return req, badRequest(fmt.Sprintf("rpc error: code = InvalidArgument desc = ipam configuration: invalid gateway %s", c.Gateway))
				}
				return req, badRequest(fmt.Sprintf("Invalid gateway %s : invalid IP address", c.Gateway))
			}
		}
		req.IPAM.Config = append(req.IPAM.Config, cfg)
	}
	return req, nil
}

// parseCIDR reads an IPAM prefix ("" is none), refusing in dockerd's words.
func parseCIDR(what, s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, badRequest(fmt.Sprintf("Invalid %s %s : invalid CIDR address: %s", what, s, s))
	}
	return p, nil
}
