package diskusage

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestDirCountsFilesOnceAndSkipsDirectories(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a", 100)
	write("sub/b", 20)
	write("sub/deeper/c", 3)
	for _, l := range []string{"link1", "sub/link2"} {
		if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a", filepath.Join(dir, "sym")); err != nil {
		t.Fatal(err)
	}
	got, err := Dir(context.Background(), dir)
	// The symlink counts as its own (small) file, as dockerd counts it.
	sym, _ := os.Lstat(filepath.Join(dir, "sym"))
	if want := int64(123) + sym.Size(); err != nil || got != want {
		t.Fatalf("Dir = %d, %v; want %d (a once, b, c, the symlink)", got, err, want)
	}
	if _, err := Dir(context.Background(), filepath.Join(dir, "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Dir of a missing dir: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Dir(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Fatalf("Dir with a cancelled context: %v", err)
	}
}
