package engineapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster"
)

// registerServiceRoutes serves /services: create, list, inspect, update, remove, logs.
func (s *Server) registerServiceRoutes(r gin.IRouter) {
	r.POST("/services/create", s.createService)
	r.GET("/services", s.listServices)
	r.GET("/services/:id", s.inspectService)
	r.POST("/services/:id/update", s.updateService)
	r.DELETE("/services/:id", s.removeService)
	r.GET("/services/:id/logs", s.serviceLogs)
}

func (s *Server) createService(c *gin.Context) {
	var spec swarm.ServiceSpec
	if err := decodeJSONBody(c, &spec); err != nil {
		writeError(c, err)
		return
	}
	resp, err := s.cfg.Swarm.CreateService(c.Request.Context(), spec, c.GetHeader(registry.AuthHeader))
	if err != nil {
		writeError(c, err)
		return
	}
	respondJSON(c, http.StatusCreated, resp)
}

func (s *Server) listServices(c *gin.Context) {
	f, ok := queryFilters(c, "id", "label", "mode", "name", "runtime")
	if !ok {
		return
	}
	services, err := s.cfg.Swarm.Services(c.Request.Context(), queryFlag(c, "status"))
	if err != nil {
		writeError(c, err)
		return
	}
	out := make([]swarm.Service, 0, len(services))
	for _, svc := range services {
		if f.matchPrefix("id", svc.ID) && f.matchPrefix("name", svc.Spec.Name) &&
			f.matchLabels("label", svc.Spec.Labels) && f.match("mode", serviceMode(svc.Spec.Mode)) &&
			f.match("runtime", taskRuntime(svc.Spec.TaskTemplate)) {
			out = append(out, svc)
		}
	}
	respondJSON(c, http.StatusOK, out)
}

// serviceMode names a service mode as the "mode" filter does.
func serviceMode(m swarm.ServiceMode) string {
	switch {
	case m.Global != nil:
		return "global"
	case m.ReplicatedJob != nil:
		return "replicated-job"
	case m.GlobalJob != nil:
		return "global-job"
	}
	return "replicated"
}

// taskRuntime names the runtime of a task spec as the "runtime" filter does.
func taskRuntime(t swarm.TaskSpec) string {
	switch {
	case t.ContainerSpec != nil:
		return string(swarm.RuntimeContainer)
	case t.NetworkAttachmentSpec != nil:
		return string(swarm.RuntimeNetworkAttachment)
	case t.PluginSpec != nil:
		return string(swarm.RuntimePlugin)
	case t.Runtime != "":
		return string(t.Runtime)
	}
	return string(swarm.RuntimeContainer)
}

func (s *Server) inspectService(c *gin.Context) {
	svc, err := s.cfg.Swarm.Service(c.Request.Context(), c.Param("id"), queryFlag(c, "insertDefaults"))
	if err != nil {
		writeError(c, err)
		return
	}
	respondJSON(c, http.StatusOK, svc)
}

func (s *Server) updateService(c *gin.Context) {
	raw := c.Query("version")
	version, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		writeError(c, badRequest(fmt.Sprintf("invalid service version '%s': %v", raw, err)))
		return
	}
	var spec swarm.ServiceSpec
	if err := decodeJSONBody(c, &spec); err != nil {
		writeError(c, err)
		return
	}
	opts := cluster.ServiceUpdateOptions{
		EncodedRegistryAuth: c.GetHeader(registry.AuthHeader),
		RegistryAuthFrom:    c.DefaultQuery("registryAuthFrom", "spec"),
		Rollback:            c.Query("rollback"),
	}
	switch opts.RegistryAuthFrom {
	case "spec", "previous-spec":
	case "":
		opts.RegistryAuthFrom = "spec"
	default:
		writeError(c, badRequest("unsupported registryAuthFrom value"))
		return
	}
	switch opts.Rollback {
	case "", "none", "previous":
	default:
		writeError(c, badRequest("unrecognized rollback option "+opts.Rollback))
		return
	}
	resp, err := s.cfg.Swarm.UpdateService(c.Request.Context(), c.Param("id"), version, spec, opts)
	if err != nil {
		writeError(c, err)
		return
	}
	respondJSON(c, http.StatusOK, resp)
}

func (s *Server) removeService(c *gin.Context) {
	if err := s.cfg.Swarm.RemoveService(c.Request.Context(), c.Param("id")); err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusOK)
}

func (s *Server) serviceLogs(c *gin.Context) {
	q, err := parseLogQuery(c)
	if err != nil {
		writeError(c, err)
		return
	}
	ctx := c.Request.Context()
	svc, err := s.cfg.Swarm.Service(ctx, c.Param("id"), false)
	if err != nil {
		writeError(c, err)
		return
	}
	msgs, err := s.cfg.Swarm.ServiceLogs(ctx, svc.ID, q.clusterOptions())
	if err != nil {
		writeError(c, err)
		return
	}
	cs := svc.Spec.TaskTemplate.ContainerSpec
	streamSwarmLogs(c, msgs, q, cs != nil && cs.TTY)
}

// decodeJSONBody decodes the JSON request body into out, refusing other content
// types and malformed JSON with dockerd's 400 messages.
func decodeJSONBody(c *gin.Context, out any) error {
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return badRequest(fmt.Sprintf("unsupported Content-Type header (%s): must be 'application/json'", ct))
		}
	}
	if c.Request.Body == nil {
		return badRequest("invalid JSON: got EOF while reading request body")
	}
	if err := json.NewDecoder(c.Request.Body).Decode(out); err != nil {
		if errors.Is(err, io.EOF) {
			return badRequest("invalid JSON: got EOF while reading request body")
		}
		if tl := tooLarge(err); tl != nil {
			return tl
		}
		return badRequest("invalid JSON: " + strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// respondJSON answers with v encoded as dockerd encodes its responses: HTML
// characters unescaped and a trailing newline.
func respondJSON(c *gin.Context, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		writeError(c, fmt.Errorf("encode response: %w", err))
		return
	}
	c.Data(status, "application/json", buf.Bytes())
}
