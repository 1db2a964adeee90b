package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// layerStatus is what happened to one layer during an ingest.
type layerStatus int

const (
	layerExisted  layerStatus = iota // already unpacked by another image
	layerStarting                    // about to be fetched and unpacked
	layerUnpacked                    // fetched and unpacked now
)

// ingestResult describes an ingested image.
type ingestResult struct {
	image   Image
	existed bool // the image was already in the store
}

// ingest unpacks every layer of img that the store lacks, stores its config, and
// points refs (fully qualified tags and digest references) at it. onLayer, when not
// nil, hears about each layer by index.
func (s *Store) ingest(ctx context.Context, img v1.Image, refs []string, onLayer func(i int, st layerStatus)) (ingestResult, error) {
	raw, err := img.RawConfigFile()
	if err != nil {
		return ingestResult{}, fmt.Errorf("read image config: %w", err)
	}
	sum := sha256.Sum256(raw)
	id := "sha256:" + hex.EncodeToString(sum[:])
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return ingestResult{}, fmt.Errorf("decode image config %s: %w", id, err)
	}
	diffIDs := make([]string, 0, len(cfg.RootFS.DiffIDs))
	for _, d := range cfg.RootFS.DiffIDs {
		diffIDs = append(diffIDs, d.String())
	}

	s.pin(diffIDs)
	var fresh []string // layers unpacked by this ingest
	stored := false
	defer func() {
		s.unpin(diffIDs)
		if !stored {
			s.dropUnusedLayers(fresh)
		}
	}()

	var size int64
	sizes := make([]int64, 0, len(diffIDs))
	for i, diffID := range diffIDs {
		n, unpacked, err := s.ensureLayer(ctx, img, i, diffID, onLayer)
		if err != nil {
			return ingestResult{}, err
		}
		if unpacked {
			fresh = append(fresh, diffID)
		}
		size += n
		sizes = append(sizes, n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Under the lock, so that a concurrent Remove of the same image cannot delete
	// the config between writing it and recording the image.
	if err := s.writeConfig(id, raw); err != nil {
		return ingestResult{}, err
	}
	e, existed := s.images[id]
	if !existed {
		e, err = newEntry(record{ID: id, DiffIDs: diffIDs, Size: size, LayerSizes: sizes}, raw)
		if err != nil {
			return ingestResult{}, err
		}
		s.images[id] = e
	}
	now := time.Now()
	for _, ref := range refs {
		s.addRefLocked(e, ref, now)
	}
	if err := s.saveLocked(); err != nil {
		return ingestResult{}, err
	}
	stored = true
	return ingestResult{image: e.image(), existed: existed}, nil
}

// dropUnusedLayers deletes the layers of a failed ingest that no image or other
// ingest needs, so that a failed load or pull leaves nothing behind.
func (s *Store) dropUnusedLayers(diffIDs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range diffIDs {
		if s.layerInUseLocked(d) {
			continue
		}
		if err := s.deleteLayer(d); err != nil {
			s.log.Warn("remove layer of a failed load", "layer", d, "err", err)
		}
	}
}

// ensureLayer makes sure layer i (diffID) of img is unpacked and returns its size,
// and whether it was unpacked now.
func (s *Store) ensureLayer(ctx context.Context, img v1.Image, i int, diffID string, onLayer func(int, layerStatus)) (int64, bool, error) {
	report := func(st layerStatus) {
		if onLayer != nil {
			onLayer(i, st)
		}
	}
	if n, ok, err := s.layerSize(diffID); err != nil {
		return 0, false, err
	} else if ok {
		report(layerExisted)
		return n, false, nil
	}
	report(layerStarting)
	h, err := v1.NewHash(diffID)
	if err != nil {
		return 0, false, fmt.Errorf("layer %s: %w", diffID, err)
	}
	layer, err := img.LayerByDiffID(h)
	if err != nil {
		return 0, false, fmt.Errorf("find layer %s: %w", diffID, err)
	}
	rc, err := layer.Uncompressed()
	if err != nil {
		return 0, false, fmt.Errorf("open layer %s: %w", diffID, err)
	}
	defer rc.Close()
	n, err := s.unpack(ctx, diffID, rc)
	if err != nil {
		return 0, false, err
	}
	report(layerUnpacked)
	return n, true, nil
}

// writeConfig stores an image config under its ID unless it is there already.
func (s *Store) writeConfig(id string, raw []byte) error {
	path := s.configPath(id)
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store config of %s: %w", id, err)
	}
	if err := writeFileAtomic(path, raw); err != nil {
		return fmt.Errorf("store config of %s: %w", id, err)
	}
	return nil
}

// pin marks layers as needed by a load in flight, so that a concurrent Remove
// does not delete them between unpacking and the image being recorded.
func (s *Store) pin(diffIDs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range diffIDs {
		s.pins[d]++
	}
}

func (s *Store) unpin(diffIDs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range diffIDs {
		if s.pins[d]--; s.pins[d] <= 0 {
			delete(s.pins, d)
		}
	}
}
