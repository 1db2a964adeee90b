package engineapi

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/moby/moby/api/types/swarm"
)

// registerNodeRoutes adds the /nodes endpoints: list, inspect, update and remove.
func (s *Server) registerNodeRoutes(r gin.IRouter) {
	r.GET("/nodes", s.nodeList)
	r.GET("/nodes/:id", s.nodeInspect)
	r.POST("/nodes/:id/update", s.nodeUpdate)
	r.DELETE("/nodes/:id", s.nodeRemove)
}

// nodeList answers GET /nodes with the nodes that pass the filters.
func (s *Server) nodeList(c *gin.Context) {
	f, err := parseFilters(c.Query("filters"))
	if err != nil {
		writeError(c, err)
		return
	}
	match, err := newNodeFilter(f)
	if err != nil {
		writeError(c, err)
		return
	}
	sw := s.swarmBackend(c)
	if sw == nil {
		return
	}
	nodes, err := sw.Nodes(c.Request.Context())
	if err != nil {
		writeError(c, err)
		return
	}
	out := make([]swarm.Node, 0, len(nodes))
	for _, n := range nodes {
		if match(n) {
			out = append(out, n)
		}
	}
	c.JSON(http.StatusOK, out)
}

// nodeInspect answers GET /nodes/{id}; id is an ID, a unique ID prefix or a hostname.
func (s *Server) nodeInspect(c *gin.Context) {
	sw := s.swarmBackend(c)
	if sw == nil {
		return
	}
	n, err := sw.Node(c.Request.Context(), s.nodeRef(c))
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, n)
}

// nodeUpdate answers POST /nodes/{id}/update?version=N with a new node spec.
func (s *Server) nodeUpdate(c *gin.Context) {
	var spec swarm.NodeSpec
	if err := readOptionalJSON(c.Request, &spec); err != nil {
		writeError(c, err)
		return
	}
	raw := c.Query("version")
	version, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		writeError(c, badRequest(fmt.Sprintf("invalid node version '%s': %v", raw, err)))
		return
	}
	switch spec.Role {
	case swarm.NodeRoleManager, swarm.NodeRoleWorker:
	default:
		writeError(c, badRequest(fmt.Sprintf("invalid Role: %q", spec.Role)))
		return
	}
	switch spec.Availability {
	case swarm.NodeAvailabilityActive, swarm.NodeAvailabilityPause, swarm.NodeAvailabilityDrain:
	default:
		writeError(c, badRequest(fmt.Sprintf("invalid Availability: %q", spec.Availability)))
		return
	}
	sw := s.swarmBackend(c)
	if sw == nil {
		return
	}
	if err := sw.UpdateNode(c.Request.Context(), s.nodeRef(c), version, spec); err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusOK)
}

// nodeRemove answers DELETE /nodes/{id}?force=.
func (s *Server) nodeRemove(c *gin.Context) {
	force := queryFlag(c, "force")
	sw := s.swarmBackend(c)
	if sw == nil {
		return
	}
	if err := sw.RemoveNode(c.Request.Context(), s.nodeRef(c), force); err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusOK)
}

// nodeRef is the node the request names. "self" is this node (as the docker CLI
// accepts for inspect and ps, and for update here too), unless a node has that name.
func (s *Server) nodeRef(c *gin.Context) string {
	ref := c.Param("id")
	if ref != "self" {
		return ref
	}
	ctx := c.Request.Context()
	if _, err := s.cfg.Swarm.Node(ctx, ref); err == nil {
		return ref
	}
	if id := s.swarmInfo(ctx).NodeID; id != "" {
		return id
	}
	return ref
}

// newNodeFilter builds the predicate of `docker node ls --filter` with swarmkit's
// semantics: id and name are prefixes (of the ID and the hostname), label matches the
// engine labels and node.label the node's own labels ("key" or "key=value", all must
// hold), role is the node's role, membership is accepted for every node shoal lists.
func newNodeFilter(f filters) (func(swarm.Node) bool, error) {
	if err := f.validate("id", "label", "node.label", "membership", "name", "role"); err != nil {
		return nil, err
	}
	roles := map[swarm.NodeRole]bool{}
	for _, r := range f["role"] {
		switch role := swarm.NodeRole(strings.ToLower(r)); role {
		case swarm.NodeRoleManager, swarm.NodeRoleWorker:
			roles[role] = true
		default:
			if r != "" {
				return nil, badRequest(fmt.Sprintf("Invalid role filter: '%s'", r))
			}
		}
	}
	wantAccepted := !f.has("membership")
	for _, m := range f["membership"] {
		switch strings.ToLower(m) {
		case "accepted":
			wantAccepted = true
		case "pending", "":
		default:
			return nil, badRequest(fmt.Sprintf("Invalid membership filter: '%s'", m))
		}
	}
	engineLabels := labelConstraints(f["label"])
	nodeLabels := labelConstraints(f["node.label"])
	return func(n swarm.Node) bool {
		return wantAccepted &&
			f.matchPrefix("id", n.ID) &&
			f.matchPrefix("name", n.Description.Hostname) &&
			(len(roles) == 0 || roles[n.Spec.Role]) &&
			matchLabelConstraints(n.Description.Engine.Labels, engineLabels) &&
			matchLabelConstraints(n.Spec.Labels, nodeLabels)
	}, nil
}

// labelConstraints turns "key" and "key=value" filter values into a map; an empty
// value means any value.
func labelConstraints(values []string) map[string]string {
	m := make(map[string]string, len(values))
	for _, v := range values {
		k, val, _ := strings.Cut(v, "=")
		m[k] = val
	}
	return m
}

// matchLabelConstraints reports whether labels has every key of want, with the
// wanted value where one is given.
func matchLabelConstraints(labels, want map[string]string) bool {
	for k, v := range want {
		got, ok := labels[k]
		if !ok || (v != "" && got != v) {
			return false
		}
	}
	return true
}
