package engineapi

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/netplane/bridge"
	ctr "github.com/shoal-project/shoal/runtime/container"
)

// The predefined networks of a node, as dockerd names them. Overlay networks (and
// with them Docker's swarm "ingress" network) come in a later shoal version: published
// ports are balanced by nftables on each node, not by an overlay, so no ingress
// network is listed.
const (
	bridgeNetwork = bridge.NetworkName
	hostNetwork   = "host"
	noneNetwork   = "none"
)

// Refusals of the network operations shoal does not have; 501 as dockerd answers
// what it does not implement.
var (
	errNoConnect = &apiError{status: http.StatusNotImplemented,
		msg: "shoal runs containers only as swarm tasks: they cannot be connected to or disconnected from networks by hand"}
)

// networkAPI serves /networks. created is when the predefined networks came up with
// the server, shown as their Created time.
type networkAPI struct {
	s       *Server
	created time.Time
}

// registerNetworkRoutes serves /networks: the node's predefined networks (bridge,
// host, none), read only, with Docker's refusals for everything that would change them.
func (s *Server) registerNetworkRoutes(r gin.IRouter) {
	n := &networkAPI{s: s, created: time.Now().UTC()}
	r.GET("/networks", n.list)
	r.POST("/networks/create", n.create)
	r.POST("/networks/prune", n.prune)
	r.GET("/networks/:id", n.inspect)
	r.DELETE("/networks/:id", n.remove)
	r.POST("/networks/:id/connect", n.refuseConnect)
	r.POST("/networks/:id/disconnect", n.refuseConnect)
}

// networkID is the stable ID of a predefined network (netplane/bridge derives it,
// so that containers' endpoints carry the same one).
func networkID(name string) string { return bridge.NetworkID(name) }

// isPredefined reports whether name is one of the networks every node has.
func isPredefined(name string) bool {
	return name == bridgeNetwork || name == hostNetwork || name == noneNetwork
}

// predefined is the node's networks, sorted by name, without their containers.
func (n *networkAPI) predefined() []network.Inspect {
	base := func(name, driver string) network.Inspect {
		return network.Inspect{Network: network.Network{
			Name: name, ID: networkID(name), Created: n.created, Scope: "local", Driver: driver,
			EnableIPv4: true, IPAM: network.IPAM{Driver: "default", Config: []network.IPAMConfig{}},
			Options: map[string]string{}, Labels: map[string]string{},
		}, Containers: map[string]network.EndpointResource{}}
	}
	var out []network.Inspect
	if br := n.s.cfg.Bridge; br != nil {
		info := br.Info()
		nw := base(bridgeNetwork, "bridge")
		nw.IPAM.Config = []network.IPAMConfig{{Subnet: info.Subnet, Gateway: info.Gateway}}
		nw.Options = map[string]string{
			"com.docker.network.bridge.name":                 info.BridgeName,
			"com.docker.network.bridge.default_bridge":       "true",
			"com.docker.network.bridge.enable_ip_masquerade": "true",
		}
		out = append(out, nw)
	}
	return append(out, base(hostNetwork, "host"), base(noneNetwork, "null"))
}

func (n *networkAPI) list(c *gin.Context) {
	f, err := parseFilters(c.Query("filters"))
	if err != nil {
		writeError(c, err)
		return
	}
	match, err := newNetworkQuery(f)
	if err != nil {
		writeError(c, err)
		return
	}
	out := []network.Summary{}
	for _, nw := range n.all(c.Request.Context()) {
		if match(nw) {
			out = append(out, network.Summary{Network: nw.Network})
		}
	}
	respondJSON(c, http.StatusOK, out)
}

// newNetworkQuery parses the filters of `docker network ls` into a predicate, with
// dockerd's rules: name and id are regular expressions matched anywhere, driver and
// scope match exactly, predefined networks are never dangling and are "builtin".
func newNetworkQuery(f filters) (func(network.Inspect) bool, error) {
	if err := f.validate("dangling", "driver", "id", "label", "name", "scope", "type"); err != nil {
		return nil, err
	}
	var dangling *bool
	switch vs := f["dangling"]; {
	case len(vs) > 1:
		return nil, badRequest(`got more than one value for filter key "dangling"`)
	case len(vs) == 1:
		var want bool
		switch vs[0] {
		case "1", "true":
			want = true
		case "0", "false":
		default:
			return nil, badRequest(`invalid value for filter 'dangling', must be "true" (or "1"), or "false" (or "0")`)
		}
		dangling = &want
	}
	for _, t := range f["type"] {
		if t != "builtin" && t != "custom" {
			return nil, badRequest(fmt.Sprintf("invalid filter: 'type'='%s'", t))
		}
	}
	names, ids := compileAll(f["name"]), compileAll(f["id"])
	return func(nw network.Inspect) bool {
		if (f.has("name") && !anyMatch(names, nw.Name)) || (f.has("id") && !anyMatch(ids, nw.ID)) {
			return false
		}
		if !f.match("driver", nw.Driver) || !f.match("scope", nw.Scope) || !f.matchLabels("label", nw.Labels) {
			return false
		}
		builtin := isPredefined(nw.Name)
		if dangling != nil && *dangling == (builtin || len(nw.Containers) > 0) {
			return false
		}
		kind := "custom"
		if builtin {
			kind = "builtin"
		}
		return !f.has("type") || slices.Contains(f["type"], kind)
	}, nil
}

