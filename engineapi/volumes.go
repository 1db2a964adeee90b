package engineapi

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/moby/moby/api/types/volume"

	vol "github.com/shoal-project/shoal/runtime/volume"
)

// registerVolumeRoutes serves /volumes: the node's local volumes.
func (s *Server) registerVolumeRoutes(r gin.IRouter) {
	r.GET("/volumes", s.listVolumes)
	r.POST("/volumes/create", s.createVolume)
	r.POST("/volumes/prune", s.pruneVolumes)
	r.GET("/volumes/:name", s.inspectVolume)
	r.DELETE("/volumes/:name", s.removeVolume)
}

// volumeStore is Config.Volumes, or a 503 when this node has none.
func (s *Server) volumeStore(c *gin.Context) (Volumes, bool) {
	if s.cfg.Volumes == nil {
		writeError(c, &apiError{status: http.StatusServiceUnavailable, msg: "volumes are not available on this node"})
		return nil, false
	}
	return s.cfg.Volumes, true
}

func (s *Server) listVolumes(c *gin.Context) {
	ctx := c.Request.Context()
	f, err := parseFilters(c.Query("filters"))
	if err != nil {
		writeError(c, err)
		return
	}
	match, err := newVolumeQuery(f)
	if err != nil {
		writeError(c, err)
		return
	}
	resp := volume.ListResponse{Volumes: []volume.Volume{}, Warnings: []string{}}
	if s.cfg.Volumes == nil {
		respondJSON(c, http.StatusOK, resp)
		return
	}
	list, err := s.cfg.Volumes.List(ctx)
	if err != nil {
		writeError(c, fmt.Errorf("list volumes: %w", err))
		return
	}
	for _, v := range list {
		if match(v) {
			resp.Volumes = append(resp.Volumes, v.API())
		}
	}
	respondJSON(c, http.StatusOK, resp)
}

// newVolumeQuery parses the filters of `docker volume ls` (dangling, name,
// driver, label) into a predicate. name values are regular expressions matched
// anywhere in the name, as dockerd matches them.
func newVolumeQuery(f filters) (func(vol.Volume) bool, error) {
	if err := f.validate("dangling", "name", "driver", "label"); err != nil {
		return nil, err
	}
	var dangling *bool
	if vs := f["dangling"]; len(vs) > 0 {
		var want bool
		switch strings.ToLower(strings.Join(vs, ",")) {
		case "true", "1":
			want = true
		case "false", "0":
		default:
			return nil, badRequest(fmt.Sprintf("Invalid filter 'dangling=%s'", strings.Join(vs, ",")))
		}
		dangling = &want
	}
	var names []*regexp.Regexp
	for _, v := range f["name"] {
		if re, err := regexp.Compile(v); err == nil {
			names = append(names, re)
		}
	}
	return func(v vol.Volume) bool {
		if dangling != nil && (len(v.UsedBy) == 0) != *dangling {
			return false
		}
		if f.has("name") && !anyMatch(names, v.Name) {
			return false
		}
		return f.match("driver", vol.DriverName) && f.matchLabels("label", v.Labels)
	}, nil
}

func anyMatch(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

func (s *Server) inspectVolume(c *gin.Context) {
	vs, ok := s.volumeStore(c)
	if !ok {
		return
	}
	v, err := vs.Get(c.Request.Context(), c.Param("name"))
	if err != nil {
		writeError(c, err)
		return
	}
	respondJSON(c, http.StatusOK, v.API())
}

// createVolume answers `docker volume create`: only the local driver, without
// driver options, exists on shoal.
func (s *Server) createVolume(c *gin.Context) {
	vs, ok := s.volumeStore(c)
	if !ok {
		return
	}
	var req volume.CreateRequest
	if err := decodeJSONBody(c, &req); err != nil {
		writeError(c, err)
		return
	}
	if req.Driver != "" && req.Driver != vol.DriverName {
		msg := fmt.Sprintf("error looking up volume plugin %s: plugin %q not found", req.Driver, req.Driver)
		if req.Name != "" {
			msg = "create " + req.Name + ": " + msg // as dockerd words it
		}
		writeError(c, notFoundError(msg))
		return
	}
	if req.ClusterVolumeSpec != nil {
		writeError(c, badRequest("cluster volumes are not supported: shoal has no CSI volume plugins"))
		return
	}
	v, err := vs.Create(c.Request.Context(), req.Name, req.Labels, req.DriverOpts)
	if err != nil {
		writeError(c, err)
		return
	}
	respondJSON(c, http.StatusCreated, v.API())
}

func (s *Server) removeVolume(c *gin.Context) {
	vs, ok := s.volumeStore(c)
	if !ok {
		return
	}
	if err := vs.Remove(c.Request.Context(), c.Param("name"), queryFlag(c, "force")); err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// pruneVolumes answers `docker volume prune`: unused anonymous volumes, or every
// unused volume with the all filter (the default before API 1.42).
func (s *Server) pruneVolumes(c *gin.Context) {
	vs, ok := s.volumeStore(c)
	if !ok {
		return
	}
	f, err := parseFilters(c.Query("filters"))
	if err != nil {
		writeError(c, err)
		return
	}
	opts, err := volumePruneOptions(f, versionLess(requestVersion(c), "1.42"))
	if err != nil {
		writeError(c, err)
		return
	}
	rep, err := vs.Prune(c.Request.Context(), opts)
	if err != nil {
		writeError(c, err)
		return
	}
	respondJSON(c, http.StatusOK, rep)
}

// volumePruneOptions parses the prune filters (label, label!, all); before API
// 1.42 prune meant all unused volumes.
func volumePruneOptions(f filters, legacy bool) (vol.PruneOptions, error) {
	if err := f.validate("label", "label!", "all"); err != nil {
		return vol.PruneOptions{}, err
	}
	opts := vol.PruneOptions{All: legacy}
	switch all := f["all"]; {
	case len(all) > 1:
		return opts, badRequest(fmt.Sprintf("invalid filter 'all=%s': only one value is expected", all))
	case len(all) == 1:
		v, err := strconv.ParseBool(all[0])
		if err != nil {
			return opts, badRequest(fmt.Sprintf("invalid filter 'all': %v", err))
		}
		opts.All = v
	}
	if f.has("label") || f.has("label!") {
		opts.Match = func(v vol.Volume) bool {
			if !f.matchLabels("label", v.Labels) {
				return false
			}
			return !f.has("label!") || !f.matchLabels("label!", v.Labels)
		}
	}
	return opts, nil
}

// volumeUsage is every volume with its size and reference count, for
// `docker system df`.
func (s *Server) volumeUsage(ctx context.Context) ([]volume.Volume, error) {
	if s.cfg.Volumes == nil {
		return nil, nil
	}
	list, err := s.cfg.Volumes.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	out := make([]volume.Volume, 0, len(list))
	for _, v := range list {
		size, err := s.cfg.Volumes.Size(ctx, v.Name)
		if err != nil {
			size = -1
		}
		api := v.API()
		api.UsageData = &volume.UsageData{Size: size, RefCount: int64(len(v.UsedBy))}
		out = append(out, api)
	}
	return out, nil
}
