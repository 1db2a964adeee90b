package engineapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"github.com/gin-gonic/gin"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"

	img "github.com/shoal-project/shoal/runtime/image"
)

// registerImageRoutes serves /images and /distribution. Image names contain
// slashes ("localhost:5000/team/app"), so each method has one catch-all route that
// dispatches on the path's last element (gin allows no static sibling next to a
// catch-all).
func (s *Server) registerImageRoutes(r gin.IRouter) {
	r.GET("/images/*path", s.getImages)
	r.POST("/images/*path", s.postImages)
	r.DELETE("/images/*path", s.removeImage)
	r.GET("/distribution/*path", s.distributionInspect)
	r.POST("/auth", s.login)
}

// login answers `docker login`: the credentials are checked against their
// registry; nothing is stored on the daemon (the CLI keeps them).
func (s *Server) login(c *gin.Context) {
	var auth registry.AuthConfig
	if err := decodeJSONBody(c, &auth); err != nil {
		writeError(c, err)
		return
	}
	if err := s.cfg.Images.Login(c.Request.Context(), &auth); err != nil {
		writeError(c, err)
		return
	}
	respondJSON(c, http.StatusOK, registry.AuthResponse{Status: "Login Succeeded"})
}

// notFoundPage is gin's answer for a path no route serves.
func notFoundPage(c *gin.Context) {
	c.JSON(http.StatusNotFound, gin.H{"message": "page not found"})
}

