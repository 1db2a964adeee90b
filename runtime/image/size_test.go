package image

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
)

// busyboxDiskSize is the busybox test image's size as dockerd reports it: the
// files' sizes (a symlink's is its target's length), not the layer tar's.
func busyboxDiskSize(t *testing.T) int64 {
	t.Helper()
	bin, err := os.Stat(imagetest.BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(imagetest.BusyboxPath, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	size := bin.Size() + int64(len("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")) +
		int64(len("root:x:0:\nnogroup:x:65534:\n"))
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" {
			size += int64(len("busybox"))
		}
	}
	return size
}

// docker images shows the unpacked files' size, as dockerd does, with a file and
// its hard link counted once.
func TestImageSizeIsTheUnpackedFilesSize(t *testing.T) {
	s := openStore(t, Options{})
	dir := t.TempDir()
	archive := imagetest.BusyboxArchive(t, dir, "sized:1",
		imagetest.WithLayer(imagetest.File("data/a", strings.Repeat("x", 1000), 0o644), imagetest.Hardlink("data/b", "data/a")))
	loadFile(t, s, archive)
	img, err := s.Get(context.Background(), "sized:1")
	if err != nil {
		t.Fatal(err)
	}
	want := busyboxDiskSize(t) + 1000
	if img.Size != want {
		t.Fatalf("Size = %d, want %d (the files, a hard link once)", img.Size, want)
	}
	if img.Inspect().Size != want || img.Summary().Size != want {
		t.Fatalf("inspect %d, summary %d, want %d", img.Inspect().Size, img.Summary().Size, want)
	}
	if len(img.LayerSizes) != 2 || img.LayerSizes[1] != 1000 {
		t.Fatalf("layer sizes %v, want the second layer's 1000 bytes", img.LayerSizes)
	}
}

// A store written before sizes were counted this way (tar sizes, no per-layer
// sizes) gets dockerd's sizes when it is opened.
func TestOldStoreSizesAreRecomputedOnOpen(t *testing.T) {
	root := filepath.Join(t.TempDir(), "image")
	s, err := Open(context.Background(), Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	loadFile(t, s, imagetest.BusyboxArchive(t, t.TempDir(), "old:1"))
	img, err := s.Get(context.Background(), "old:1")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Make it look like an older version's store.
	for _, d := range img.DiffIDs {
		layer := filepath.Join(root, "layers", strings.TrimPrefix(d, "sha256:"))
		if err := os.Remove(filepath.Join(layer, diffSizeFile)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(layer, tarSizeFile), []byte("2129920"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	metaPath := filepath.Join(root, "images.json")
	raw, err := os.ReadFile(metaPath)
	if err != nil {
		t.Fatal(err)
	}
	var meta metadataFile
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	for i := range meta.Images {
		meta.Images[i].Size, meta.Images[i].LayerSizes = 2129920, nil
	}
	if raw, err = json.Marshal(meta); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(metaPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}

	s2 := openStore(t, Options{Root: root})
	got, err := s2.Get(context.Background(), "old:1")
	if err != nil {
		t.Fatal(err)
	}
	if want := busyboxDiskSize(t); got.Size != want || len(got.LayerSizes) != 1 || got.LayerSizes[0] != want {
		t.Fatalf("after reopening: Size %d layers %v, want %d", got.Size, got.LayerSizes, want)
	}
}

// docker system df: ACTIVE counts images containers use, SHARED SIZE the layers
// another image has too, and the total counts each layer once.
func TestDiskUsage(t *testing.T) {
	base := Image{ID: "sha256:aaa", DiffIDs: []string{"sha256:l1"}, LayerSizes: []int64{100}, Size: 100}
	child := Image{ID: "sha256:bbb", DiffIDs: []string{"sha256:l1", "sha256:l2"}, LayerSizes: []int64{100, 30}, Size: 130}
	lone := Image{ID: "sha256:ccc", DiffIDs: []string{"sha256:l3"}, LayerSizes: []int64{7}, Size: 7}
	total, sums := DiskUsage([]Image{base, child, lone}, map[string]int{"sha256:bbb": 2})
	if total != 137 {
		t.Fatalf("LayersSize %d, want 137", total)
	}
	want := map[string][3]int64{ // containers, size, shared size
		"sha256:aaa": {0, 100, 100}, "sha256:bbb": {2, 130, 100}, "sha256:ccc": {0, 7, 0},
	}
	for _, s := range sums {
		if got := [3]int64{s.Containers, s.Size, s.SharedSize}; got != want[s.ID] {
			t.Errorf("%s: containers, size, shared = %v, want %v", s.ID, got, want[s.ID])
		}
	}
}
