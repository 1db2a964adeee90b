package deploy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/shoal-project/shoal/compose"
)

// registryEngine answers DistributionInspect from digests by image and
// records the credentials it was given; the rest of Engine is not called.
type registryEngine struct {
	Engine
	digests map[string]string
	auths   []string
}

func (e *registryEngine) DistributionInspect(_ context.Context, image, auth string) (registry.DistributionInspect, error) {
	e.auths = append(e.auths, auth)
	d, ok := e.digests[image]
	if !ok {
		return registry.DistributionInspect{}, errors.New("manifest unknown")
	}
	return registry.DistributionInspect{
		Descriptor: ocispec.Descriptor{Digest: digest.Digest("sha256:" + strings.Repeat(d, 64))},
		Platforms:  []ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm"}},
	}, nil
}

func TestResolveImages(t *testing.T) {
	pin := func(image, d string) string { return image + "@sha256:" + strings.Repeat(d, 64) }
	stored := func(fileImage, image string) State {
		cur := deployed(2)
		svc := cur.Services["s_web"]
		svc.Spec.Labels = map[string]string{compose.ImageLabel: fileImage}
		cs := *svc.Spec.TaskTemplate.ContainerSpec
		cs.Image = image
		svc.Spec.TaskTemplate.ContainerSpec = &cs
		svc.Spec.TaskTemplate.Placement = &swarm.Placement{Platforms: []swarm.Platform{{OS: "linux", Architecture: "amd64"}}}
		cur.Services["s_web"] = svc
		return cur
	}
	// unlabelled is a service deployed before shoal labelled the file's image.
	unlabelled := func(image string) State {
		cur := stored("", image)
		delete(cur.Services["s_web"].Spec.Labels, compose.ImageLabel)
		return cur
	}
	tests := []struct {
		name      string
		mode      ResolveMode
		cur       State
		want      string
		platforms int
	}{
		{"new, always: tagged and pinned", ResolveAlways, State{}, pin("busybox:latest", "b"), 2},
		{"new, changed: pinned", ResolveChanged, State{}, pin("busybox:latest", "b"), 2},
		{"new, never: tagged", ResolveNever, State{}, "busybox:latest", 0},
		{"unchanged, changed: kept", ResolveChanged, stored("busybox", pin("busybox:latest", "a")), pin("busybox:latest", "a"), 1},
		{"unchanged, never: kept", ResolveNever, stored("busybox", pin("busybox:latest", "a")), pin("busybox:latest", "a"), 1},
		{"unchanged, always: pinned again", ResolveAlways, stored("busybox", pin("busybox:latest", "a")), pin("busybox:latest", "b"), 2},
		{"changed, changed: pinned", ResolveChanged, stored("busybox:1", pin("busybox:1", "a")), pin("busybox:latest", "b"), 2},
		{"no label, same image, never: kept", ResolveNever, unlabelled("busybox"), "busybox", 1},
		{"no label, same image tagged, changed: kept", ResolveChanged, unlabelled("busybox:latest"), "busybox:latest", 1},
		{"no label, other image, never: tagged", ResolveNever, unlabelled("busybox:1"), "busybox:latest", 0},
		{"changed, never: tagged, old platforms gone", ResolveNever, stored("busybox:1", pin("busybox:1", "a")), "busybox:latest", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := stack()
			eng := &registryEngine{digests: map[string]string{"busybox:latest": "b"}}
			warnings, err := ResolveImages(context.Background(), eng, st, tt.cur, tt.mode, nil)
			if err != nil {
				t.Fatal(err)
			}
			spec := st.Services[0].Spec
			if got := spec.TaskTemplate.ContainerSpec.Image; got != tt.want {
				t.Errorf("image %s, want %s", got, tt.want)
			}
			var platforms []swarm.Platform
			if spec.TaskTemplate.Placement != nil {
				platforms = spec.TaskTemplate.Placement.Platforms
			}
			if len(platforms) != tt.platforms || (len(platforms) == 2 && platforms[1].Architecture != "") {
				t.Errorf("platforms %+v, want %d (arm without its architecture)", platforms, tt.platforms)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings %q", warnings)
			}
		})
	}
	if img := stack().Services[0].Spec.TaskTemplate.ContainerSpec.Image; img != "busybox" {
		t.Fatalf("the fixture's image is %s", img)
	}
}

// An image the registry does not know stays tagged and is warned about,
// once for the services that run it, and the credentials go with the one
// lookup.
func TestResolveImageUnknown(t *testing.T) {
	st := stack()
	second := st.Services[0]
	second.Name = "web2"
	st.Services = append(st.Services, second)
	eng := &registryEngine{}
	auth := func(image string) (string, error) { return "creds-for-" + image, nil }
	warnings, err := ResolveImages(context.Background(), eng, st, State{}, ResolveAlways, auth)
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range st.Services {
		if got := svc.Spec.TaskTemplate.ContainerSpec.Image; got != "busybox:latest" {
			t.Errorf("%s's image %s, want busybox:latest", svc.Name, got)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "busybox:latest could not be accessed on a registry") || !strings.Contains(warnings[0], "manifest unknown") {
		t.Errorf("warnings %q", warnings)
	}
	if len(eng.auths) != 1 || eng.auths[0] != "creds-for-busybox:latest" {
		t.Errorf("lookups sent credentials %q", eng.auths)
	}
}