// imagePath splits "/<name>/<action>" into the image name and the action.
func imagePath(c *gin.Context) (name, action string) {
	p := strings.TrimPrefix(c.Param("path"), "/")
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

func (s *Server) getImages(c *gin.Context) {
	switch name, action := imagePath(c); {
	case name == "" && action == "json":
		s.listImages(c)
	case name != "" && action == "json":
		s.inspectImage(c, name)
	case name != "" && action == "history":
		s.imageHistory(c, name)
	default:
		notFoundPage(c)
	}
}

func (s *Server) postImages(c *gin.Context) {
	switch name, action := imagePath(c); {
	case name == "" && action == "load":
		s.loadImages(c)
	case name == "" && action == "create":
		s.pullImage(c)
	case name == "" && action == "prune":
		s.pruneImages(c)
	case name != "" && action == "tag":
		s.tagImage(c, name)
	default:
		notFoundPage(c)
	}
}

func (s *Server) listImages(c *gin.Context) {
	ctx := c.Request.Context()
	f, err := parseFilters(c.Query("filters"))
	if err != nil {
		writeError(c, err)
		return
	}
	q, err := s.newImageQuery(ctx, f)
	if err != nil {
		writeError(c, err)
		return
	}
	images, err := s.cfg.Images.List(ctx)
	if err != nil {
		writeError(c, err)
		return
	}
	out := make([]image.Summary, 0, len(images))
	for _, im := range images {
		if sum, ok := q.filter(im); ok {
			out = append(out, sum)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created > out[j].Created })
	if versionLess(requestVersion(c), "1.44") {
		respondJSON(c, http.StatusOK, legacyImageSummaries(out))
		return
	}
	respondJSON(c, http.StatusOK, out)
}

// legacyImageSummary is an image as clients before API 1.44 read it: with
// VirtualSize, which that version dropped, equal to Size (as Docker Engine
// writes it for them).
type legacyImageSummary struct {
	image.Summary
	VirtualSize int64
}

func legacyImageSummaries(images []image.Summary) []legacyImageSummary {
	out := make([]legacyImageSummary, len(images))
	for i, im := range images {
		out[i] = legacyImageSummary{Summary: im, VirtualSize: im.Size}
	}
	return out
}

// imageQuery is a parsed `docker images` filter.
type imageQuery struct {
	f             filters
	dangling      *bool
	before, since *img.Image
}

func (s *Server) newImageQuery(ctx context.Context, f filters) (imageQuery, error) {
	q := imageQuery{f: f}
	if err := f.validate("before", "dangling", "label", "reference", "since"); err != nil {
		return q, err
	}
	if vs := f["dangling"]; len(vs) > 0 {
		var want bool
		switch strings.Join(vs, ",") {
		case "true", "1":
			want = true
		case "false", "0":
		default:
			return q, badRequest(fmt.Sprintf("Invalid filter 'dangling=%s'", strings.Join(vs, ",")))
		}
		q.dangling = &want
	}
	for _, v := range f["reference"] {
		if _, err := path.Match(v, ""); err != nil {
			return q, badRequest(fmt.Sprintf("invalid reference filter %q: %v", v, err))
		}
	}
	for _, pos := range []struct {
		key string
		dst **img.Image
	}{{"before", &q.before}, {"since", &q.since}} {
		for _, v := range f[pos.key] {
			im, err := s.cfg.Images.Get(ctx, v)
			if err != nil {
				return q, err
			}
			*pos.dst = &im
		}
	}
	return q, nil
}

// filter returns the summary of im when it passes the filters. As in dockerd, a
// reference filter also narrows the summary's RepoTags to the tags it matched.
func (q imageQuery) filter(im img.Image) (image.Summary, bool) {
	sum := im.Summary()
	if q.dangling != nil && *q.dangling != (len(sum.RepoTags) == 0) {
		return sum, false
	}
	if !q.f.matchLabels("label", sum.Labels) {
		return sum, false
	}
	if q.before != nil && (im.ID == q.before.ID || !im.Created.Before(q.before.Created)) {
		return sum, false
	}
	if q.since != nil && (im.ID == q.since.ID || !im.Created.After(q.since.Created)) {
		return sum, false
	}
	if patterns := q.f["reference"]; len(patterns) > 0 {
		var tags []string
		for _, t := range sum.RepoTags {
			if referenceMatches(patterns, t) {
				tags = append(tags, t)
			}
		}
		if len(tags) == 0 {
			return sum, false
		}
		sum.RepoTags = tags
	}
	return sum, true
}

// referenceMatches reports whether the tag "name:tag" matches one of the glob
// patterns, against its familiar "name:tag" or its bare name.
func referenceMatches(patterns []string, tag string) bool {
	ref, err := reference.ParseNormalizedNamed(tag)
	if err != nil {
		return false
	}
	for _, p := range patterns {
		if ok, _ := reference.FamiliarMatch(p, ref); ok {
			return true
		}
	}
	return false
}

func (s *Server) inspectImage(c *gin.Context, name string) {
	im, err := s.cfg.Images.Get(c.Request.Context(), name)
	if err != nil {
		writeError(c, err)
		return
	}
	respondJSON(c, http.StatusOK, im.Inspect())
}

// imageHistory answers `docker image history`.
func (s *Server) imageHistory(c *gin.Context, name string) {
	im, err := s.cfg.Images.Get(c.Request.Context(), name)
	if err != nil {
		writeError(c, err)
		return
	}
	history, err := im.History()
	if err != nil {
		writeError(c, err)
		return
	}
	respondJSON(c, http.StatusOK, history)
}

// jsonStream writes the newline-delimited JSON messages of load and pull, sending
// the 200 header with the first message and flushing after each.
type jsonStream struct {
	c       *gin.Context
	started bool
}

func (j *jsonStream) send(v any) {
	if !j.started {
		j.c.Writer.Header().Set("Content-Type", "application/json")
		j.c.Writer.WriteHeader(http.StatusOK)
		j.started = true
	}
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	_, _ = j.c.Writer.Write(append(b, '\n'))
	j.c.Writer.Flush()
}

// streamError is dockerd's error line in a JSON stream: new clients read
// errorDetail, old ones error.
type streamError struct {
	Detail  jsonstream.Error `json:"errorDetail"`
	Message string           `json:"error"`
}

func (j *jsonStream) sendError(err error) {
	j.send(streamError{Detail: jsonstream.Error{Message: err.Error()}, Message: err.Error()})
}

// loadImages stores the images of a `docker save` or OCI archive. Like dockerd it
// answers 200 at once and reports a failure in the stream.
func (s *Server) loadImages(c *gin.Context) {
	out := &jsonStream{c: c}
	refs, err := s.cfg.Images.Load(c.Request.Context(), c.Request.Body)
	for _, ref := range refs {
		msg := "Loaded image: " + ref + "\n"
		if strings.HasPrefix(ref, "sha256:") {
			msg = "Loaded image ID: " + ref + "\n"
		}
		out.send(jsonstream.Message{Stream: msg})
	}
	if err != nil {
		out.sendError(err)
		return
	}
	if !out.started {
		out.send(jsonstream.Message{Stream: "No images found in the archive\n"})
	}
}

// pullImage pulls fromImage:tag, streaming progress. A failure before any progress
// is an ordinary error response; after, an error line (the 200 is already sent).
func (s *Server) pullImage(c *gin.Context) {
	from := c.Query("fromImage")
	if from == "" {
		if c.Query("fromSrc") != "" {
			writeError(c, errImportUnsupported)
			return
		}
		writeError(c, badRequest("fromImage is required"))
		return
	}
	ref, err := pullReference(from, c.Query("tag"))
	if err != nil {
		writeError(c, err)
		return
	}
	out := &jsonStream{c: c}
	_, err = s.cfg.Images.Pull(c.Request.Context(), ref, img.DecodeAuth(c.GetHeader(registry.AuthHeader)),
		func(m jsonstream.Message) { out.send(m) })
	switch {
	case err == nil:
	case out.started:
		out.sendError(err)
	default:
		writeError(c, err)
	}
}

// errImportUnsupported answers `docker import`: shoal has no image import.
var errImportUnsupported = &apiError{status: http.StatusNotImplemented, msg: "shoal does not support importing images: use docker load"}

// pullReference joins fromImage and tag (a tag or a digest) into the familiar
// reference to pull; no tag means latest.
func pullReference(from, tag string) (string, error) {
	named, err := reference.ParseNormalizedNamed(from)
	if err != nil {
		return "", badRequest(fmt.Sprintf("invalid reference format: %s", from))
	}
	switch {
	case tag == "":
		named = reference.TagNameOnly(named)
	case strings.Contains(tag, ":"):
		d, err := digest.Parse(tag)
		if err != nil {
			return "", badRequest(fmt.Sprintf("invalid digest %q: %v", tag, err))
		}
		dgst, err := reference.WithDigest(reference.TrimNamed(named), d)
		if err != nil {
			return "", badRequest(fmt.Sprintf("invalid digest %q: %v", tag, err))
		}
		named = dgst
	default:
		tagged, err := reference.WithTag(reference.TrimNamed(named), tag)
		if err != nil {
			return "", badRequest(fmt.Sprintf("invalid tag %q: %v", tag, err))
		}
		named = tagged
	}
	return reference.FamiliarString(named), nil
}

func (s *Server) tagImage(c *gin.Context, name string) {
	repo, tag := c.Query("repo"), c.Query("tag")
	if repo == "" {
		writeError(c, badRequest("repository name must have at least one component"))
		return
	}
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		writeError(c, badRequest(fmt.Sprintf("Error parsing reference: %q is not a valid repository/tag: %v", repo, err)))
		return
	}
	if _, ok := named.(reference.Canonical); ok {
		writeError(c, badRequest("refusing to create a tag with a digest reference"))
		return
	}
	if tag != "" {
		tagged, err := reference.WithTag(reference.TrimNamed(named), tag)
		if err != nil {
			writeError(c, badRequest(fmt.Sprintf("Error parsing reference: %q is not a valid repository/tag: %v", repo+":"+tag, err)))
			return
		}
		named = tagged
	} else {
		named = reference.TagNameOnly(named)
	}
	if err := s.cfg.Images.Tag(c.Request.Context(), name, reference.FamiliarString(named)); err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusCreated)
}

