package image

import (
	"context"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	imagetypes "github.com/moby/moby/api/types/image"
)

// Get resolves a reference ("busybox", "busybox:latest", "docker.io/library/busybox:1",
// "sha256:<id>", unique ID prefix ≥ 1 hex digit) to a stored image. NotFound error
// "No such image: <ref>" otherwise.
func (s *Store) Get(ctx context.Context, ref string) (Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.resolveLocked(ref)
	if err != nil {
		return Image{}, err
	}
	return e.image(), nil
}

// List returns every stored image, newest first.
func (s *Store) List(ctx context.Context) ([]Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries := make([]*entry, 0, len(s.images))
	for _, e := range s.images {
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool {
		if !entries[i].created.Equal(entries[j].created) {
			return entries[i].created.After(entries[j].created)
		}
		return entries[i].rec.ID < entries[j].rec.ID
	})
	out := make([]Image, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.image())
	}
	return out, nil
}

// Tag makes newRef (a name with an optional tag, default "latest") point at the
// image ref resolves to. A tag that pointed at another image moves; that image stays.
func (s *Store) Tag(ctx context.Context, ref, newRef string) error {
	named, err := parseNamed(newRef)
	if err != nil {
		return err
	}
	if _, ok := named.(reference.Canonical); ok {
		return invalidParameterError{msg: "refusing to create a tag with a digest reference"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.resolveLocked(ref)
	if err != nil {
		return err
	}
	s.addRefLocked(e, named.String(), time.Now())
	return s.saveLocked()
}

// LayerDirs returns the unpacked layer directories of an image, lowest layer first,
// ready to be overlayfs lowerdirs.
func (s *Store) LayerDirs(ctx context.Context, id string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.resolveLocked(id)
	if err != nil {
		return nil, err
	}
	dirs := make([]string, 0, len(e.rec.DiffIDs))
	for _, diffID := range e.rec.DiffIDs {
		dirs = append(dirs, s.layerDiffDir(diffID))
	}
	return dirs, nil
}

func (s *Store) layerDir(diffID string) string {
	return filepath.Join(s.layersDir(), strings.TrimPrefix(diffID, "sha256:"))
}

func (s *Store) layerDiffDir(diffID string) string {
	return filepath.Join(s.layerDir(diffID), "diff")
}

// resolveLocked finds the image ref names. Names win over ID prefixes, as in Docker:
// "abc" is first the image docker.io/library/abc:latest, then an ID prefix.
func (s *Store) resolveLocked(ref string) (*entry, error) {
	if strings.HasPrefix(ref, "sha256:") {
		if e := s.byIDPrefixLocked(strings.TrimPrefix(ref, "sha256:")); e != nil {
			return e, nil
		}
		return nil, errNoSuchImage(ref)
	}
	if named, err := parseNamed(ref); err == nil {
		if id, ok := s.refs[named.String()]; ok {
			return s.images[id], nil
		}
		if !hexPrefix.MatchString(ref) {
			return nil, errNoSuchImage(reference.FamiliarString(named))
		}
	}
	if hexPrefix.MatchString(ref) {
		if e := s.byIDPrefixLocked(ref); e != nil {
			return e, nil
		}
	}
	return nil, errNoSuchImage(ref)
}

// byIDPrefixLocked returns the only image whose ID hex starts with prefix, or nil
// when none or several do.
func (s *Store) byIDPrefixLocked(prefix string) *entry {
	if prefix == "" || !hexPrefix.MatchString(prefix) {
		return nil
	}
	if e, ok := s.images["sha256:"+prefix]; ok {
		return e
	}
	var found *entry
	for id, e := range s.images {
		if strings.HasPrefix(strings.TrimPrefix(id, "sha256:"), prefix) {
			if found != nil {
				return nil
			}
			found = e
		}
	}
	return found
}

// addRefLocked points the fully qualified ref at e, taking it from any other image.
func (s *Store) addRefLocked(e *entry, ref string, now time.Time) {
	if old, ok := s.refs[ref]; ok && old != e.rec.ID {
		if prev := s.images[old]; prev != nil {
			prev.rec.Refs = slices.DeleteFunc(prev.rec.Refs, func(r string) bool { return r == ref })
		}
	}
	s.refs[ref] = e.rec.ID
	if !slices.Contains(e.rec.Refs, ref) {
		e.rec.Refs = append(e.rec.Refs, ref)
		sort.Strings(e.rec.Refs)
	}
	if !isDigestRef(ref) {
		e.rec.LastTagTime = now
	}
}

// removeRefLocked drops ref from e and returns the Untagged item for it.
func (s *Store) removeRefLocked(e *entry, ref string) imagetypes.DeleteResponse {
	delete(s.refs, ref)
	e.rec.Refs = slices.DeleteFunc(e.rec.Refs, func(r string) bool { return r == ref })
	return imagetypes.DeleteResponse{Untagged: familiar(ref)}
}

// ImageConfig returns the ID and configuration (run configuration and platform) of
// the image ref names, for the container runtime. A reference pinned to a digest the node does not know (an
// image loaded from an archive has no registry digest) falls back to its name.
func (s *Store) ImageConfig(ctx context.Context, ref string) (string, dockerspec.DockerOCIImage, error) {
	img, err := s.Get(ctx, ref)
	if err != nil {
		name, _, pinned := strings.Cut(ref, "@")
		if !pinned {
			return "", dockerspec.DockerOCIImage{}, err
		}
		if img, err = s.Get(ctx, name); err != nil {
			return "", dockerspec.DockerOCIImage{}, err
		}
	}
	return img.ID, img.Config, nil
}
