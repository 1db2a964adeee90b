package image

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
)

// maxPeerPath bounds the URL path of a peer request: "/v2/", a repository of at
// most 255 characters, "/manifests/" and a tag of at most 128 fit with room.
const maxPeerPath = 512

// peerRepoChars are the characters go-containerregistry (and the distribution
// grammar) allow in a repository.
const peerRepoChars = "abcdefghijklmnopqrstuvwxyz0123456789_-./"

// peerRepository is how the peer protocol names the repository of named in a URL
// path: its full normalized name, domain included ("docker.io/library/busybox").
// A registry port, which no path component of the distribution grammar allows,
// is written with "_" ("localhost_5000/app"): a domain has no "_". Domains with
// upper-case letters or IPv6 addresses have no such form; their images are not
// shared between nodes.
func peerRepository(named reference.Named) (string, error) {
	repo := strings.Replace(reference.Domain(named), ":", "_", 1) + "/" + reference.Path(named)
	if len(repo) > 255 || strings.ContainsFunc(repo, func(r rune) bool { return !strings.ContainsRune(peerRepoChars, r) }) {
		return "", invalidParameterError{msg: fmt.Sprintf("image %s cannot be fetched from a peer: its repository has no name in the peer protocol", reference.FamiliarString(named))}
	}
	return repo, nil
}

// peerRequestKind is what a peer request asks for.
type peerRequestKind int

const (
	peerPing     peerRequestKind = iota // GET /v2/
	peerManifest                        // /v2/<repository>/manifests/<tag or digest>
	peerBlob                            // /v2/<repository>/blobs/<digest>
)

// peerRequest is the URL path of a peer request, parsed.
type peerRequest struct {
	kind   peerRequestKind
	repo   reference.Named // name only, fully qualified
	tag    string          // a manifest by tag, or
	digest digest.Digest   // a manifest or blob by (sha256) digest
}

// reference is the image reference a manifest request names, for messages.
func (r peerRequest) reference() string {
	if r.tag != "" {
		return r.repo.Name() + ":" + r.tag
	}
	return r.repo.Name() + "@" + r.digest.String()
}

// peerPathError is a path the peer protocol refuses, with the registry error code
// and HTTP status to answer it with.
type peerPathError struct {
	status int
	code   transport.ErrorCode
	msg    string
}

func (e peerPathError) Error() string { return e.msg }

// parsePeerPath parses the URL path of a peer request. It accepts only the
// canonical spelling of each request, so that a path names one thing one way.
func parsePeerPath(p string) (peerRequest, error) {
	if len(p) > maxPeerPath {
		return peerRequest{}, peerPathError{400, transport.NameInvalidErrorCode, "request path too long"}
	}
	if p == "/v2/" || p == "/v2" {
		return peerRequest{kind: peerPing}, nil
	}
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return peerRequest{}, noSuchRoute()
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return peerRequest{}, noSuchRoute()
	}
	head, ref := rest[:i], rest[i+1:]
	var req peerRequest
	var repo string
	if repo, ok = strings.CutSuffix(head, "/manifests"); ok {
		req.kind = peerManifest
	} else if repo, ok = strings.CutSuffix(head, "/blobs"); ok {
		req.kind = peerBlob
	} else {
		return peerRequest{}, noSuchRoute()
	}
	named, err := parsePeerRepository(repo)
	if err != nil {
		return peerRequest{}, err
	}
	req.repo = named
	if strings.HasPrefix(ref, "sha256:") || req.kind == peerBlob {
		d, err := digest.Parse(ref)
		if err != nil || d.Algorithm() != digest.SHA256 {
			return peerRequest{}, peerPathError{400, transport.DigestInvalidErrorCode, fmt.Sprintf("invalid sha256 digest %q", ref)}
		}
		req.digest = d
		return req, nil
	}
	if _, err := reference.WithTag(named, ref); err != nil {
		return peerRequest{}, peerPathError{400, transport.TagInvalidErrorCode, fmt.Sprintf("invalid tag %q", ref)}
	}
	req.tag = ref
	return req, nil
}

// noSuchRoute answers a path that is not part of the protocol.
func noSuchRoute() error {
	return peerPathError{404, transport.UnsupportedErrorCode, "not part of the peer image protocol"}
}

// parsePeerRepository reverses peerRepository.
func parsePeerRepository(repo string) (reference.Named, error) {
	invalid := peerPathError{400, transport.NameInvalidErrorCode, fmt.Sprintf("invalid repository %q: want a fully qualified name, domain first", repo)}
	domain, path, ok := strings.Cut(repo, "/")
	if !ok || strings.Count(domain, "_") > 1 {
		return nil, invalid
	}
	named, err := reference.ParseNamed(strings.Replace(domain, "_", ":", 1) + "/" + path)
	if err != nil || !reference.IsNameOnly(named) {
		return nil, invalid
	}
	if again, err := peerRepository(named); err != nil || again != repo {
		return nil, invalid
	}
	return named, nil
}
