package image

import (
	"encoding/json"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestHistory(t *testing.T) {
	t1, t2 := time.Unix(1000, 0), time.Unix(2000, 0)
	im := Image{
		ID:         "sha256:abc",
		RepoTags:   []string{"app:1", "app:latest"},
		DiffIDs:    []string{"sha256:l0", "sha256:l1"},
		LayerSizes: []int64{700, 30},
		Config: dockerspec.DockerOCIImage{Image: ocispec.Image{History: []ocispec.History{
			{Created: &t1, CreatedBy: "ADD rootfs /"},
			{Created: &t1, CreatedBy: "ENV A=1", EmptyLayer: true},
			{Created: &t2, CreatedBy: "RUN make", Comment: "built"},
			{CreatedBy: "CMD sh", EmptyLayer: true},
		}}},
	}
	got, err := im.History()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	want := `[{"Comment":"","Created":0,"CreatedBy":"CMD sh","Id":"sha256:abc","Size":0,"Tags":["app:1","app:latest"]},` +
		`{"Comment":"built","Created":2000,"CreatedBy":"RUN make","Id":"\u003cmissing\u003e","Size":30,"Tags":null},` +
		`{"Comment":"","Created":1000,"CreatedBy":"ENV A=1","Id":"\u003cmissing\u003e","Size":0,"Tags":null},` +
		`{"Comment":"","Created":1000,"CreatedBy":"ADD rootfs /","Id":"\u003cmissing\u003e","Size":700,"Tags":null}]`
	if string(b) != want {
		t.Errorf("History =\n%s\nwant\n%s", b, want)
	}

	// No history: an empty list, not null. More layers named than stored: an error.
	if got, err := (Image{ID: "sha256:x"}).History(); err != nil || got == nil || len(got) != 0 {
		t.Errorf("empty history = %v, %v", got, err)
	}
	im.DiffIDs = im.DiffIDs[:1]
	if _, err := im.History(); err == nil {
		t.Error("a history naming more layers than the image has was accepted")
	}
}
