package engineapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/image"

	ctr "github.com/shoal-project/shoal/runtime/container"
	img "github.com/shoal-project/shoal/runtime/image"
)

// registerPauseAndPruneRoutes serves docker pause/unpause and the prune
// endpoints `docker system prune` calls (POST /images/prune is dispatched by
// postImages, which owns the /images catch-all; /networks/prune is served by
// the networks API). shoal has no builder: /build/prune reports nothing freed.
func (s *Server) registerPauseAndPruneRoutes(r gin.IRouter) {
	r.POST("/containers/:id/pause", s.pauseContainer)
	r.POST("/containers/:id/unpause", s.unpauseContainer)
	r.POST("/containers/prune", s.pruneContainers)
	r.POST("/build/prune", s.pruneBuildCache)
}

func (s *Server) pauseContainer(c *gin.Context) {
	if err := s.cfg.Containers.Pause(c.Request.Context(), c.Param("id")); err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) unpauseContainer(c *gin.Context) {
	if err := s.cfg.Containers.Unpause(c.Request.Context(), c.Param("id")); err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// pruneContainers answers `docker container prune`: every container that is
// not running, filtered by until, label and label!.
func (s *Server) pruneContainers(c *gin.Context) {
	f, ok := queryFilters(c, "until", "label", "label!")
	if !ok {
		return
	}
	until, err := pruneUntil(f, time.Now())
	if err != nil {
		writeError(c, err)
		return
	}
	rep, err := s.cfg.Containers.Prune(c.Request.Context(), ctr.PruneOptions{Until: until, Match: pruneLabels(f)})
	if err != nil {
		writeError(c, err)
		return
	}
	if rep.ContainersDeleted == nil {
		rep.ContainersDeleted = []string{}
	}
	respondJSON(c, http.StatusOK, rep)
}

// pruneImages answers `docker image prune`: dangling images (dangling=true, the
// default) or every image (dangling=false, -a) that no container uses, filtered
// by until, label and label!.
func (s *Server) pruneImages(c *gin.Context) {
	ctx := c.Request.Context()
	f, err := parseFilters(c.Query("filters"))
	if err != nil {
		writeError(c, err)
		return
	}
	opts, err := imagePruneOptions(f, time.Now())
	if err != nil {
		writeError(c, err)
		return
	}
	if s.cfg.Containers != nil {
		list, err := s.cfg.Containers.List(ctx, true)
		if err != nil {
			writeError(c, fmt.Errorf("prune images: list containers: %w", err))
			return
		}
		used := map[string]bool{}
		for _, ct := range list {
			used[ct.ImageID] = true
		}
		opts.InUse = func(id string) bool { return used[id] }
	}
	rep, err := s.cfg.Images.Prune(ctx, opts)
	if err != nil {
		writeError(c, err)
		return
	}
	if rep.ImagesDeleted == nil {
		rep.ImagesDeleted = []image.DeleteResponse{}
	}
	respondJSON(c, http.StatusOK, rep)
}

// imagePruneOptions parses the image prune filters.
func imagePruneOptions(f filters, now time.Time) (img.PruneOptions, error) {
	var opts img.PruneOptions
	if err := f.validate("dangling", "until", "label", "label!"); err != nil {
		return opts, err
	}
	switch d := f["dangling"]; {
	case len(d) > 1:
		return opts, badRequest(fmt.Sprintf("invalid filter 'dangling=%s': only one value is expected", d))
	case len(d) == 1:
		dangling, err := strconv.ParseBool(d[0])
		if err != nil {
			return opts, badRequest(fmt.Sprintf("invalid filter 'dangling=%s'", d[0]))
		}
		opts.All = !dangling
	}
	until, err := pruneUntil(f, now)
	if err != nil {
		return opts, err
	}
	opts.Until, opts.Match = until, pruneLabels(f)
	return opts, nil
}

// pruneBuildCache answers `docker builder prune` and the build cache step of
// `docker system prune`: shoal builds nothing, so there is no cache.
func (s *Server) pruneBuildCache(c *gin.Context) {
	respondJSON(c, http.StatusOK, build.CachePruneReport{CachesDeleted: []string{}})
}

// pruneUntil reads the until filter: a timestamp, or a duration before now.
func pruneUntil(f filters, now time.Time) (time.Time, error) {
	vs := f["until"]
	switch {
	case len(vs) == 0:
		return time.Time{}, nil
	case len(vs) > 1:
		return time.Time{}, badRequest("more than one until filter specified")
	}
	t, err := parseEventTime(vs[0], now)
	if err != nil {
		return time.Time{}, badRequest(err.Error())
	}
	return t, nil
}

// pruneLabels evaluates label (all must hold) and label! (not all may hold) as
// dockerd's prune does; nil when neither is given.
func pruneLabels(f filters) func(map[string]string) bool {
	if !f.has("label") && !f.has("label!") {
		return nil
	}
	return func(labels map[string]string) bool {
		if !f.matchLabels("label", labels) {
			return false
		}
		return !f.has("label!") || !f.matchLabels("label!", labels)
	}
}
