package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
)

// mergeArchives combines `docker save` archives into one multi-image archive, as
// `docker save a b` writes.
func mergeArchives(t *testing.T, paths ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var manifest []json.RawMessage
	seen := map[string]bool{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(f)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(tr)
			if hdr.Name == "manifest.json" {
				var entries []json.RawMessage
				if err := json.Unmarshal(data, &entries); err != nil {
					t.Fatal(err)
				}
				manifest = append(manifest, entries...)
				continue
			}
			if seen[hdr.Name] {
				continue
			}
			seen[hdr.Name] = true
			tw.WriteHeader(hdr)
			tw.Write(data)
		}
		f.Close()
	}
	data, _ := json.Marshal(manifest)
	tw.WriteHeader(&tar.Header{Name: "manifest.json", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))})
	tw.Write(data)
	tw.Close()
	return buf.Bytes()
}

func TestLoadMultiImageArchive(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, Options{})
	dir := t.TempDir()
	archive := mergeArchives(t,
		imagetest.BusyboxArchive(t, dir, "multi:one", imagetest.WithCmd("echo", "1")),
		imagetest.BusyboxArchive(t, dir, "", imagetest.WithCmd("echo", "2")),
		imagetest.BusyboxArchive(t, dir, "", imagetest.WithCmd("echo", "3"), imagetest.WithLayer(imagetest.File("three", "3", 0o644))),
	)
	loaded, err := s.Load(ctx, bytes.NewReader(archive))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(loaded) != 3 || loaded[0] != "multi:one" || !strings.HasPrefix(loaded[1], "sha256:") || !strings.HasPrefix(loaded[2], "sha256:") {
		t.Fatalf("Load returned %v", loaded)
	}
	for i, ref := range loaded {
		img, err := s.Get(ctx, ref)
		if err != nil {
			t.Fatalf("Get(%s): %v", ref, err)
		}
		want := []string{"echo", string(rune('1' + i))}
		if !slices.Equal(img.Config.Config.Cmd, want) {
			t.Errorf("%s: Cmd %v, want %v", ref, img.Config.Config.Cmd, want)
		}
	}
	third, _ := s.Get(ctx, loaded[2])
	if len(third.DiffIDs) != 2 {
		t.Errorf("third image has %d layers, want 2", len(third.DiffIDs))
	}
}
