package image

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	imagetypes "github.com/moby/moby/api/types/image"
)

// Image is one stored image.
type Image struct {
	ID          string   // "sha256:<config digest hex>"
	RepoTags    []string // "busybox:latest" (familiar form, docker.io/library/ stripped)
	RepoDigests []string // "busybox@sha256:..." when known (pulled)
	Created     time.Time
	Size        int64 // sum of LayerSizes
	Config      dockerspec.DockerOCIImage
	DiffIDs     []string
	// LayerSizes are the sizes of the unpacked layers, by DiffIDs index, counted as
	// dockerd's overlay2 driver counts them: file sizes, a hard-linked file once.
	LayerSizes []int64

	lastTagTime time.Time
}

// Summary returns the image as `GET /images/json` lists it.
func (i Image) Summary() imagetypes.Summary {
	var created int64
	if !i.Created.IsZero() {
		created = i.Created.Unix()
	}
	return imagetypes.Summary{
		Containers:  -1,
		Created:     created,
		ID:          i.ID,
		Labels:      nonNilMap(i.Config.Config.Labels),
		RepoDigests: nonNilSlice(i.RepoDigests),
		RepoTags:    nonNilSlice(i.RepoTags),
		SharedSize:  -1,
		Size:        i.Size,
	}
}

// Inspect returns the image as `GET /images/{name}/json` (docker image inspect)
// reports it.
func (i Image) Inspect() imagetypes.InspectResponse {
	cfg := i.Config.Config
	resp := imagetypes.InspectResponse{
		ID:           i.ID,
		RepoTags:     nonNilSlice(i.RepoTags),
		RepoDigests:  nonNilSlice(i.RepoDigests),
		Author:       i.Config.Author,
		Config:       &cfg,
		Architecture: i.Config.Architecture,
		Variant:      i.Config.Variant,
		Os:           i.Config.OS,
		OsVersion:    i.Config.OSVersion,
		Size:         i.Size,
		RootFS:       imagetypes.RootFS{Type: "layers", Layers: append([]string(nil), i.DiffIDs...)},
		Metadata:     imagetypes.Metadata{LastTagTime: i.lastTagTime},
	}
	if !i.Created.IsZero() {
		resp.Created = i.Created.UTC().Format(time.RFC3339Nano)
	}
	if n := len(i.Config.History); n > 0 {
		resp.Comment = i.Config.History[n-1].Comment
	}
	return resp
}

// History returns the steps that built the image as `GET
// /images/{name}/history` (docker image history) reports them: newest first,
// each with the size of the layer it made (0 for a step that made none). The
// newest carries the image's ID and tags; the older ones "<missing>", as
// dockerd shows an image whose parent images it does not keep (a pulled or
// loaded one). The error is an image whose history names more layers than it
// has.
func (i Image) History() ([]imagetypes.HistoryResponseItem, error) {
	out := make([]imagetypes.HistoryResponseItem, len(i.Config.History))
	layer := 0
	for n, h := range i.Config.History {
		item := imagetypes.HistoryResponseItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment}
		if h.Created != nil {
			item.Created = h.Created.Unix()
		}
		if !h.EmptyLayer {
			if layer >= len(i.DiffIDs) {
				return nil, fmt.Errorf("history of %s: too many non-empty layers in History section", i.ID)
			}
			if layer < len(i.LayerSizes) {
				item.Size = i.LayerSizes[layer]
			}
			layer++
		}
		out[len(out)-1-n] = item
	}
	if len(out) > 0 {
		out[0].ID = i.ID
		if len(i.RepoTags) > 0 {
			out[0].Tags = append([]string(nil), i.RepoTags...)
		}
	}
	return out, nil
}

// image builds the exported view of an entry; the caller holds s.mu.
func (e *entry) image() Image {
	img := Image{
		ID:          e.rec.ID,
		Size:        e.rec.Size,
		Config:      e.configCopy(),
		DiffIDs:     append([]string(nil), e.rec.DiffIDs...),
		LayerSizes:  append([]int64(nil), e.rec.LayerSizes...),
		lastTagTime: e.rec.LastTagTime,
	}
	if img.Config.Created != nil {
		img.Created = *img.Config.Created
	}
	for _, ref := range e.rec.Refs {
		if isDigestRef(ref) {
			img.RepoDigests = append(img.RepoDigests, familiar(ref))
		} else {
			img.RepoTags = append(img.RepoTags, familiar(ref))
		}
	}
	sort.Strings(img.RepoTags)
	sort.Strings(img.RepoDigests)
	return img
}

// configCopy decodes the stored config afresh so callers may modify what they get
// without touching the store.
func (e *entry) configCopy() dockerspec.DockerOCIImage {
	var cfg dockerspec.DockerOCIImage
	_ = json.Unmarshal(e.raw, &cfg) // decoded once already when the image was stored
	return cfg
}

func nonNilSlice(s []string) []string {
	if s == nil {
		return []string{}
	}
	return append([]string(nil), s...)
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
