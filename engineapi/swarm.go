package engineapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster"
)

// registerSwarmRoutes adds the /swarm endpoints: init, join, leave, inspect, update,
// unlock key and unlock.
func (s *Server) registerSwarmRoutes(r gin.IRouter) {
	r.POST("/swarm/init", s.swarmInit)
	r.POST("/swarm/join", s.swarmJoin)
	r.POST("/swarm/leave", s.swarmLeave)
	r.GET("/swarm", s.swarmInspect)
	r.POST("/swarm/update", s.swarmUpdate)
	r.GET("/swarm/unlockkey", s.swarmUnlockKey)
	r.POST("/swarm/unlock", s.swarmUnlock)
}

// errNoSwarm is what the swarm endpoints answer when the node is in no swarm.
func errNoSwarm() error {
	return &apiError{
		status: http.StatusServiceUnavailable,
		msg:    `This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`,
	}
}

// swarmBackend returns the control plane, or answers 503 and returns nil.
func (s *Server) swarmBackend(c *gin.Context) Swarm {
	if s.cfg.Swarm == nil {
		writeError(c, errNoSwarm())
	}
	return s.cfg.Swarm
}

// swarmInit answers POST /swarm/init with the new node's ID as a JSON string.
func (s *Server) swarmInit(c *gin.Context) {
	var req swarm.InitRequest
	if err := readOptionalJSON(c.Request, &req); err != nil {
		writeError(c, err)
		return
	}
	if err := validateAvailability(req.Availability); err != nil {
		writeError(c, err)
		return
	}
	if err := cluster.ValidateInitRequest(req, s.cfg.MinCertExpiry); err != nil {
		writeError(c, err)
		return
	}
	v := requestVersion(c)
	if versionLess(v, "1.39") {
		req.DefaultAddrPool, req.SubnetSize = nil, 0
	}
	if versionLess(v, "1.40") {
		req.DataPathPort = 0
	}
	sw := s.swarmBackend(c)
	if sw == nil {
		return
	}
	nodeID, err := sw.Init(c.Request.Context(), req)
	if err != nil {
		writeError(c, err)
		return
	}
	s.events.swarmChanged()
	c.JSON(http.StatusOK, nodeID)
}

// swarmJoin answers POST /swarm/join.
func (s *Server) swarmJoin(c *gin.Context) {
	var req swarm.JoinRequest
	if err := readOptionalJSON(c.Request, &req); err != nil {
		writeError(c, err)
		return
	}
	if err := validateAvailability(req.Availability); err != nil {
		writeError(c, err)
		return
	}
	if len(req.RemoteAddrs) == 0 {
		writeError(c, badRequest("at least 1 RemoteAddr is required to join"))
		return
	}
	if err := cluster.ValidateJoinRequest(req); err != nil {
		writeError(c, err)
		return
	}
	sw := s.swarmBackend(c)
	if sw == nil {
		return
	}
	if err := sw.Join(c.Request.Context(), req); err != nil {
		writeError(c, err)
		return
	}
	s.events.swarmChanged()
	c.Status(http.StatusOK)
}

// swarmLeave answers POST /swarm/leave?force=.
func (s *Server) swarmLeave(c *gin.Context) {
	force := queryFlag(c, "force")
	sw := s.swarmBackend(c)
	if sw == nil {
		return
	}
	if err := sw.Leave(c.Request.Context(), force); err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusOK)
}

// swarmInspect answers GET /swarm with the cluster and its join tokens.
func (s *Server) swarmInspect(c *gin.Context) {
	sw := s.swarmBackend(c)
	if sw == nil {
		return
	}
	info, err := sw.Inspect(c.Request.Context())
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, info)
}

// swarmUpdate answers POST /swarm/update?version=N with the token and key rotations.
func (s *Server) swarmUpdate(c *gin.Context) {
	var spec swarm.Spec
	if err := readOptionalJSON(c.Request, &spec); err != nil {
		writeError(c, err)
		return
	}
	raw := c.Query("version")
	version, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		writeError(c, badRequest(fmt.Sprintf("invalid swarm version '%s': %v", raw, err)))
		return
	}
	if err := cluster.ValidateSwarmSpec(spec, s.cfg.MinCertExpiry); err != nil {
		writeError(c, err)
		return
	}
	var flags cluster.UpdateFlags
	for _, f := range []struct {
		name string
		dst  *bool
	}{
		{"rotateWorkerToken", &flags.RotateWorkerToken},
		{"rotateManagerToken", &flags.RotateManagerToken},
		{"rotateManagerUnlockKey", &flags.RotateManagerUnlockKey},
	} {
		value := c.Query(f.name)
		if value == "" {
			continue
		}
		on, err := strconv.ParseBool(value)
		if err != nil {
			writeError(c, badRequest(fmt.Sprintf("invalid value for %s: %s", f.name, value)))
			return
		}
		*f.dst = on
	}
	sw := s.swarmBackend(c)
	if sw == nil {
		return
	}
	if err := sw.Update(c.Request.Context(), version, spec, flags); err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusOK)
}

// swarmUnlockKey answers GET /swarm/unlockkey.
func (s *Server) swarmUnlockKey(c *gin.Context) {
	sw := s.swarmBackend(c)
	if sw == nil {
		return
	}
	key, err := sw.UnlockKey(c.Request.Context())
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, swarm.UnlockKeyResponse{UnlockKey: key})
}

// swarmUnlock answers POST /swarm/unlock: a locked manager opens with the
// swarm's unlock key.
func (s *Server) swarmUnlock(c *gin.Context) {
	var req swarm.UnlockRequest
	if err := readOptionalJSON(c.Request, &req); err != nil {
		writeError(c, err)
		return
	}
	sw := s.swarmBackend(c)
	if sw == nil {
		return
	}
	if err := sw.Unlock(c.Request.Context(), req.UnlockKey); err != nil {
		writeError(c, err)
		return
	}
	s.events.swarmChanged()
	c.Status(http.StatusOK)
}

// validateAvailability refuses an availability Docker does not know ("" is the default).
func validateAvailability(a swarm.NodeAvailability) error {
	switch a {
	case "", swarm.NodeAvailabilityActive, swarm.NodeAvailabilityPause, swarm.NodeAvailabilityDrain:
		return nil
	}
	return badRequest(fmt.Sprintf("invalid availability %q, only active, pause and drain are supported", a))
}

// readOptionalJSON reads one JSON value from the request body into out, as dockerd
// does for the swarm endpoints: an empty body leaves out untouched, anything but one
// JSON value is refused.
func readOptionalJSON(r *http.Request, out any) error {
	if r.Body == nil || r.ContentLength == 0 {
		return nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return badRequest(fmt.Sprintf("unsupported Content-Type header (%s): must be 'application/json'", ct))
		}
	}
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(out); err != nil {
		if errors.Is(err, io.EOF) {
			if r.ContentLength > 0 {
				return badRequest("invalid JSON: got EOF while reading request body")
			}
			return nil
		}
		if tl := tooLarge(err); tl != nil {
			return tl
		}
		return badRequest("invalid JSON: " + err.Error())
	}
	if dec.More() {
		return badRequest("unexpected content after JSON")
	}
	return nil
}
