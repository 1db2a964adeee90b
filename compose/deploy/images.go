package deploy

import (
	"context"
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"
	"github.com/opencontainers/go-digest"

	"github.com/shoal-project/shoal/compose"
)

// ResolveMode says when a deploy asks the registry for an image's digest, as
// the docker CLI's --resolve-image does.
type ResolveMode string

// The modes of --resolve-image.
const (
	// ResolveAlways pins every service's image to its current digest.
	ResolveAlways ResolveMode = "always"
	// ResolveChanged pins only images that are new or that the files changed;
	// others keep what they were pinned to.
	ResolveChanged ResolveMode = "changed"
	// ResolveNever never asks the registry; an image the files did not
	// change keeps what it was pinned to.
	ResolveNever ResolveMode = "never"
)

// ParseResolveMode checks a --resolve-image value.
func ParseResolveMode(s string) (ResolveMode, error) {
	switch m := ResolveMode(s); m {
	case ResolveAlways, ResolveChanged, ResolveNever:
		return m, nil
	}
	return "", fmt.Errorf("invalid --resolve-image %q: want always, changed or never", s)
}

// Auth gives the encoded registry credential (X-Registry-Auth) for an image;
// nil sends none.
type Auth func(image string) (string, error)

// ResolveImages sets each service's image as the docker CLI's stack deploy
// would have the daemon store it, before the plan compares it: tagged
// (busybox is busybox:latest), then, where mode asks the registry, pinned to
// its digest (busybox:latest@sha256:...) with the image's platforms as
// placement unless the file places by platform itself. An image the files
// did not change (the service's ImageLabel) keeps the stored one, and its
// platforms, unless mode is always. An image the registry does not answer
// for stays tagged, and a warning says so, as with the docker CLI. It
// returns those warnings.
func ResolveImages(ctx context.Context, eng Engine, st *compose.Stack, cur State, mode ResolveMode, auth Auth) ([]string, error) {
	var warnings []string
	type lookup struct {
		info registry.DistributionInspect
		err  error
	}
	looked := map[string]lookup{} // an image many services run is asked for once
	for i := range st.Services {
		spec := &st.Services[i].Spec
		cs := spec.TaskTemplate.ContainerSpec
		if cs == nil || cs.Image == "" {
			continue
		}
		fileImage := cs.Image
		old, exists := cur.Services[spec.Name]
		unchanged := exists && old.Spec.TaskTemplate.ContainerSpec != nil && sameImage(old.Spec, fileImage)
		if unchanged && mode != ResolveAlways {
			keepStoredImage(spec, old.Spec)
			continue
		}
		img := tagged(fileImage)
		if mode == ResolveNever {
			setImage(spec, img)
			continue
		}
		l, ok := looked[img]
		if !ok {
			var enc string
			if auth != nil {
				var err error
				if enc, err = auth(img); err != nil {
					return nil, fmt.Errorf("service %s: %w", st.Services[i].Name, err)
				}
			}
			l.info, l.err = eng.DistributionInspect(ctx, img, enc)
			looked[img] = l
			if l.err != nil {
				warnings = append(warnings, fmt.Sprintf("image %s could not be accessed on a registry to record its digest (%v): "+
					"each node will pull %s itself, and nodes may run different versions of it", img, l.err, img))
			}
		}
		if l.err != nil {
			setImage(spec, img)
			continue
		}
		info := l.info
		setImage(spec, pinned(img, info.Descriptor.Digest))
		if pl := spec.TaskTemplate.Placement; pl == nil || len(pl.Platforms) == 0 {
			var platforms []swarm.Platform
			for _, p := range info.Platforms {
				arch := p.Architecture
				if strings.EqualFold(arch, "arm") {
					arch = "" // nodes report armv7l and the like: match any arm
				}
				platforms = append(platforms, swarm.Platform{Architecture: arch, OS: p.OS})
			}
			setPlatforms(spec, platforms)
		}
	}
	return warnings, nil
}

// sameImage reports whether stored was deployed from fileImage: its
// ImageLabel says so, or, for a service deployed before shoal set the label,
// its image is fileImage as written or tagged.
func sameImage(stored swarm.ServiceSpec, fileImage string) bool {
	if label, ok := stored.Labels[compose.ImageLabel]; ok {
		return label == fileImage
	}
	img := stored.TaskTemplate.ContainerSpec.Image
	return img == fileImage || img == tagged(fileImage)
}

// keepStoredImage gives spec the stored image and, if the file places by no
// platform, the stored platforms: what an earlier deploy pinned.
func keepStoredImage(spec *swarm.ServiceSpec, stored swarm.ServiceSpec) {
	setImage(spec, stored.TaskTemplate.ContainerSpec.Image)
	if pl := spec.TaskTemplate.Placement; (pl == nil || len(pl.Platforms) == 0) && stored.TaskTemplate.Placement != nil {
		setPlatforms(spec, stored.TaskTemplate.Placement.Platforms)
	}
}

// setImage replaces the image in a copy of spec's container spec: the
// stack's specs share nothing with what the caller may hold.
func setImage(spec *swarm.ServiceSpec, image string) {
	cs := *spec.TaskTemplate.ContainerSpec
	cs.Image = image
	spec.TaskTemplate.ContainerSpec = &cs
}

func setPlatforms(spec *swarm.ServiceSpec, platforms []swarm.Platform) {
	if len(platforms) == 0 {
		return
	}
	pl := swarm.Placement{}
	if spec.TaskTemplate.Placement != nil {
		pl = *spec.TaskTemplate.Placement
	}
	pl.Platforms = platforms
	spec.TaskTemplate.Placement = &pl
}

// tagged is image with the tag latest when it has neither tag nor digest, in
// its familiar form; an image that does not parse is left for the daemon to
// refuse.
func tagged(image string) string {
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return image
	}
	return reference.FamiliarString(reference.TagNameOnly(ref))
}

// pinned is image with digest added, its tag kept; an image already pinned,
// or a digest that does not parse, leaves image as it is.
func pinned(image string, dgst digest.Digest) string {
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return image
	}
	if _, ok := ref.(reference.Canonical); ok {
		return image
	}
	withDigest, err := reference.WithDigest(ref, dgst)
	if err != nil {
		return image
	}
	return reference.FamiliarString(withDigest)
}
