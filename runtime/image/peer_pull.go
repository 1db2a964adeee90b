package image

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Peer is another node of the cluster, serving its images with PeerHandler.
type Peer struct {
	// Addr is the host:port of the peer's server; requests go to https://Addr/v2/.
	Addr string
	// Transport carries the requests: the cluster's mutual-TLS transport.
	Transport http.RoundTripper
}

// PullFromPeer fetches the image ref names from peer and stores it under ref, as
// a registry pull would (layers the store has are not fetched again). The config
// and every layer are checked against their digests, and the layers against the
// diff IDs of the config; nothing is stored unless all match. No credentials are
// sent, and the requests go to peer.Addr only, redirects included.
//
// ref is resolved as ImageConfig resolves it: a reference pinned to a digest
// ("busybox:1@sha256:…") the peer does not know falls back to its name
// ("busybox:1"), and the image is then stored under that name only, so that
// ImageConfig(ref) finds it afterwards. A peer without the image answers with a
// NotFound error.
func (s *Store) PullFromPeer(ctx context.Context, ref string, peer Peer) (Image, error) {
	img, err := s.pullFromPeers(ctx, ref, peer)
	s.observePull(SourcePeer, err)
	return img, err
}

func (s *Store) pullFromPeers(ctx context.Context, ref string, peer Peer) (Image, error) {
	cands, err := peerCandidates(ref)
	if err != nil {
		return Image{}, err
	}
	for i, named := range cands {
		img, err := s.pullFromPeer(ctx, named, peer)
		if err != nil && isNotFound(err) && i < len(cands)-1 {
			continue
		}
		return img, err
	}
	return Image{}, errNoSuchImage(ref) // no candidates: not reached
}

// PeerHas asks peer whether it can serve the image ref names (resolved as
// PullFromPeer resolves it), with a HEAD request of its manifest.
func PeerHas(ctx context.Context, ref string, peer Peer) (bool, error) {
	cands, err := peerCandidates(ref)
	if err != nil {
		return false, err
	}
	for _, named := range cands {
		gref, err := peerReference(named, peer)
		if err != nil {
			return false, err
		}
		_, err = remote.Head(gref, peerOptions(ctx, peer)...)
		if err == nil {
			return true, nil
		}
		if err = classifyRegistryError(err); !isNotFound(err) {
			return false, fmt.Errorf("ask peer %s for %s: %w", peer.Addr, reference.FamiliarString(named), err)
		}
	}
	return false, nil
}

// HasImage reports whether ref names a stored image, resolved as ImageConfig
// resolves it: when it is false, the image is one to fetch from a peer.
func (s *Store) HasImage(ctx context.Context, ref string) bool {
	_, _, err := s.ImageConfig(ctx, ref)
	return err == nil
}

// pullFromPeer fetches and stores one reference.
func (s *Store) pullFromPeer(ctx context.Context, named reference.Named, peer Peer) (Image, error) {
	fam := reference.FamiliarString(named)
	gref, err := peerReference(named, peer)
	if err != nil {
		return Image{}, err
	}
	img, err := remote.Image(gref, peerOptions(ctx, peer)...)
	if err != nil {
		return Image{}, fmt.Errorf("pull %s from peer %s: %w", fam, peer.Addr, classifyRegistryError(err))
	}
	if err := checkPeerLayers(img); err != nil {
		return Image{}, fmt.Errorf("pull %s from peer %s: %w", fam, peer.Addr, classifyRegistryError(err))
	}
	res, err := s.ingest(ctx, img, []string{named.String()}, nil)
	if err != nil {
		return Image{}, fmt.Errorf("pull %s from peer %s: %w", fam, peer.Addr, classifyRegistryError(err))
	}
	s.log.Info("pulled image from peer", "ref", fam, "peer", peer.Addr, "id", res.image.ID)
	return res.image, nil
}

