package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	imagetypes "github.com/moby/moby/api/types/image"
)

// PruneOptions selects what [Store.Prune] removes.
type PruneOptions struct {
	// All removes every unused image; by default only dangling ones (no tag)
	// go, as with `docker image prune` without -a.
	All bool
	// InUse reports whether a container uses the image with this ID; such an
	// image is kept. Nil means none is used.
	InUse func(id string) bool
	// Until, when set, keeps images created at or after it.
	Until time.Time
	// Match, when set, must accept an image's labels for it to be removed (the
	// label and label! filters).
	Match func(labels map[string]string) bool
}

// Prune removes the unused images opts selects, with all their references,
// and the layers no other image shares (docker image prune). It reports the
// Untagged and Deleted entries Docker reports and the bytes of the layers
// deleted from disk. An image tagged, pulled or removed meanwhile may be
// skipped.
func (s *Store) Prune(ctx context.Context, opts PruneOptions) (imagetypes.PruneReport, error) {
	rep := imagetypes.PruneReport{ImagesDeleted: []imagetypes.DeleteResponse{}}
	candidates, err := s.List(ctx)
	if err != nil {
		return rep, err
	}
	for _, img := range candidates {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("prune images: %w", err)
		}
		if !prunable(img, opts) {
			continue
		}
		deleted, freed, err := s.removeForPrune(ctx, img, opts.All)
		if err != nil {
			return rep, fmt.Errorf("prune images: %w", err)
		}
		rep.ImagesDeleted = append(rep.ImagesDeleted, deleted...)
		rep.SpaceReclaimed += uint64(freed)
	}
	return rep, nil
}

// prunable applies opts to img.
func prunable(img Image, opts PruneOptions) bool {
	if !opts.All && len(img.RepoTags) > 0 {
		return false
	}
	if opts.InUse != nil && opts.InUse(img.ID) {
		return false
	}
	if !opts.Until.IsZero() && !img.Created.Before(opts.Until) {
		return false
	}
	return opts.Match == nil || opts.Match(img.Config.Config.Labels)
}

// removeForPrune deletes img with every reference it still has, unless it was
// tagged since it was chosen for a dangling-only prune. It returns what
// [Store.Remove] reports and the recorded size of the layers that left the disk.
func (s *Store) removeForPrune(ctx context.Context, img Image, all bool) ([]imagetypes.DeleteResponse, int64, error) {
	s.mu.Lock()
	e, ok := s.images[img.ID]
	if !ok || (!all && hasTag(e.rec.Refs)) {
		s.mu.Unlock()
		return nil, 0, nil
	}
	sizes := map[string]int64{}
	for _, diffID := range e.rec.DiffIDs {
		if n, ok, err := s.layerSize(diffID); err == nil && ok {
			sizes[diffID] = n
		}
	}
	s.mu.Unlock()

	deleted, err := s.Remove(ctx, img.ID, true)
	if err != nil {
		var nf interface{ NotFound() bool }
		if errors.As(err, &nf) {
			return nil, 0, nil // removed meanwhile
		}
		return nil, 0, err
	}
	var freed int64
	for diffID, n := range sizes {
		if _, err := os.Stat(s.layerDir(diffID)); errors.Is(err, os.ErrNotExist) {
			freed += n
		}
	}
	return deleted, freed, nil
}

// hasTag reports whether refs hold a tag (digest references alone leave an
// image dangling, as in Docker).
func hasTag(refs []string) bool {
	for _, r := range refs {
		if !isDigestRef(r) {
			return true
		}
	}
	return false
}
