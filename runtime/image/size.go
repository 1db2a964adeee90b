package image

import (
	"errors"

	imagetypes "github.com/moby/moby/api/types/image"
)

// refreshSizes brings the recorded sizes of images stored by earlier versions (the
// tar sizes of their layers, no per-layer sizes) to the sizes dockerd reports,
// computing each old layer's size once. An image whose layers cannot be measured
// keeps its old size.
func (s *Store) refreshSizes() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, e := range s.images {
		if len(e.rec.LayerSizes) == len(e.rec.DiffIDs) {
			continue
		}
		sizes, total, err := s.layerSizes(e.rec.DiffIDs)
		if err != nil {
			s.log.Warn("image size not refreshed: the old value stays", "image", e.rec.ID, "err", err)
			continue
		}
		e.rec.LayerSizes, e.rec.Size = sizes, total
		changed = true
	}
	if !changed {
		return nil
	}
	return s.saveLocked()
}

// layerSizes returns the size of each layer in diffIDs and their sum.
func (s *Store) layerSizes(diffIDs []string) ([]int64, int64, error) {
	sizes := make([]int64, 0, len(diffIDs))
	var total int64
	for _, d := range diffIDs {
		n, ok, err := s.layerSize(d)
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			return nil, 0, errors.New("layer " + d + " is not unpacked")
		}
		sizes = append(sizes, n)
		total += n
	}
	return sizes, total, nil
}

// DiskUsage returns the images as `docker system df` reports them: each summary
// with the number of containers using it (containers maps image IDs to that count)
// and its SharedSize, the bytes of its layers another image uses too; and
// layersSize, the bytes of all distinct layers, which df shows as the images' size.
func DiskUsage(imgs []Image, containers map[string]int) (layersSize int64, out []imagetypes.Summary) {
	users := map[string]int{} // diff ID -> images using the layer
	sizes := map[string]int64{}
	for _, img := range imgs {
		for i, d := range img.DiffIDs {
			users[d]++
			if i < len(img.LayerSizes) {
				sizes[d] = img.LayerSizes[i]
			}
		}
	}
	for _, n := range sizes {
		layersSize += n
	}
	out = make([]imagetypes.Summary, 0, len(imgs))
	for _, img := range imgs {
		sum := img.Summary()
		sum.Containers = int64(containers[img.ID])
		sum.SharedSize = 0
		for i, d := range img.DiffIDs {
			if users[d] > 1 && i < len(img.LayerSizes) {
				sum.SharedSize += img.LayerSizes[i]
			}
		}
		out = append(out, sum)
	}
	return layersSize, out
}