// compileAll compiles the filter values that are valid regular expressions; dockerd
// ignores the others.
func compileAll(values []string) []*regexp.Regexp {
	var out []*regexp.Regexp
	for _, v := range values {
		if re, err := regexp.Compile(v); err == nil {
			out = append(out, re)
		}
	}
	return out
}

// find resolves a network by ID, name or unique ID prefix, as dockerd does. scope
// narrows the search as the CLI's `--scope` (and `service create`, which asks for
// swarm networks) does: every predefined network is local, but the host and
// bridge networks, which a service may join, are found in the swarm scope too,
// as dockerd finds swarmkit's copies of them.
func (n *networkAPI) find(ctx context.Context, term, scope string) (network.Inspect, error) {
	switch scope {
	case "", "local", "swarm", "global":
	default:
		return network.Inspect{}, badRequest("invalid scope value: " + scope)
	}
	var candidates []network.Inspect
	for _, nw := range n.all(ctx) {
		if scope == "" || nw.Scope == scope || (scope == "swarm" && (nw.Name == hostNetwork || nw.Name == bridgeNetwork)) {
			candidates = append(candidates, nw)
		}
	}
	var byPrefix []network.Inspect
	for _, nw := range candidates {
		if nw.ID == term || nw.Name == term {
			return nw, nil
		}
		if term != "" && strings.HasPrefix(nw.ID, term) {
			byPrefix = append(byPrefix, nw)
		}
	}
	switch len(byPrefix) {
	case 0:
		return network.Inspect{}, notFoundError(fmt.Sprintf("network %s not found", term))
	case 1:
		return byPrefix[0], nil
	}
	return network.Inspect{}, badRequest(fmt.Sprintf("network %s is ambiguous (%d matches found based on ID prefix)", term, len(byPrefix)))
}

// inspect answers `docker network inspect`; verbose only adds swarm service details
// in dockerd, which predefined networks do not have.
func (n *networkAPI) inspect(c *gin.Context) {
	nw, err := n.find(c.Request.Context(), c.Param("id"), c.Query("scope"))
	if err != nil {
		writeError(c, err)
		return
	}
	if (nw.Name == bridgeNetwork || nw.Name == hostNetwork || nw.Scope == "swarm") && n.s.cfg.Containers != nil {
		if nw.Containers, err = n.localEndpoints(c.Request.Context(), nw.Name); err != nil {
			writeError(c, err)
			return
		}
		// A swarm network no container of this node is on is swarmkit's
		// object alone in dockerd, with no endpoints: null.
		if nw.Scope == "swarm" && len(nw.Containers) == 0 {
			nw.Containers = nil
		}
	}
	respondJSON(c, http.StatusOK, nw)
}

// localEndpoints is every running container of this node attached to the
// network called name, keyed by container ID (on the bridge: the endpoint with
// the bridge's network ID, or named after the "default" network mode).
func (n *networkAPI) localEndpoints(ctx context.Context, name string) (map[string]network.EndpointResource, error) {
	list, err := n.s.cfg.Containers.List(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("list containers on network %s: %w", name, err)
	}
	bits := 0
	if br := n.s.cfg.Bridge; br != nil && name == bridgeNetwork {
		bits = br.Info().Subnet.Bits()
	}
	out := map[string]network.EndpointResource{}
	for _, sum := range list {
		if sum.NetworkSettings == nil {
			continue
		}
		for epName, ep := range sum.NetworkSettings.Networks {
			onBridge := name == bridgeNetwork && ep != nil &&
				(epName == "default" || ep.NetworkID == networkID(bridgeNetwork))
			// On the host network a container has no address of its own.
			onHost := name == hostNetwork && epName == name
			if ep == nil || (!ep.IPAddress.Is4() && !onHost) || (epName != name && !onBridge) {
				continue
			}
			res := network.EndpointResource{Name: containerName(sum.Names, sum.ID),
				EndpointID: ep.EndpointID, MacAddress: ep.MacAddress}
			if res.EndpointID == "" {
				res.EndpointID = ctr.EndpointID(sum.ID)
			}
			prefixLen := ep.IPPrefixLen
			if prefixLen == 0 {
				prefixLen = bits
			}
			if ep.IPAddress.Is4() {
				res.IPv4Address = netip.PrefixFrom(ep.IPAddress, prefixLen)
			}
			out[sum.ID] = res
		}
	}
	return out, nil
}

