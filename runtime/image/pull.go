package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"syscall"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Pull fetches ref (familiar or full; default tag latest) from its registry, honouring
// mirrors (for docker.io refs) and insecure registries, with optional auth (moby
// registry.AuthConfig decoded by the caller; nil = anonymous). progress (may be nil)
// receives human-readable status events; emit at least one per layer
// ("Pulling fs layer", "Pull complete") plus the final "Digest: sha256:..." and
// "Status: Downloaded newer image for busybox:latest" / "Image is up to date for ...".
func (s *Store) Pull(ctx context.Context, ref string, auth *registry.AuthConfig, progress func(jsonstream.Message)) (Image, error) {
	img, err := s.pull(ctx, ref, auth, progress)
	s.observePull(SourceRegistry, err)
	return img, err
}

func (s *Store) pull(ctx context.Context, ref string, auth *registry.AuthConfig, progress func(jsonstream.Message)) (Image, error) {
	named, err := parseNamed(ref)
	if err != nil {
		return Image{}, err
	}
	emit := func(m jsonstream.Message) {
		if progress != nil {
			progress(m)
		}
	}
	fam := reference.FamiliarString(named)
	desc, err := s.resolveRemote(ctx, named, auth)
	if err != nil {
		var nf registryNotFoundError
		if errors.As(err, &nf) {
			// Nothing was streamed yet: the API answers 404 with dockerd's words.
			return Image{}, manifestNotFound(fam, err)
		}
		return Image{}, fmt.Errorf("pull %s: %w", fam, err)
	}
	emit(jsonstream.Message{ID: refSuffix(named), Status: "Pulling from " + reference.Path(named)})
	img, err := desc.Image()
	if err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", fam, classifyRegistryError(err))
	}
	layerIDs, err := s.announceLayers(img, emit)
	if err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", fam, classifyRegistryError(err))
	}
	configName, err := img.ConfigName()
	if err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", fam, classifyRegistryError(err))
	}
	s.mu.Lock()
	upToDate := s.refs[named.String()] == configName.String()
	s.mu.Unlock()

	refs := []string{named.Name() + "@" + desc.Digest.String()}
	if _, ok := named.(reference.Tagged); ok {
		refs = append(refs, named.String())
	}
	res, err := s.ingest(ctx, img, refs, func(i int, st layerStatus) {
		switch st {
		case layerStarting:
			emit(jsonstream.Message{ID: layerIDs[i], Status: "Downloading"})
		case layerUnpacked:
			emit(jsonstream.Message{ID: layerIDs[i], Status: "Pull complete"})
		}
	})
	if err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", fam, classifyRegistryError(err))
	}
	emit(jsonstream.Message{Status: "Digest: " + desc.Digest.String()})
	if upToDate {
		emit(jsonstream.Message{Status: "Status: Image is up to date for " + fam})
	} else {
		emit(jsonstream.Message{Status: "Status: Downloaded newer image for " + fam})
	}
	s.log.Info("pulled image", "ref", fam, "id", res.image.ID, "digest", desc.Digest.String())
	return res.image, nil
}

// announceLayers emits the first status line of every layer ("Already exists" or
// "Pulling fs layer") and returns the short IDs the progress lines use, by layer
// index in the config's order.
func (s *Store) announceLayers(img v1.Image, emit func(jsonstream.Message)) ([]string, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(cfg.RootFS.DiffIDs))
	for i, diffID := range cfg.RootFS.DiffIDs {
		layer, err := img.LayerByDiffID(diffID)
		if err != nil {
			return nil, err
		}
		d, err := layer.Digest()
		if err != nil {
			return nil, err
		}
		ids[i] = shortID(d.Hex)
		status := "Pulling fs layer"
		if _, ok, _ := s.layerSize(diffID.String()); ok {
			status = "Already exists"
		}
		emit(jsonstream.Message{ID: ids[i], Status: status})
	}
	return ids, nil
}

// Distribution answers GET /distribution/{name}/json: resolves ref at its registry
// (HEAD manifest) and returns the descriptor and platforms (moby api types/registry
// DistributionInspect). For an image present locally with a known RepoDigest but no
// reachable registry, return an Unavailable error.
func (s *Store) Distribution(ctx context.Context, ref string, auth *registry.AuthConfig) (registry.DistributionInspect, error) {
	named, err := parseNamed(ref)
	if err != nil {
		return registry.DistributionInspect{}, err
	}
	fam := reference.FamiliarString(named)
	desc, err := s.resolveRemote(ctx, named, auth)
	if err != nil {
		return registry.DistributionInspect{}, fmt.Errorf("inspect %s at its registry: %w", fam, err)
	}
	out := registry.DistributionInspect{
		Descriptor: ocispec.Descriptor{
			MediaType: string(desc.MediaType),
			Digest:    digest.Digest(desc.Digest.String()),
			Size:      desc.Size,
		},
		Platforms: []ocispec.Platform{},
	}
	if desc.MediaType.IsIndex() {
		index, err := desc.ImageIndex()
		if err != nil {
			return out, fmt.Errorf("inspect %s at its registry: %w", fam, classifyRegistryError(err))
		}
		im, err := index.IndexManifest()
		if err != nil {
			return out, fmt.Errorf("inspect %s at its registry: %w", fam, classifyRegistryError(err))
		}
		for _, m := range im.Manifests {
			if m.Platform != nil && m.Platform.OS != "unknown" {
				out.Platforms = append(out.Platforms, ociPlatform(*m.Platform))
			}
		}
		return out, nil
	}
	img, err := desc.Image()
	if err == nil {
		var cfg *v1.ConfigFile
		if cfg, err = img.ConfigFile(); err == nil {
			out.Platforms = append(out.Platforms, ocispec.Platform{
				Architecture: cfg.Architecture, OS: cfg.OS, OSVersion: cfg.OSVersion,
				Variant: cfg.Variant, OSFeatures: cfg.OSFeatures,
			})
		}
	}
	if err != nil {
		return out, fmt.Errorf("inspect %s at its registry: %w", fam, classifyRegistryError(err))
	}
	return out, nil
}

