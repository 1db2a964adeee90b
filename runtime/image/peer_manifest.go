package image

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
)

// imageSnapshot is what the peer protocol needs of a stored image, copied out
// from under the store's lock.
type imageSnapshot struct {
	id      string
	raw     []byte // the config; never modified once stored
	diffIDs []string
}

func (e *entry) snapshot() imageSnapshot {
	return imageSnapshot{id: e.rec.ID, raw: e.raw, diffIDs: slices.Clone(e.rec.DiffIDs)}
}

// peerImage is a stored image that can be served to peers: every layer has
// tar-split metadata.
type peerImage struct {
	imageSnapshot
	tarSizes []int64 // the reassembled size of each layer, by diffIDs index
}

// servable returns the peer view of img, and false when a layer of it cannot be
// reassembled (so the image is not offered at all).
func (s *Store) servable(img imageSnapshot) (peerImage, bool, error) {
	p := peerImage{imageSnapshot: img, tarSizes: make([]int64, 0, len(img.diffIDs))}
	for _, d := range img.diffIDs {
		n, ok, err := s.layerTarSize(d)
		if err != nil || !ok {
			return peerImage{}, false, err
		}
		p.tarSizes = append(p.tarSizes, n)
	}
	return p, true, nil
}

// manifest generates the image's Docker schema2 manifest: the stored config, whose
// digest is the image ID, and the uncompressed layers, whose digests are the diff
// IDs. The same image gives the same bytes on every node.
func (p peerImage) manifest() ([]byte, error) {
	cfg, err := v1.NewHash(p.id)
	if err != nil {
		return nil, fmt.Errorf("manifest of image %s: %w", p.id, err)
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.DockerManifestSchema2,
		Config:        v1.Descriptor{MediaType: types.DockerConfigJSON, Size: int64(len(p.raw)), Digest: cfg},
		Layers:        make([]v1.Descriptor, 0, len(p.diffIDs)),
	}
	for i, d := range p.diffIDs {
		h, err := v1.NewHash(d)
		if err != nil {
			return nil, fmt.Errorf("manifest of image %s: %w", p.id, err)
		}
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.DockerUncompressedLayer, Size: p.tarSizes[i], Digest: h})
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("manifest of image %s: %w", p.id, err)
	}
	return data, nil
}

// findPeerManifest returns the servable image a manifest request names, and false
// when there is none. By tag, it is the image the tag names in the repository. By
// digest, it is the image of the repository known by that (registry) digest, else
// the image whose ID that is, else the image of the repository whose generated
// manifest has that digest.
func (s *Store) findPeerManifest(req peerRequest) (peerImage, bool, error) {
	s.mu.Lock()
	direct, inRepo := s.peerManifestCandidatesLocked(req)
	s.mu.Unlock()
	if direct != nil {
		return s.servable(*direct)
	}
	for _, img := range inRepo {
		p, ok, err := s.servable(img)
		if err != nil || !ok {
			continue
		}
		m, err := p.manifest()
		if err != nil {
			return peerImage{}, false, err
		}
		if digest.FromBytes(m) == req.digest {
			return p, true, nil
		}
	}
	return peerImage{}, false, nil
}

// peerManifestCandidatesLocked returns the image a manifest request names
// directly, or else (for a digest) the images of its repository. s.mu is held.
func (s *Store) peerManifestCandidatesLocked(req peerRequest) (*imageSnapshot, []imageSnapshot) {
	hit := func(id string) *imageSnapshot {
		if e, ok := s.images[id]; ok {
			img := e.snapshot()
			return &img
		}
		return nil
	}
	if req.tag != "" {
		tagged, err := reference.WithTag(req.repo, req.tag)
		if err != nil {
			return nil, nil
		}
		return hit(s.refs[tagged.String()]), nil
	}
	if img := hit(s.refs[req.repo.Name()+"@"+req.digest.String()]); img != nil {
		return img, nil
	}
	if img := hit(req.digest.String()); img != nil {
		return img, nil
	}
	var inRepo []imageSnapshot
	for _, e := range s.images {
		if slices.ContainsFunc(e.rec.Refs, func(r string) bool { return repositoryOf(r) == req.repo.Name() }) {
			inRepo = append(inRepo, e.snapshot())
		}
	}
	return nil, inRepo
}

// servedBlob is a blob the peer protocol serves: an image config, or a layer tar.
type servedBlob struct {
	config []byte // the config; nil for a layer
	size   int64
}

// findPeerBlob returns the blob with digest d when a servable image has it, as
// its config or one of its layers, and false otherwise.
func (s *Store) findPeerBlob(d digest.Digest) (servedBlob, bool, error) {
	s.mu.Lock()
	var imgs []imageSnapshot
	for _, e := range s.images {
		if e.rec.ID == d.String() || slices.Contains(e.rec.DiffIDs, d.String()) {
			imgs = append(imgs, e.snapshot())
		}
	}
	s.mu.Unlock()
	for _, img := range imgs {
		p, ok, err := s.servable(img)
		if err != nil {
			return servedBlob{}, false, err
		}
		if !ok {
			continue
		}
		if p.id == d.String() {
			return servedBlob{config: p.raw, size: int64(len(p.raw))}, true, nil
		}
		i := slices.Index(p.diffIDs, d.String())
		return servedBlob{size: p.tarSizes[i]}, true, nil
	}
	return servedBlob{}, false, nil
}
