package container

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	ctypes "github.com/moby/moby/api/types/container"

	"github.com/shoal-project/shoal/runtime/diskusage"
)

// PruneOptions selects what [Manager.Prune] removes.
type PruneOptions struct {
	// Until, when set, keeps containers created at or after it.
	Until time.Time
	// Match, when set, must accept a container's labels for it to be removed
	// (the label and label! filters).
	Match func(labels map[string]string) bool
}

// Prune removes every container that is not running (created or exited) and
// that opts selects (docker container prune). It reports the IDs removed and
// the bytes their writable layers held. A container that starts or is removed
// meanwhile is skipped.
func (m *Manager) Prune(ctx context.Context, opts PruneOptions) (ctypes.PruneReport, error) {
	rep := ctypes.PruneReport{ContainersDeleted: []string{}}
	for _, c := range m.pruneCandidates(opts) {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("prune containers: %w", err)
		}
		size, err := diskusage.Dir(ctx, filepath.Join(c.dir, "upper"))
		if err != nil {
			m.log.Warn("size of container to prune", "id", c.rec.ID, "err", err)
		}
		if err := m.Remove(ctx, c.rec.ID, false); err != nil {
			if errors.As(err, new(interface{ Conflict() bool })) || errors.As(err, new(interface{ NotFound() bool })) {
				continue // started or removed since it was chosen
			}
			return rep, fmt.Errorf("prune containers: %w", err)
		}
		rep.ContainersDeleted = append(rep.ContainersDeleted, c.rec.ID)
		rep.SpaceReclaimed += uint64(size)
	}
	return rep, nil
}

// pruneCandidates are the stopped containers opts selects, oldest first.
func (m *Manager) pruneCandidates(opts PruneOptions) []*container {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*container
	for _, c := range m.byID {
		if c.run != nil || c.removed {
			continue
		}
		if !opts.Until.IsZero() && !c.rec.Created.Before(opts.Until) {
			continue
		}
		if opts.Match != nil && !opts.Match(c.rec.Config.Labels) {
			continue
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *container) int {
		if d := a.rec.Created.Compare(b.rec.Created); d != 0 {
			return d
		}
		return strings.Compare(a.rec.ID, b.rec.ID)
	})
	return out
}