func ociPlatform(p v1.Platform) ocispec.Platform {
	return ocispec.Platform{
		Architecture: p.Architecture, OS: p.OS, OSVersion: p.OSVersion,
		OSFeatures: p.OSFeatures, Variant: p.Variant,
	}
}

// endpoint is one registry a reference can be fetched from.
type endpoint struct {
	host     string
	insecure bool
	mirror   bool
}

// endpoints lists where named can be fetched from, in order: the configured
// mirrors for docker.io references, then the reference's own registry.
func (s *Store) endpoints(named reference.Named) []endpoint {
	domain := reference.Domain(named)
	var eps []endpoint
	if domain == "docker.io" {
		for _, m := range s.reg.Load().mirrors {
			host := hostOf(m)
			eps = append(eps, endpoint{
				host:     host,
				insecure: strings.HasPrefix(m, "http://") || s.isInsecure(host),
				mirror:   true,
			})
		}
	}
	return append(eps, endpoint{host: domain, insecure: s.isInsecure(domain)})
}

// resolveRemote fetches the manifest descriptor of named from the first endpoint
// that answers. Mirror failures fall through to the next endpoint.
func (s *Store) resolveRemote(ctx context.Context, named reference.Named, auth *registry.AuthConfig) (*remote.Descriptor, error) {
	var lastErr error
	for _, ep := range s.endpoints(named) {
		ref, err := remoteRef(ep, named)
		if err != nil {
			return nil, invalidParameterError{msg: err.Error()}
		}
		desc, err := remote.Get(ref, s.remoteOptions(ctx, ep, auth)...)
		if err == nil {
			return desc, nil
		}
		lastErr = classifyRegistryError(err)
		if ep.mirror {
			s.log.Warn("registry mirror failed, trying next endpoint", "mirror", ep.host, "ref", named.String(), "err", err)
		}
	}
	return nil, lastErr
}

// remoteRef builds the go-containerregistry reference of named at endpoint ep.
func remoteRef(ep endpoint, named reference.Named) (name.Reference, error) {
	var opts []name.Option
	if ep.insecure {
		opts = append(opts, name.Insecure)
	}
	repo := ep.host + "/" + reference.Path(named)
	if c, ok := named.(reference.Canonical); ok {
		return name.NewDigest(repo+"@"+c.Digest().String(), opts...)
	}
	if t, ok := named.(reference.Tagged); ok {
		return name.NewTag(repo+":"+t.Tag(), opts...)
	}
	return name.NewTag(repo+":latest", opts...)
}

func (s *Store) remoteOptions(ctx context.Context, ep endpoint, auth *registry.AuthConfig) []remote.Option {
	var transport http.RoundTripper = s.secureTransport
	if ep.insecure {
		transport = s.insecureTransport
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(transport),
		remote.WithAuth(authenticator(auth)),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}),
		remote.WithUserAgent("shoal"),
		remote.WithRetryPredicate(retryable),
	}
}

// retryable lets go-containerregistry retry a request only when the registry was
// reached: a registry that cannot be dialled or resolved (an offline edge node) fails
// at once instead of after seconds of back-off; the orchestrator retries tasks anyway.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return false
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return false
	}
	var netErr net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		(errors.As(err, &netErr) && netErr.Timeout())
}

// authenticator turns the credentials the API received into go-containerregistry's.
func authenticator(auth *registry.AuthConfig) authn.Authenticator {
	if auth == nil || (auth.Username == "" && auth.Password == "" && auth.Auth == "" &&
		auth.IdentityToken == "" && auth.RegistryToken == "") {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      auth.Username,
		Password:      auth.Password,
		Auth:          auth.Auth,
		IdentityToken: auth.IdentityToken,
		RegistryToken: auth.RegistryToken,
	})
}

// hostOf reduces a registry address ("http://127.0.0.1:5000/", "127.0.0.1:5000")
// to its host[:port].
func hostOf(addr string) string {
	if strings.Contains(addr, "://") {
		if u, err := url.Parse(addr); err == nil && u.Host != "" {
			return u.Host
		}
	}
	return strings.TrimSuffix(addr, "/")
}

// refSuffix is the tag or digest of named, the ID of the "Pulling from" line.
func refSuffix(named reference.Named) string {
	if c, ok := named.(reference.Canonical); ok {
		return c.Digest().String()
	}
	if t, ok := named.(reference.Tagged); ok {
		return t.Tag()
	}
	return "latest"
}