// containerName is a container's name without the leading slash, or its short ID.
func containerName(names []string, id string) string {
	if len(names) > 0 {
		return strings.TrimPrefix(names[0], "/")
	}
	return shortID(id)
}

// create refuses `docker network create` with dockerd's answers for predefined
// names and single-instance drivers, and says why for the drivers shoal lacks.
func (n *networkAPI) create(c *gin.Context) {
	var body createBody
	if err := decodeJSONBody(c, &body); err != nil {
		writeError(c, err)
		return
	}
	req, err := body.request()
	if err != nil {
		writeError(c, err)
		return
	}
	if isPredefined(req.Name) {
		writeError(c, &apiError{status: http.StatusForbidden,
			msg: fmt.Sprintf("operation is not permitted on predefined %s network", req.Name)})
		return
	}
	switch driver := req.Driver; driver {
	case "overlay":
		n.createOverlay(c, req)
	case "", "bridge", "macvlan", "ipvlan":
		if driver == "" {
			driver = "bridge"
		}
		writeError(c, &apiError{status: http.StatusNotImplemented, msg: fmt.Sprintf(
			"network driver %q is not supported: shoal's task containers use the node's predefined bridge network", driver)})
	case "host", "null":
		writeError(c, &apiError{status: http.StatusForbidden,
			msg: fmt.Sprintf("only one instance of %q network is allowed", driver)})
	default:
		writeError(c, notFoundError(fmt.Sprintf("plugin %q not found", driver)))
	}
}

// remove answers `docker network rm`: a swarm network nothing uses goes; the
// node's predefined networks never do.
func (n *networkAPI) remove(c *gin.Context) {
	nw, err := n.find(c.Request.Context(), c.Param("id"), "")
	if err != nil {
		writeError(c, err)
		return
	}
	if nw.Scope == "swarm" {
		if err := n.s.cfg.Networks.RemoveNetwork(c.Request.Context(), nw.ID); err != nil {
			writeError(c, err)
			return
		}
		c.Status(http.StatusNoContent)
		return
	}
	writeError(c, &apiError{status: http.StatusForbidden,
		msg: fmt.Sprintf("%s is a pre-defined network and cannot be removed", nw.Name)})
}

// refuseConnect answers `docker network connect|disconnect` for a known network:
// a task's networks are its service's to decide.
func (n *networkAPI) refuseConnect(c *gin.Context) {
	if _, err := n.find(c.Request.Context(), c.Param("id"), ""); err != nil {
		writeError(c, err)
		return
	}
	writeError(c, errNoConnect)
}

// prune answers `docker network prune` (and the network part of `docker system
// prune`): the swarm's overlay networks that nothing uses (never ingress),
// filtered by until, label and label!; predefined networks are never pruned.
func (n *networkAPI) prune(c *gin.Context) {
	f, ok := queryFilters(c, "until", "label", "label!")
	if !ok {
		return
	}
	until, err := pruneUntil(f, time.Now())
	if err != nil {
		writeError(c, err)
		return
	}
	rep := network.PruneReport{NetworksDeleted: []string{}}
	if n.s.cfg.Networks != nil {
		labels := pruneLabels(f)
		keep := func(sn swarm.Network) bool {
			return (!until.IsZero() && !sn.CreatedAt.Before(until)) || (labels != nil && !labels(sn.Spec.Labels))
		}
		removed, err := n.s.cfg.Networks.PruneNetworks(c.Request.Context(), keep)
		if err != nil && !isSwarmUnavailable(err) {
			writeError(c, err)
			return
		}
		rep.NetworksDeleted = append(rep.NetworksDeleted, removed...)
	}
	respondJSON(c, http.StatusOK, rep)
}

// all is the node's predefined networks and the swarm's overlay networks.
func (n *networkAPI) all(ctx context.Context) []network.Inspect {
	return append(n.predefined(), n.swarmNetworks(ctx)...)
}
