package image

import (
	"regexp"
	"strings"

	"github.com/distribution/reference"
)

// hexPrefix matches what a user may type for an image ID: hex digits, optionally
// behind the "sha256:" algorithm prefix.
var hexPrefix = regexp.MustCompile(`^(sha256:)?[0-9a-f]{1,64}$`)

// parseNamed normalizes a user-supplied reference to its fully qualified form
// ("busybox" becomes "docker.io/library/busybox:latest"). A reference carrying both
// a tag and a digest keeps only the digest, as the digest is what identifies it.
func parseNamed(ref string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, errInvalidReference(ref, err)
	}
	if canonical, ok := named.(reference.Canonical); ok {
		if _, tagged := named.(reference.Tagged); tagged {
			return reference.WithDigest(reference.TrimNamed(named), canonical.Digest())
		}
		return canonical, nil
	}
	return reference.TagNameOnly(named), nil
}

// familiar turns a stored, fully qualified reference back into the short form the
// docker CLI shows ("docker.io/library/busybox:latest" becomes "busybox:latest").
func familiar(full string) string {
	named, err := reference.ParseNormalizedNamed(full)
	if err != nil {
		return full
	}
	return reference.FamiliarString(named)
}

// repositoryOf returns the repository part of a stored reference
// ("docker.io/library/busybox").
func repositoryOf(full string) string {
	named, err := reference.ParseNormalizedNamed(full)
	if err != nil {
		return full
	}
	return named.Name()
}

// isDigestRef reports whether a stored reference pins a digest rather than a tag.
func isDigestRef(full string) bool {
	return strings.Contains(full, "@")
}

// shortID is the 12-digit form of an image ID that Docker prints in messages.
func shortID(id string) string {
	hex := strings.TrimPrefix(id, "sha256:")
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return hex
}
