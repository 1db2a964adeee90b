package image

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	imagetypes "github.com/moby/moby/api/types/image"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
)

func TestPruneDanglingThenAll(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, Options{})
	dir := t.TempDir()
	extra := imagetest.WithLayer(imagetest.File("old.txt", strings.Repeat("x", 4096), 0o644))
	loadFile(t, s, imagetest.BusyboxArchive(t, dir, "app:1", imagetest.WithCmd("old"), extra))
	old, _ := s.Get(ctx, "app:1")
	// Loading a new app:1 moves the tag: the old image is left dangling.
	loadFile(t, s, imagetest.BusyboxArchive(t, dir, "app:1", imagetest.WithCmd("new")))
	app, _ := s.Get(ctx, "app:1")
	loadFile(t, s, imagetest.BusyboxArchive(t, dir, "used:1", imagetest.WithCmd("used")))
	used, _ := s.Get(ctx, "used:1")
	loadFile(t, s, imagetest.BusyboxArchive(t, dir, "labelled:1", imagetest.WithCmd("labelled"),
		imagetest.WithLabels(map[string]string{"keep": "yes"})))
	if old.ID == app.ID {
		t.Fatal("test images must differ")
	}
	oldLayer := old.DiffIDs[len(old.DiffIDs)-1]
	oldSize, ok, err := s.layerSize(oldLayer)
	if err != nil || !ok || oldSize == 0 {
		t.Fatalf("size of the old image's own layer: %d %v %v", oldSize, ok, err)
	}
	inUse := func(id string) bool { return id == used.ID }
	keep := func(labels map[string]string) bool { return labels["keep"] != "yes" }

	// until before every image's creation keeps everything.
	rep, err := s.Prune(ctx, PruneOptions{All: true, Until: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil || len(rep.ImagesDeleted) != 0 {
		t.Fatalf("prune until 2020: %+v, %v; want nothing", rep, err)
	}

	rep, err = s.Prune(ctx, PruneOptions{InUse: inUse, Match: keep})
	if err != nil {
		t.Fatal(err)
	}
	want := []imagetypes.DeleteResponse{{Deleted: old.ID}}
	if !slices.Equal(rep.ImagesDeleted, want) || rep.SpaceReclaimed != uint64(oldSize) {
		t.Fatalf("dangling prune = %+v; want %+v and %d bytes", rep, want, oldSize)
	}
	if _, err := os.Stat(s.layerDir(oldLayer)); !os.IsNotExist(err) {
		t.Fatalf("the dangling image's own layer is still on disk: %v", err)
	}

	rep, err = s.Prune(ctx, PruneOptions{All: true, InUse: inUse, Match: keep})
	if err != nil {
		t.Fatal(err)
	}
	want = []imagetypes.DeleteResponse{{Untagged: "app:1"}, {Deleted: app.ID}}
	if !slices.Equal(rep.ImagesDeleted, want) || rep.SpaceReclaimed != 0 {
		t.Fatalf("prune -a = %+v; want %+v, nothing reclaimed (the busybox layer is shared)", rep, want)
	}
	var left []string
	list, _ := s.List(ctx)
	for _, im := range list {
		left = append(left, im.RepoTags...)
	}
	slices.Sort(left)
	if !slices.Equal(left, []string{"labelled:1", "used:1"}) {
		t.Fatalf("images left %v, want the used and the labelled one", left)
	}

	// Once nothing uses it, the last image goes with the shared layer.
	rep, err = s.Prune(ctx, PruneOptions{All: true})
	if err != nil || len(rep.ImagesDeleted) != 4 || rep.SpaceReclaimed == 0 {
		t.Fatalf("prune -a of everything = %+v, %v; want 2 untagged, 2 deleted, bytes reclaimed", rep, err)
	}
	if dirs, _ := os.ReadDir(s.layersDir()); len(dirs) != 0 {
		t.Fatalf("%d layers left after every image was pruned", len(dirs))
	}
}
