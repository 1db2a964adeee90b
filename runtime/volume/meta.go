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
	"time"

	"github.com/google/renameio/v2"

	"github.com/shoal-project/shoal/runtime/diskusage"
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
	if err := renameio.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
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

// volumeSize is the data size of a volume's directory; a volume whose directory
// is gone holds nothing.
func volumeSize(ctx context.Context, dir string) (int64, error) {
	n, err := diskusage.Dir(ctx, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	return n, err
}
