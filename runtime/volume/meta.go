package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// meta is what <Root>/.meta/<name>.json holds.
type meta struct {
	Name      string
	CreatedAt time.Time
	Labels    map[string]string `json:",omitempty"`
	Options   map[string]string `json:",omitempty"`
}

func readMeta(path string) (meta, error) {
	var m meta
	b, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("decode volume metadata %s: %w", path, err)
	}
	return m, nil
}

// writeMeta replaces path with m so that a crash leaves the old or the new
// metadata, never a torn file.
func writeMeta(path string, m meta) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// metaName is the volume name of a metadata file name; temporary files are not
// metadata.
func metaName(file string) (string, bool) {
	name, ok := strings.CutSuffix(file, ".json")
	return name, ok && validName.MatchString(name)
}

// dirSize adds up the sizes of the files under dir (not of directories), each
// inode once.
func dirSize(ctx context.Context, dir string) (int64, error) {
	seen := map[uint64]bool{}
	var size int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed while walking
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			if st.Nlink > 1 {
				if seen[st.Ino] {
					return nil
				}
				seen[st.Ino] = true
			}
		}
		if !d.IsDir() {
			size += info.Size()
		}
		return nil
	})
	if err != nil {
		return size, fmt.Errorf("size of %s: %w", dir, err)
	}
	return size, nil
}
