package image

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	imagetypes "github.com/moby/moby/api/types/image"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
)

func openStore(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Root == "" {
		opts.Root = filepath.Join(t.TempDir(), "image")
	}
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func loadFile(t testing.TB, s *Store, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	loaded, err := s.Load(context.Background(), f)
	if err != nil {
		t.Fatalf("Load %s: %v", path, err)
	}
	return loaded
}

func hasClass(err error, class string) bool {
	switch class {
	case "notfound":
		var e interface{ NotFound() bool }
		return errors.As(err, &e) && e.NotFound()
	case "conflict":
		var e interface{ Conflict() bool }
		return errors.As(err, &e) && e.Conflict()
	case "invalid":
		var e interface{ InvalidParameter() bool }
		return errors.As(err, &e) && e.InvalidParameter()
	case "forbidden":
		var e interface{ Forbidden() bool }
		return errors.As(err, &e) && e.Forbidden()
	case "unavailable":
		var e interface{ Unavailable() bool }
		return errors.As(err, &e) && e.Unavailable()
	}
	return false
}

// checkBusyboxRootfs asserts the layer directories hold a usable busybox rootfs.
func checkBusyboxRootfs(t *testing.T, dirs []string) {
	t.Helper()
	if len(dirs) == 0 {
		t.Fatal("no layer directories")
	}
	base := dirs[0]
	fi, err := os.Stat(filepath.Join(base, "bin/busybox"))
	if err != nil {
		t.Fatalf("bin/busybox missing from lowest layer: %v", err)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("bin/busybox is not executable: %v", fi.Mode())
	}
	for _, applet := range []string{"sh", "ls", "cat", "sleep"} {
		target, err := os.Readlink(filepath.Join(base, "bin", applet))
		if err != nil || target != "busybox" {
			t.Errorf("bin/%s: symlink to %q, err %v; want busybox", applet, target, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(base, "tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("tmp: mode %v, err %v; want sticky 0777", fi.Mode(), err)
	}
	if data, err := os.ReadFile(filepath.Join(base, "etc/passwd")); err != nil || !strings.HasPrefix(string(data), "root:x:0:0:") {
		t.Errorf("etc/passwd: %q, %v", data, err)
	}
}

func TestLoadDockerArchive(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, Options{})
	archive := imagetest.BusyboxArchive(t, t.TempDir(), "loadtest:1",
		imagetest.WithLabels(map[string]string{"com.example.role": "test"}),
		imagetest.WithHealthcheck(dockerspec.HealthcheckConfig{Test: []string{"CMD", "true"}, Retries: 3}))

	loaded := loadFile(t, s, archive)
	if !slices.Equal(loaded, []string{"loadtest:1"}) {
		t.Fatalf("Load returned %v, want [loadtest:1]", loaded)
	}
	img, err := s.Get(ctx, "loadtest:1")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !strings.HasPrefix(img.ID, "sha256:") || len(img.ID) != 71 {
		t.Fatalf("ID = %q", img.ID)
	}
	for _, ref := range []string{
		"docker.io/library/loadtest:1", img.ID, strings.TrimPrefix(img.ID, "sha256:"),
		img.ID[7:10], img.ID[7:8], "sha256:" + img.ID[7:12],
	} {
		got, err := s.Get(ctx, ref)
		if err != nil || got.ID != img.ID {
			t.Errorf("Get(%q) = %s, %v; want %s", ref, got.ID, err, img.ID)
		}
	}
	_, err = s.Get(ctx, "loadtest")
	if !hasClass(err, "notfound") || err.Error() != "No such image: loadtest:latest" {
		t.Errorf("Get(loadtest) error = %v; want NotFound No such image: loadtest:latest", err)
	}

	if !slices.Equal(img.RepoTags, []string{"loadtest:1"}) || len(img.RepoDigests) != 0 {
		t.Errorf("RepoTags %v RepoDigests %v", img.RepoTags, img.RepoDigests)
	}
	if !slices.Equal(img.Config.Config.Cmd, []string{"sh"}) || !slices.Contains(img.Config.Config.Env, imagetest.DefaultPath) {
		t.Errorf("config Cmd %v Env %v", img.Config.Config.Cmd, img.Config.Config.Env)
	}
	if img.Config.Config.Healthcheck == nil || img.Config.Config.Healthcheck.Retries != 3 {
		t.Errorf("healthcheck lost: %+v", img.Config.Config.Healthcheck)
	}
	if img.Size < 500_000 {
		t.Errorf("Size = %d, want at least the busybox binary", img.Size)
	}

	insp := img.Inspect()
	if insp.ID != img.ID || insp.Os != "linux" || insp.RootFS.Type != "layers" || len(insp.RootFS.Layers) != 1 ||
		insp.Config == nil || insp.Config.Labels["com.example.role"] != "test" || insp.Created == "" {
		t.Errorf("Inspect = %+v", insp)
	}
	sum := img.Summary()
	if sum.ID != img.ID || !slices.Equal(sum.RepoTags, []string{"loadtest:1"}) || sum.RepoDigests == nil || sum.Size != img.Size || sum.Labels["com.example.role"] != "test" {
		t.Errorf("Summary = %+v", sum)
	}

	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != img.ID {
		t.Fatalf("List = %v, %v", list, err)
	}
	dirs, err := s.LayerDirs(ctx, img.ID)
	if err != nil {
		t.Fatalf("LayerDirs: %v", err)
	}
	checkBusyboxRootfs(t, dirs)
}

func TestLoadOCIArchiveAndGzipAndUntagged(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, Options{})
	dir := t.TempDir()

	oci := imagetest.BusyboxOCIArchive(t, dir, "example.com/team/ocitest:v2", imagetest.WithExtraTags("ocitest:latest"),
		imagetest.WithCmd("echo", "oci"))
	loaded := loadFile(t, s, oci)
	if !slices.Equal(loaded, []string{"example.com/team/ocitest:v2", "ocitest:latest"}) {
		t.Fatalf("OCI Load returned %v", loaded)
	}
	img, err := s.Get(ctx, "ocitest")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(img.RepoTags, []string{"example.com/team/ocitest:v2", "ocitest:latest"}) ||
		!slices.Equal(img.Config.Config.Cmd, []string{"echo", "oci"}) {
		t.Errorf("OCI image: tags %v cmd %v", img.RepoTags, img.Config.Config.Cmd)
	}
	dirs, err := s.LayerDirs(ctx, "example.com/team/ocitest:v2")
	if err != nil {
		t.Fatal(err)
	}
	checkBusyboxRootfs(t, dirs)

	gz := imagetest.BusyboxArchive(t, dir, "", imagetest.Gzip(), imagetest.WithCmd("true"))
	loaded = loadFile(t, s, gz)
	if len(loaded) != 1 || !strings.HasPrefix(loaded[0], "sha256:") {
		t.Fatalf("untagged Load returned %v, want the image ID", loaded)
	}
	untagged, err := s.Get(ctx, loaded[0])
	if err != nil || len(untagged.RepoTags) != 0 {
		t.Fatalf("Get untagged: %+v, %v", untagged, err)
	}
	if untagged.Summary().RepoTags == nil {
		t.Error("Summary RepoTags is null, want []")
	}
	// Same busybox layer, shared: both images point at one directory.
	udirs, _ := s.LayerDirs(ctx, untagged.ID)
	if udirs[0] != dirs[0] {
		t.Errorf("busybox layer not shared: %s vs %s", udirs[0], dirs[0])
	}

	if _, err := s.Load(ctx, strings.NewReader("not a tar")); !hasClass(err, "invalid") {
		t.Errorf("Load(garbage) error = %v, want InvalidParameter", err)
	}
}

func TestTagRemoveAndLayerLifetime(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, Options{})
	dir := t.TempDir()
	loadFile(t, s, imagetest.BusyboxArchive(t, dir, "rmtest:a"))
	second := loadFile(t, s, imagetest.BusyboxArchive(t, dir, "other:1",
		imagetest.WithLayer(imagetest.File("hello.txt", "hi\n", 0o644))))
	if len(second) != 1 {
		t.Fatal(second)
	}
	a, _ := s.Get(ctx, "rmtest:a")
	b, _ := s.Get(ctx, "other:1")
	bDirs, _ := s.LayerDirs(ctx, b.ID)
	if len(bDirs) != 2 {
		t.Fatalf("other:1 has %d layers, want 2", len(bDirs))
	}

	if err := s.Tag(ctx, "rmtest:a", "registry.example:5000/rm/test:b"); err != nil {
		t.Fatalf("Tag: %v", err)
	}
	if err := s.Tag(ctx, "rmtest:a", "x@sha256:"+strings.Repeat("a", 64)); !hasClass(err, "invalid") {
		t.Errorf("Tag to digest ref: %v, want InvalidParameter", err)
	}
	if err := s.Tag(ctx, "nothere", "y:1"); !hasClass(err, "notfound") {
		t.Errorf("Tag of missing image: %v, want NotFound", err)
	}
	got, _ := s.Get(ctx, "registry.example:5000/rm/test:b")
	if got.ID != a.ID || len(got.RepoTags) != 2 || got.Inspect().Metadata.LastTagTime.IsZero() {
		t.Fatalf("after Tag: %+v", got.RepoTags)
	}

	_, err := s.Remove(ctx, a.ID, false)
	if !hasClass(err, "conflict") || !strings.Contains(err.Error(), "must be forced") {
		t.Fatalf("Remove by ID with two repositories: %v, want Conflict", err)
	}
	resp, err := s.Remove(ctx, "rmtest:a", false)
	if err != nil || !slices.Equal(resp, []imagetypes.DeleteResponse{{Untagged: "rmtest:a"}}) {
		t.Fatalf("Remove tag = %+v, %v", resp, err)
	}
	resp, err = s.Remove(ctx, "registry.example:5000/rm/test:b", false)
	want := []imagetypes.DeleteResponse{{Untagged: "registry.example:5000/rm/test:b"}, {Deleted: a.ID}}
	if err != nil || !slices.Equal(resp, want) {
		t.Fatalf("Remove last tag = %+v, %v; want %+v", resp, err, want)
	}
	if _, err := s.Get(ctx, a.ID); !hasClass(err, "notfound") {
		t.Errorf("Get removed image: %v", err)
	}
	// The busybox layer is still used by other:1.
	if _, err := os.Stat(filepath.Join(bDirs[0], "bin/busybox")); err != nil {
		t.Fatalf("shared layer deleted while in use: %v", err)
	}

	// Force-remove by ID: untags everything and deletes the layers.
	if err := s.Tag(ctx, "other:1", "other:2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, "other:1", "third:1"); err != nil {
		t.Fatal(err)
	}
	resp, err = s.Remove(ctx, b.ID[7:19], true)
	if err != nil || len(resp) != 4 || resp[3].Deleted != b.ID {
		t.Fatalf("force Remove = %+v, %v", resp, err)
	}
	for _, d := range bDirs {
		if _, err := os.Stat(filepath.Dir(d)); !os.IsNotExist(err) {
			t.Errorf("layer %s left behind: %v", d, err)
		}
	}
	if list, _ := s.List(ctx); len(list) != 0 {
		t.Errorf("List after removing all = %d images", len(list))
	}
	if _, err := s.Remove(ctx, "other:1", false); !hasClass(err, "notfound") {
		t.Errorf("Remove of missing: %v, want NotFound", err)
	}
}

func TestRemoveByIDSingleRepository(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, Options{})
	loadFile(t, s, imagetest.BusyboxArchive(t, t.TempDir(), "single:1"))
	img, _ := s.Get(ctx, "single:1")
	resp, err := s.Remove(ctx, img.ID, false)
	want := []imagetypes.DeleteResponse{{Untagged: "single:1"}, {Deleted: img.ID}}
	if err != nil || !slices.Equal(resp, want) {
		t.Fatalf("Remove by ID = %+v, %v; want %+v", resp, err, want)
	}
}

