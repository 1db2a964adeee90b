package engineapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/moby/moby/api/types/container"

	ctr "github.com/shoal-project/shoal/runtime/container"
)

// pathStatHeader carries a container.PathStat (JSON, base64) on archive answers.
const pathStatHeader = "X-Docker-Container-Path-Stat"

// registerArchiveRoutes serves docker cp: stat (HEAD), copy out (GET) and copy
// in (PUT) of /containers/{id}/archive.
func (s *Server) registerArchiveRoutes(r gin.IRouter) {
	r.HEAD("/containers/:id/archive", s.statContainerPath)
	r.GET("/containers/:id/archive", s.getContainerArchive)
	r.PUT("/containers/:id/archive", s.putContainerArchive)
}

// archivePath is the required path query parameter.
func archivePath(c *gin.Context) (string, bool) {
	p := c.Query("path")
	if p == "" {
		writeError(c, badRequest("bad parameter: 'path' cannot be empty"))
		return "", false
	}
	if strings.ContainsRune(p, 0) {
		writeError(c, badRequest("bad parameter: 'path' cannot contain a NUL byte"))
		return "", false
	}
	return p, true
}

func setPathStat(c *gin.Context, st container.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode path stat: %w", err)
	}
	c.Header(pathStatHeader, base64.StdEncoding.EncodeToString(b))
	return nil
}

func (s *Server) statContainerPath(c *gin.Context) {
	p, ok := archivePath(c)
	if !ok {
		return
	}
	st, err := s.cfg.Containers.StatPath(c.Request.Context(), c.Param("id"), p)
	if err == nil {
		err = setPathStat(c, st)
	}
	if err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusOK)
}

func (s *Server) getContainerArchive(c *gin.Context) {
	p, ok := archivePath(c)
	if !ok {
		return
	}
	rc, st, err := s.cfg.Containers.ArchivePath(c.Request.Context(), c.Param("id"), p)
	if err != nil {
		writeError(c, err)
		return
	}
	defer rc.Close()
	if err := setPathStat(c, st); err != nil {
		writeError(c, err)
		return
	}
	c.Header("Content-Type", "application/x-tar")
	c.Status(http.StatusOK)
	if _, err := io.Copy(c.Writer, rc); err != nil {
		// The status is sent: the client sees a truncated archive.
		s.log.Warn("send container archive", "container", c.Param("id"), "path", p, "err", err)
	}
}

func (s *Server) putContainerArchive(c *gin.Context) {
	p, ok := archivePath(c)
	if !ok {
		return
	}
	opts := ctr.ExtractOptions{
		NoOverwriteDirNonDir: queryFlag(c, "noOverwriteDirNonDir"),
		CopyUIDGID:           queryFlag(c, "copyUIDGID"),
	}
	if err := s.cfg.Containers.ExtractToDir(c.Request.Context(), c.Param("id"), p, c.Request.Body, opts); err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusOK)
}

// archiveRoute matches the docker cp route, whose PUT body is an archive of any size.
var archiveRoute = regexp.MustCompile(`^/containers/[^/]+/archive$`)
