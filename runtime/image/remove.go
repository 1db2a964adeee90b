package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	imagetypes "github.com/moby/moby/api/types/image"
)

// Remove untags ref; when no tag is left, deletes the image and any layer no other image
// uses. Returns the DeleteResponse items Docker returns (Untagged / Deleted). Conflict
// error when the image has other tags and ref is an ID without force. (Images used by
// containers are checked by the caller, with CheckInUse.)
func (s *Store) Remove(ctx context.Context, ref string, force bool) ([]imagetypes.DeleteResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.resolveLocked(ref)
	if err != nil {
		return nil, err
	}

	var out []imagetypes.DeleteResponse
	if full, byName := s.nameOfLocked(ref, e); byName {
		out = append(out, s.removeRefLocked(e, full))
		if !isDigestRef(full) {
			out = append(out, s.dropDigestsWithoutTagLocked(e, repositoryOf(full))...)
		}
		if len(e.rec.Refs) > 0 {
			return out, s.saveLocked()
		}
	} else {
		if len(e.rec.Refs) > 1 && !force && !singleRepository(e.rec.Refs) {
			return nil, conflictError{msg: fmt.Sprintf(
				"conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories",
				shortID(e.rec.ID))}
		}
		for _, r := range append([]string(nil), e.rec.Refs...) {
			out = append(out, s.removeRefLocked(e, r))
		}
	}

	delete(s.images, e.rec.ID)
	if err := s.saveLocked(); err != nil {
		return nil, err
	}
	out = append(out, imagetypes.DeleteResponse{Deleted: e.rec.ID})
	if err := os.Remove(s.configPath(e.rec.ID)); err != nil && !os.IsNotExist(err) {
		s.log.Warn("remove image config", "image", e.rec.ID, "err", err)
	}
	for _, diffID := range e.rec.DiffIDs {
		if s.layerInUseLocked(diffID) {
			continue
		}
		if err := s.deleteLayer(diffID); err != nil {
			s.log.Warn("remove unused layer", "layer", diffID, "err", err)
		}
	}
	return out, nil
}

// nameOfLocked reports whether ref named e by one of its references (rather than by
// ID) and returns that reference in fully qualified form.
func (s *Store) nameOfLocked(ref string, e *entry) (string, bool) {
	if strings.HasPrefix(ref, "sha256:") {
		return "", false
	}
	named, err := parseNamed(ref)
	if err != nil {
		return "", false
	}
	if s.refs[named.String()] == e.rec.ID {
		return named.String(), true
	}
	return "", false
}

// dropDigestsWithoutTagLocked removes the digest references of repo from e once no
// tag of repo is left on it, as Docker does: they only served that repository.
func (s *Store) dropDigestsWithoutTagLocked(e *entry, repo string) []imagetypes.DeleteResponse {
	for _, r := range e.rec.Refs {
		if !isDigestRef(r) && repositoryOf(r) == repo {
			return nil
		}
	}
	var out []imagetypes.DeleteResponse
	for _, r := range append([]string(nil), e.rec.Refs...) {
		if isDigestRef(r) && repositoryOf(r) == repo {
			out = append(out, s.removeRefLocked(e, r))
		}
	}
	return out
}

// singleRepository reports whether refs hold at most one tag and digest references
// of that tag's repository only: deleting such an image by ID needs no force.
func singleRepository(refs []string) bool {
	var tag string
	repos := map[string]bool{}
	for _, r := range refs {
		if isDigestRef(r) {
			repos[repositoryOf(r)] = true
			continue
		}
		if tag != "" {
			return false
		}
		tag = r
	}
	if tag == "" {
		return len(repos) == 1
	}
	return len(repos) == 0 || (len(repos) == 1 && repos[repositoryOf(tag)])
}

// layerInUseLocked reports whether any stored image or load in flight needs diffID.
func (s *Store) layerInUseLocked(diffID string) bool {
	if s.pins[diffID] > 0 {
		return true
	}
	for _, e := range s.images {
		for _, d := range e.rec.DiffIDs {
			if d == diffID {
				return true
			}
		}
	}
	return false
}

// deleteLayer removes a layer directory: first renamed away, so that a crash never
// leaves a half-deleted layer under its real name.
func (s *Store) deleteLayer(diffID string) error {
	dir := s.layerDir(diffID)
	trash, err := os.MkdirTemp(s.tmpDir(), "trash-")
	if err != nil {
		return fmt.Errorf("delete layer %s: %w", diffID, err)
	}
	target := filepath.Join(trash, "layer")
	if err := os.Rename(dir, target); err != nil {
		os.Remove(trash)
		if os.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("delete layer %s: %w", diffID, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("delete layer %s: %w", diffID, err)
	}
	return nil
}

// removeOrphanLayers deletes layer directories no image references: leftovers of a
// load or removal that a crash interrupted.
func (s *Store) removeOrphanLayers(ctx context.Context) error {
	dirents, err := os.ReadDir(s.layersDir())
	if err != nil {
		return fmt.Errorf("list layers: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range dirents {
		diffID := "sha256:" + d.Name()
		if s.layerInUseLocked(diffID) {
			continue
		}
		s.log.Info("removing orphan layer", "layer", diffID)
		if err := s.deleteLayer(diffID); err != nil {
			return err
		}
	}
	return nil
}
