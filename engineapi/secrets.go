package engineapi

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/moby/moby/api/types/swarm"
)

// registerSecretRoutes serves /secrets and /configs: create, list, inspect,
// update (labels only) and remove. A secret's data is never in an answer.
func (s *Server) registerSecretRoutes(r gin.IRouter) {
	r.POST("/secrets/create", s.createSecret)
	r.GET("/secrets", s.listSecrets)
	r.GET("/secrets/:id", s.inspectSecret)
	r.POST("/secrets/:id/update", s.updateSecret)
	r.DELETE("/secrets/:id", s.removeSecret)
	r.POST("/configs/create", s.createConfig)
	r.GET("/configs", s.listConfigs)
	r.GET("/configs/:id", s.inspectConfig)
	r.POST("/configs/:id/update", s.updateConfig)
	r.DELETE("/configs/:id", s.removeConfig)
}

// secretFilters are the filters of `docker secret ls`: id (prefix), name
// (prefix), names (exact), label. configFilters, of `docker config ls`, are
// the same but names, which dockerd refuses for configs.
var (
	secretFilters = []string{"id", "label", "name", "names"}
	configFilters = []string{"id", "label", "name"}
)

func matchPayload(f filters, id string, a swarm.Annotations) bool {
	return f.matchPrefix("id", id) && f.matchPrefix("name", a.Name) &&
		f.match("names", a.Name) && f.matchLabels("label", a.Labels)
}

// secrets is the backend of the secret and config routes; nil answers as a node
// outside a swarm does.
func (s *Server) secrets(c *gin.Context) Secrets {
	if s.cfg.Secrets == nil {
		writeError(c, errNoSwarm())
	}
	return s.cfg.Secrets
}

func (s *Server) createSecret(c *gin.Context) {
	var spec swarm.SecretSpec
	if err := decodeJSONBody(c, &spec); err != nil {
		writeError(c, err)
		return
	}
	b := s.secrets(c)
	if b == nil {
		return
	}
	id, err := b.CreateSecret(c.Request.Context(), spec)
	if err != nil {
		writeError(c, err)
		return
	}
	respondJSON(c, http.StatusCreated, swarm.SecretCreateResponse{ID: id})
}

func (s *Server) listSecrets(c *gin.Context) {
	f, ok := queryFilters(c, secretFilters...)
	if !ok {
		return
	}
	b := s.secrets(c)
	if b == nil {
		return
	}
	list, err := b.Secrets(c.Request.Context())
	if err != nil {
		writeError(c, err)
		return
	}
	out := make([]swarm.Secret, 0, len(list))
	for _, sec := range list {
		if matchPayload(f, sec.ID, sec.Spec.Annotations) {
			sec.Spec.Data = nil // the backend never returns it; this answer never shows it
			out = append(out, sec)
		}
	}
	respondJSON(c, http.StatusOK, out)
}

func (s *Server) inspectSecret(c *gin.Context) {
	b := s.secrets(c)
	if b == nil {
		return
	}
	sec, err := b.Secret(c.Request.Context(), c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	sec.Spec.Data = nil
	respondJSON(c, http.StatusOK, sec)
}

func (s *Server) updateSecret(c *gin.Context) {
	version, ok := queryVersion(c, "secret")
	if !ok {
		return
	}
	var spec swarm.SecretSpec
	if err := decodeJSONBody(c, &spec); err != nil {
		writeError(c, err)
		return
	}
	b := s.secrets(c)
	if b == nil {
		return
	}
	if err := b.UpdateSecret(c.Request.Context(), c.Param("id"), version, spec); err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusOK)
}

func (s *Server) removeSecret(c *gin.Context) {
	b := s.secrets(c)
	if b == nil {
		return
	}
	if err := b.RemoveSecret(c.Request.Context(), c.Param("id")); err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) createConfig(c *gin.Context) {
	var spec swarm.ConfigSpec
	if err := decodeJSONBody(c, &spec); err != nil {
		writeError(c, err)
		return
	}
	b := s.secrets(c)
	if b == nil {
		return
	}
	id, err := b.CreateConfig(c.Request.Context(), spec)
	if err != nil {
		writeError(c, err)
		return
	}
	respondJSON(c, http.StatusCreated, swarm.ConfigCreateResponse{ID: id})
}

func (s *Server) listConfigs(c *gin.Context) {
	f, ok := queryFilters(c, configFilters...)
	if !ok {
		return
	}
	b := s.secrets(c)
	if b == nil {
		return
	}
	list, err := b.Configs(c.Request.Context())
	if err != nil {
		writeError(c, err)
		return
	}
	out := make([]swarm.Config, 0, len(list))
	for _, cfg := range list {
		if matchPayload(f, cfg.ID, cfg.Spec.Annotations) {
			out = append(out, cfg)
		}
	}
	respondJSON(c, http.StatusOK, out)
}

func (s *Server) inspectConfig(c *gin.Context) {
	b := s.secrets(c)
	if b == nil {
		return
	}
	cfg, err := b.Config(c.Request.Context(), c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	respondJSON(c, http.StatusOK, cfg)
}

func (s *Server) updateConfig(c *gin.Context) {
	version, ok := queryVersion(c, "config")
	if !ok {
		return
	}
	var spec swarm.ConfigSpec
	if err := decodeJSONBody(c, &spec); err != nil {
		writeError(c, err)
		return
	}
	b := s.secrets(c)
	if b == nil {
		return
	}
	if err := b.UpdateConfig(c.Request.Context(), c.Param("id"), version, spec); err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusOK)
}

func (s *Server) removeConfig(c *gin.Context) {
	b := s.secrets(c)
	if b == nil {
		return
	}
	if err := b.RemoveConfig(c.Request.Context(), c.Param("id")); err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// queryVersion is the ?version= of a secret's or config's update, in
// dockerd's words when it is not a number (which, for these two kinds, name
// neither the value nor the parser's error); on error it has answered and ok
// is false.
func queryVersion(c *gin.Context, kind string) (uint64, bool) {
	v, err := strconv.ParseUint(c.Query("version"), 10, 64)
	if err != nil {
		writeError(c, badRequest(fmt.Sprintf("invalid %s version", kind)))
		return 0, false
	}
	return v, true
}
