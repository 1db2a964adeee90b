package container

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
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
	if rw, err = diskSize(ctx, filepath.Join(c.dir, "upper")); err != nil {
		return 0, 0, fmt.Errorf("size of container %s: %w", c.rec.ID, err)
	}
	rootFs = rw
	for _, dir := range lower {
		n, err := diskSize(ctx, dir)
		if err != nil {
			return 0, 0, fmt.Errorf("size of container %s: image layer: %w", c.rec.ID, err)
		}
		rootFs += n
	}
	return rw, rootFs, nil
}

// diskSize sums the sizes of the files under dir, each inode once, directories
// not counted. A file removed during the walk is skipped.
func diskSize(ctx context.Context, dir string) (int64, error) {
	seen := map[uint64]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path != dir {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		if info.Size() == 0 {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		total += info.Size()
		return nil
	})
	return total, err
}
