package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vbatts/tar-split/tar/asm"
	"golang.org/x/sys/unix"

	"github.com/shoal-project/shoal/runtime/diskusage"
)

// Files next to a layer's diff directory (with tarSplitFile). diffSizeFile records
// the layer's size as dockerd's overlay2 driver counts it (see diskSize); a layer is
// complete once either file exists. tarSizeFile is the size of the uncompressed
// layer tar. Some earlier versions wrote only tarSizeFile: the diffSizeFile of their
// layers is computed on first use; others wrote only diffSizeFile.
const (
	diffSizeFile = "diffsize"
	tarSizeFile  = "size"
)

// layerSize returns the size of an unpacked layer, and false when the layer is not
// unpacked.
func (s *Store) layerSize(diffID string) (int64, bool, error) {
	n, ok, err := readSize(filepath.Join(s.layerDir(diffID), diffSizeFile))
	if err != nil || ok {
		return n, ok, err
	}
	if _, err := os.Stat(filepath.Join(s.layerDir(diffID), tarSizeFile)); errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	} else if err != nil {
		return 0, false, fmt.Errorf("read size of layer %s: %w", diffID, err)
	}
	n, err = diskusage.Dir(context.Background(), s.layerDiffDir(diffID))
	if err != nil {
		return 0, false, fmt.Errorf("size of layer %s: %w", diffID, err)
	}
	// Best effort: without the file, the next call computes it again.
	if err := writeFileAtomic(filepath.Join(s.layerDir(diffID), diffSizeFile), []byte(strconv.FormatInt(n, 10))); err != nil {
		s.log.Warn("record layer size", "layer", diffID, "err", err)
	}
	return n, true, nil
}

// readSize reads a size file; false when there is none.
func readSize(path string) (int64, bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read layer size: %w", err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("read layer size %s: %w", path, err)
	}
	return n, true, nil
}

// unpack extracts the uncompressed layer stream r into the layer directory for
// diffID and returns its size (as layerSize counts it). The content is checked against diffID, and the layer
// only appears under its name once complete. If another load got there first, its
// copy is kept.
func (s *Store) unpack(ctx context.Context, diffID string, r io.Reader) (int64, error) {
	if !strings.HasPrefix(diffID, "sha256:") || len(diffID) != len("sha256:")+64 {
		return 0, fmt.Errorf("unpack layer: unsupported diff ID %q", diffID)
	}
	work, err := os.MkdirTemp(s.tmpDir(), "layer-")
	if err != nil {
		return 0, fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	defer os.RemoveAll(work)
	diff := filepath.Join(work, "diff")
	if err := os.Mkdir(diff, 0o755); err != nil {
		return 0, fmt.Errorf("unpack layer %s: %w", diffID, err)
	}

	h := sha256.New()
	counted := &countingReader{r: io.TeeReader(r, h)}
	rec, err := newTarSplitRecorder(filepath.Join(work, tarSplitFile))
	if err != nil {
		return 0, fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	if err := unpackRecorded(ctx, counted, diff, rec); err != nil {
		rec.discard()
		return 0, fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID {
		rec.discard()
		return 0, fmt.Errorf("unpack layer %s: content has digest %s", diffID, got)
	}
	if err := rec.finish(); err != nil {
		s.log.Warn("layer cannot be served to peers", "layer", diffID, "err", err)
	}
	// The tar size, for peers: what a layer blob's Content-Length says.
	if err := os.WriteFile(filepath.Join(work, tarSizeFile), []byte(strconv.FormatInt(counted.n, 10)), 0o600); err != nil {
		return 0, fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	size, err := diskusage.Dir(context.Background(), diff)
	if err != nil {
		return 0, fmt.Errorf("unpack layer %s: size: %w", diffID, err)
	}
	if err := os.WriteFile(filepath.Join(work, diffSizeFile), []byte(strconv.FormatInt(size, 10)), 0o600); err != nil {
		return 0, fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	// One syncfs instead of an fsync per file: the layer must be on disk before
	// its name says it is complete.
	if err := syncFS(work); err != nil {
		return 0, fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	if err := os.Rename(work, s.layerDir(diffID)); err != nil {
		if size, ok, serr := s.layerSize(diffID); serr == nil && ok {
			return size, nil // a concurrent load unpacked the same layer
		}
		return 0, fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	if err := syncDir(s.layersDir()); err != nil {
		return 0, fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	return size, nil
}

// unpackRecorded unpacks the layer tar r into diff while rec records its tar-split
// metadata, and reads r to its end: padding after the end marker is part of the
// digested stream.
func unpackRecorded(ctx context.Context, r io.Reader, diff string, rec *tarSplitRecorder) error {
	stream, done, err := asm.NewInputTarStreamWithDone(r, rec, rec)
	if err != nil {
		return err
	}
	err = unpackLayer(ctx, stream, diff)
	if err == nil {
		_, err = io.Copy(io.Discard, stream)
	}
	// Stops tar-split's goroutine if the unpack stopped early; r and rec are ours
	// again once it is done.
	stream.Close()
	if derr := <-done; err == nil {
		err = derr
	}
	return err
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// syncFS flushes the whole file system holding dir.
func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
