package container

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/shoal-project/shoal/runtime/diskusage"
)

// Size returns what `docker ps -s` and `docker inspect -s` show of a container:
// rw, the bytes the container wrote (its upper dir), and rootFs, rw plus the
// image's layers. Sizes are counted as dockerd's overlay2 driver counts them: the
// sizes of everything but directories, a hard-linked file once.
func (m *Manager) Size(ctx context.Context, ref string) (rw, rootFs int64, err error) {
	c, err := m.lookup(ref)
	if err != nil {
		return 0, 0, err
	}
	m.mu.Lock()
	lower := c.rec.LowerDirs
	m.mu.Unlock()
	if rw, err = diskusage.Dir(ctx, filepath.Join(c.dir, "upper")); err != nil {
		return 0, 0, fmt.Errorf("size of container %s: %w", c.rec.ID, err)
	}
	rootFs = rw
	for _, dir := range lower {
		n, err := diskusage.Dir(ctx, dir)
		if err != nil {
			return 0, 0, fmt.Errorf("size of container %s: image layer: %w", c.rec.ID, err)
		}
		rootFs += n
	}
	return rw, rootFs, nil
}