func (s *Server) removeImage(c *gin.Context) {
	ctx := c.Request.Context()
	name := strings.TrimPrefix(c.Param("path"), "/")
	if name == "" {
		notFoundPage(c)
		return
	}
	force := queryFlag(c, "force")
	im, err := s.cfg.Images.Get(ctx, name)
	if err != nil {
		writeError(c, err)
		return
	}
	if err := s.checkImageUnused(ctx, name, im, force); err != nil {
		writeError(c, err)
		return
	}
	resp, err := s.cfg.Images.Remove(ctx, name, force)
	if err != nil {
		writeError(c, err)
		return
	}
	if resp == nil {
		resp = []image.DeleteResponse{}
	}
	respondJSON(c, http.StatusOK, resp)
}

// checkImageUnused refuses to delete an image a container uses. Untagging one of
// several tags by name is always allowed: the image stays.
//
// Unlike dockerd, force does not untag an image a stopped container uses (the store
// cannot untag without deleting the last tag), so that is refused as well.
func (s *Server) checkImageUnused(ctx context.Context, name string, im img.Image, force bool) error {
	if s.cfg.Containers == nil {
		return nil
	}
	list, err := s.cfg.Containers.List(ctx, true)
	if err != nil {
		return fmt.Errorf("list containers using image %s: %w", name, err)
	}
	var users []img.ContainerUse
	for _, ct := range list {
		if ct.ImageID == im.ID {
			users = append(users, img.ContainerUse{ID: ct.ID, Running: ct.State == "running" || ct.State == "restarting" || ct.State == "paused"})
		}
	}
	return img.CheckInUse(name, im, users, force)
}

// shortID is the 12-hex-digit form docker prints.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func (s *Server) distributionInspect(c *gin.Context) {
	name, action := imagePath(c)
	if name == "" || action != "json" {
		notFoundPage(c)
		return
	}
	info, err := s.cfg.Images.Distribution(c.Request.Context(), name, img.DecodeAuth(c.GetHeader(registry.AuthHeader)))
	if err != nil {
		writeError(c, err)
		return
	}
	respondJSON(c, http.StatusOK, info)
}
