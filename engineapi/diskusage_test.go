package engineapi

import (
	"regexp"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"

	img "github.com/shoal-project/shoal/runtime/image"
)

// docker system df with one task running on busybox: the image is active, the
// images' size is their layers' and the container's the bytes it wrote.
func TestSystemDFCountsImageUseAndSizes(t *testing.T) {
	busybox := img.Image{
		ID: "sha256:" + strings.Repeat("a0", 32), RepoTags: []string{"busybox:latest"},
		DiffIDs: []string{"sha256:" + strings.Repeat("1", 64)}, LayerSizes: []int64{1984241}, Size: 1984241,
	}
	unused := img.Image{
		ID: "sha256:" + strings.Repeat("b0", 32), RepoTags: []string{"other:1"},
		DiffIDs: []string{busybox.DiffIDs[0], "sha256:" + strings.Repeat("2", 64)}, LayerSizes: []int64{1984241, 1000}, Size: 1985241,
	}
	ct := &systemContainersFake{
		list: []container.Summary{{
			ID: strings.Repeat("c", 64), Names: []string{"/pi.1.x"}, Image: "busybox:latest", ImageID: busybox.ID, State: container.StateRunning,
		}},
		sizes: map[string][2]int64{strings.Repeat("c", 64): {5000, 5000 + 1984241}},
	}
	api := startSystemAPI(t, Config{Containers: ct, Images: &imageFake{images: []img.Image{busybox, unused}}})
	out, errOut, err := api.docker(t, "system", "df")
	if err != nil {
		t.Fatalf("docker system df: %v\n%s", err, errOut)
	}
	// Two images, one in use; their layers counted once (1.984MB + 1kB).
	if !regexp.MustCompile(`(?m)^Images\s+2\s+1\s+1\.985MB\s`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^Containers\s+1\s+1\s+5kB\s`).MatchString(out) {
		t.Errorf("docker system df printed:\n%s", out)
	}
	out, errOut, err = api.docker(t, "system", "df", "-v")
	if err != nil {
		t.Fatalf("docker system df -v: %v\n%s", err, errOut)
	}
	// REPOSITORY TAG IMAGE ID CREATED SIZE SHARED SIZE UNIQUE SIZE CONTAINERS
	if !regexp.MustCompile(`(?m)^busybox\s+latest\s+a0a0a0a0a0a0\s+.*\s1\.98MB\s+1\.984MB\s+0B\s+1\s*$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^other\s+1\s+b0b0b0b0b0b0\s+.*\s1\.99MB\s+1\.984MB\s+1kB\s+0\s*$`).MatchString(out) {
		t.Errorf("docker system df -v printed:\n%s", out)
	}
}