// checkPeerLayers makes sure the manifest lists exactly the layers of the config,
// uncompressed, so that each layer blob is checked against its diff ID (by
// go-containerregistry as it reads it, and again by unpack).
func checkPeerLayers(img v1.Image) error {
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile() // checked against the manifest's config digest
	if err != nil {
		return err
	}
	if len(m.Layers) != len(cfg.RootFS.DiffIDs) {
		return fmt.Errorf("manifest has %d layers, the config %d", len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	for i, l := range m.Layers {
		if l.Digest != cfg.RootFS.DiffIDs[i] || l.MediaType != types.DockerUncompressedLayer {
			return fmt.Errorf("manifest layer %d is %s %s, the config has diff ID %s", i, l.MediaType, l.Digest, cfg.RootFS.DiffIDs[i])
		}
	}
	return nil
}

// peerCandidates lists the references to ask a peer for, in order: ref, then,
// when it is pinned to a digest, its name (as ImageConfig falls back to it).
func peerCandidates(ref string) ([]reference.Named, error) {
	named, err := parseNamed(ref)
	if err != nil {
		return nil, err
	}
	cands := []reference.Named{named}
	if byName, _, pinned := strings.Cut(ref, "@"); pinned {
		if n, err := parseNamed(byName); err == nil {
			cands = append(cands, n)
		}
	}
	return cands, nil
}

// peerReference is the go-containerregistry reference of named at peer: registry
// peer.Addr, repository the peer protocol's name of named's repository.
func peerReference(named reference.Named, peer Peer) (name.Reference, error) {
	repoName, err := peerRepository(named)
	if err != nil {
		return nil, err
	}
	repo, err := name.NewRepository(peer.Addr+"/"+repoName, name.StrictValidation)
	if err != nil || repo.RegistryStr() != peer.Addr {
		return nil, invalidParameterError{msg: fmt.Sprintf("fetch %s from peer %q: invalid peer address", reference.FamiliarString(named), peer.Addr)}
	}
	if c, ok := named.(reference.Canonical); ok {
		return aliasRef{repo: repo, digest: c.Digest().String()}, nil
	}
	tag := "latest"
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	}
	return repo.Tag(tag), nil
}

// aliasRef names an image on a peer by a digest that is not the digest of the
// manifest the peer generates for it: the registry manifest digest the peer
// recorded when it pulled the image, or the image ID. It is a name.Reference
// but no name.Digest, which go-containerregistry would compare with the digest of
// the manifest it receives. The peer is trusted with what the digest names as it
// is with what a tag names; what it sends is checked against the manifest all
// the same.
type aliasRef struct {
	repo   name.Repository
	digest string
}

func (r aliasRef) Context() name.Repository   { return r.repo }
func (r aliasRef) Identifier() string         { return r.digest }
func (r aliasRef) Name() string               { return r.repo.Name() + "@" + r.digest }
func (r aliasRef) String() string             { return r.Name() }
func (r aliasRef) Scope(action string) string { return r.repo.Scope(action) }

// peerOptions are the go-containerregistry options of requests to peer.
func peerOptions(ctx context.Context, peer Peer) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(peerTransport{addr: peer.Addr, next: peer.Transport}),
		remote.WithAuth(authn.Anonymous),
		remote.WithUserAgent("shoal"),
		remote.WithRetryPredicate(retryable),
	}
}

// peerTransport lets requests go to one peer only, over https, and without
// credentials: a redirect elsewhere, a token server named by an authentication
// challenge, or go-containerregistry's plain-http probe of private addresses fail.
type peerTransport struct {
	addr string
	next http.RoundTripper
}

func (t peerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" || !strings.EqualFold(req.URL.Host, t.addr) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("refusing request to %s://%s: the peer is https://%s", req.URL.Scheme, req.URL.Host, t.addr)
	}
	if req.Header.Get("Authorization") != "" {
		req = req.Clone(req.Context())
		req.Header.Del("Authorization")
	}
	if t.next == nil {
		return nil, errors.New("peer transport: no transport")
	}
	return t.next.RoundTrip(req)
}

// isNotFound reports whether err is of the NotFound kind.
func isNotFound(err error) bool {
	var nf interface{ NotFound() bool }
	return errors.As(err, &nf) && nf.NotFound()
}
