package engineapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"runtime"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/moby/moby/api/types/container"
)

// statsInterval is how often `docker stats` gets a sample, as from dockerd; a
// non-streaming request that wants CPU deltas waits this long between its two.
const statsInterval = time.Second

// containerTop answers `docker top`: GET /containers/{id}/top?ps_args=...
func (s *Server) containerTop(c *gin.Context) {
	top, err := s.cfg.Containers.Top(c.Request.Context(), c.Param("id"), c.Query("ps_args"))
	if err != nil {
		writeError(c, err)
		return
	}
	respondJSON(c, http.StatusOK, top)
}

// containerStats answers `docker stats`: GET /containers/{id}/stats. With
// stream (the default) it sends one sample a second, each carrying the previous
// one's CPU counters, until the client goes away or the container stops. With
// stream=0 it sends one sample, taken after a first one a second earlier so
// that the CPU percentage can be computed, unless one-shot=1 (API >= 1.41) asks
// for it at once. A container that is not running gives one sample with only
// its ID and name, as dockerd does.
func (s *Server) containerStats(c *gin.Context) {
	ctx := c.Request.Context()
	stream := true
	if _, ok := c.GetQuery("stream"); ok {
		stream = queryFlag(c, "stream")
	}
	oneShot := !versionLess(requestVersion(c), "1.41") && queryFlag(c, "one-shot")
	ins, err := s.cfg.Containers.Inspect(ctx, c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	sampler := statsSampler{ctrs: s.cfg.Containers, id: ins.ID,
		idle: container.StatsResponse{ID: ins.ID, Name: ins.Name, OSType: runtime.GOOS}}
	if stream {
		s.streamStats(c, sampler)
		return
	}
	if ins.State == nil || !ins.State.Running {
		respondJSON(c, http.StatusOK, sampler.idle)
		return
	}
	st, _, err := sampler.pair(ctx, !oneShot)
	if err != nil {
		writeError(c, err)
		return
	}
	respondJSON(c, http.StatusOK, st)
}

// streamStats writes a sample every statsInterval until the client goes away or
// the container is no longer running (after one last, empty, sample).
func (s *Server) streamStats(c *gin.Context, sampler statsSampler) {
	ctx := c.Request.Context()
	c.Header("Content-Type", "application/json")
	c.Status(http.StatusOK)
	c.Writer.WriteHeaderNow()
	c.Writer.Flush()
	enc := json.NewEncoder(c.Writer)
	enc.SetEscapeHTML(false)
	tick := time.NewTicker(statsInterval)
	defer tick.Stop()
	var prev container.StatsResponse
	for {
		st, running, err := sampler.sample(ctx)
		stopped := err == nil && !running
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// As dockerd's collector: a failed sample is an empty one.
			s.log.Warn("sample container stats", "id", sampler.id, "err", err)
			st = sampler.idle
		}
		st.PreRead, st.PreCPUStats = prev.Read, prev.CPUStats
		if err := enc.Encode(st); err != nil {
			return
		}
		c.Writer.Flush()
		if stopped {
			return
		}
		prev = st
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// statsSampler takes samples of one container's stats.
type statsSampler struct {
	ctrs Containers
	id   string
	idle container.StatsResponse // what a container that is not running gives
}

// sample takes one sample; a container that is not (or no longer) running gives
// the idle sample and running false.
func (p statsSampler) sample(ctx context.Context) (container.StatsResponse, bool, error) {
	st, err := p.ctrs.Stats(ctx, p.id)
	var cf conflict
	if errors.As(err, &cf) && cf.Conflict() {
		return p.idle, false, nil
	}
	if err != nil {
		return container.StatsResponse{}, false, err
	}
	return st, true, nil
}

// pair takes one sample, or, when withPrevious, two samples statsInterval
// apart, the second carrying the first's read time and CPU counters.
func (p statsSampler) pair(ctx context.Context, withPrevious bool) (container.StatsResponse, bool, error) {
	first, running, err := p.sample(ctx)
	if err != nil || !running || !withPrevious {
		return first, running, err
	}
	select {
	case <-ctx.Done():
		return container.StatsResponse{}, false, ctx.Err()
	case <-time.After(statsInterval):
	}
	st, running, err := p.sample(ctx)
	if err != nil {
		return st, running, err
	}
	st.PreRead, st.PreCPUStats = first.Read, first.CPUStats
	return st, running, nil
}