func TestReopenKeepsImages(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "image")
	s := openStore(t, Options{Root: root})
	loadFile(t, s, imagetest.BusyboxArchive(t, t.TempDir(), "persist:1", imagetest.WithEnv("FOO=bar")))
	if err := s.Tag(ctx, "persist:1", "persist:2"); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Get(ctx, "persist:1")
	s.Close()

	// A crash mid-load leaves a temporary layer and an unreferenced layer directory.
	os.MkdirAll(filepath.Join(root, "tmp", "layer-123", "diff"), 0o755)
	orphan := filepath.Join(root, "layers", strings.Repeat("b", 64))
	os.MkdirAll(filepath.Join(orphan, "diff"), 0o755)

	s2 := openStore(t, Options{Root: root})
	after, err := s2.Get(ctx, "persist:2")
	if err != nil {
		t.Fatalf("Get after reopen: %v", err)
	}
	if after.ID != before.ID || !slices.Equal(after.RepoTags, []string{"persist:1", "persist:2"}) ||
		after.Size != before.Size || !slices.Contains(after.Config.Config.Env, "FOO=bar") {
		t.Errorf("after reopen: %+v; before: %+v", after, before)
	}
	dirs, err := s2.LayerDirs(ctx, "persist:1")
	if err != nil {
		t.Fatal(err)
	}
	checkBusyboxRootfs(t, dirs)
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("orphan layer kept after reopen: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "tmp", "layer-123")); !os.IsNotExist(err) {
		t.Errorf("temporary layer kept after reopen: %v", err)
	}
}

func TestConcurrentLoads(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, Options{})
	dir := t.TempDir()
	archives := []string{
		imagetest.BusyboxArchive(t, dir, "conc:1"),
		imagetest.BusyboxArchive(t, dir, "conc:2", imagetest.WithCmd("true")),
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := os.Open(archives[i%2])
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			if _, err := s.Load(ctx, f); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Load: %v", err)
	}
	list, _ := s.List(ctx)
	if len(list) != 2 {
		t.Fatalf("List = %d images, want 2", len(list))
	}
	entries, _ := os.ReadDir(filepath.Join(s.root, "layers"))
	if len(entries) != 1 {
		t.Errorf("%d layer directories, want 1 shared busybox layer", len(entries))
	}
}
