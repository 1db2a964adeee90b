package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
)

// whiteoutLayer deletes a file and a directory's contents of the busybox layer
// and adds the other kinds of entries a layer has.
var whiteoutLayer = imagetest.WithLayer(
	imagetest.Whiteout("etc/group"),
	imagetest.Opaque("usr"),
	imagetest.File("usr/new.txt", "new\n", 0o600),
	imagetest.Dir("data", 0o750),
	imagetest.OwnedFile("data/owned", "x", os.ModeSetuid|0o755, 1000, 1001),
	imagetest.Hardlink("data/link", "data/owned"),
	imagetest.Symlink("data/sym", "/etc/passwd"),
	imagetest.File("data/empty", "", 0o644),
)

// originalLayers returns the uncompressed layer tars of the image imagetest builds
// from opts, by diff ID.
func originalLayers(t *testing.T, opts ...imagetest.Option) map[string][]byte {
	t.Helper()
	img := imagetest.BusyboxImage(t, opts...)
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, d := range cfg.RootFS.DiffIDs {
		out[d.String()] = layerBytes(t, img, d)
	}
	return out
}

func layerBytes(t *testing.T, img v1.Image, diffID v1.Hash) []byte {
	t.Helper()
	l, err := img.LayerByDiffID(diffID)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReassembledLayersAreTheOriginalTars(t *testing.T) {
	cases := []struct {
		name    string
		archive func(t *testing.T, opts ...imagetest.Option) string
		opts    []imagetest.Option
	}{
		{"docker archive", dockerArchive, nil},
		{"whiteouts and opaque dir", dockerArchive, []imagetest.Option{whiteoutLayer}},
		{"gzip layers", dockerArchive, []imagetest.Option{imagetest.Gzip(), whiteoutLayer}},
		{"OCI archive", ociArchive, []imagetest.Option{whiteoutLayer}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, Options{})
			loadFile(t, s, tc.archive(t, tc.opts...))
			img, err := s.Get(ctx, "reassemble:1")
			if err != nil {
				t.Fatal(err)
			}
			want := originalLayers(t, tc.opts...)
			for _, d := range img.DiffIDs {
				var buf bytes.Buffer
				n, err := s.writeLayerTar(ctx, d, &buf)
				if err != nil {
					t.Fatalf("writeLayerTar %s: %v", d, err)
				}
				if sum := sha256.Sum256(buf.Bytes()); "sha256:"+hex.EncodeToString(sum[:]) != d {
					t.Errorf("layer %s reassembles to another digest", d)
				}
				if !bytes.Equal(buf.Bytes(), want[d]) || n != int64(len(want[d])) {
					t.Errorf("layer %s: %d bytes reassembled, differ from the %d of the original tar", d, n, len(want[d]))
				}
				if size, ok, err := s.layerTarSize(d); err != nil || !ok || size != n {
					t.Errorf("layerTarSize = %d, %v, %v; want %d", size, ok, err, n)
				}
			}
		})
	}
}

func dockerArchive(t *testing.T, opts ...imagetest.Option) string {
	return imagetest.BusyboxArchive(t, t.TempDir(), "reassemble:1", opts...)
}

func ociArchive(t *testing.T, opts ...imagetest.Option) string {
	return imagetest.BusyboxOCIArchive(t, t.TempDir(), "reassemble:1", opts...)
}

// Layers whose tar the unpacked directory cannot give back load as before but are
// not servable; layers that changed on disk are refused when reassembled, never
// written whole.
func TestUnreproducibleLayersAreNotServed(t *testing.T) {
	cases := []struct {
		name     string
		layer    []imagetest.Entry
		tamper   func(t *testing.T, diff string) // changes the unpacked directory
		servable bool                            // layerTarSize reports it
	}{
		{name: "duplicate path", layer: []imagetest.Entry{
			imagetest.File("a", "first", 0o644), imagetest.File("a", "second", 0o644)}},
		{name: "duplicate path, other spelling", layer: []imagetest.Entry{
			imagetest.File("a", "first", 0o644), imagetest.File("./a", "second", 0o644)}},
		{name: "file replaced by a directory", layer: []imagetest.Entry{
			imagetest.File("a", "first", 0o644), imagetest.Dir("a", 0o755)}},
		{name: "whiteout with a payload", layer: []imagetest.Entry{
			imagetest.File("etc/.wh.group", "payload", 0o644)}},
		{name: "file deleted by a whiteout of the same layer", servable: true, layer: []imagetest.Entry{
			imagetest.File("d/f", "gone", 0o644), imagetest.Whiteout("d/f")}},
		{name: "file modified on disk", servable: true,
			layer: []imagetest.Entry{imagetest.File("d/f", "original", 0o644)},
			tamper: func(t *testing.T, diff string) {
				writeFile(t, filepath.Join(diff, "d/f"), "tampered")
			}},
		{name: "file grown on disk", servable: true,
			layer: []imagetest.Entry{imagetest.File("d/f", "original", 0o644)},
			tamper: func(t *testing.T, diff string) {
				writeFile(t, filepath.Join(diff, "d/f"), "original and more")
			}},
		{name: "parent replaced by a symlink on disk", servable: true,
			layer: []imagetest.Entry{imagetest.File("d/f", "original", 0o644)},
			tamper: func(t *testing.T, diff string) {
				elsewhere := t.TempDir()
				writeFile(t, filepath.Join(elsewhere, "f"), "original")
				if err := os.RemoveAll(filepath.Join(diff, "d")); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(elsewhere, filepath.Join(diff, "d")); err != nil {
					t.Fatal(err)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, Options{})
			loadFile(t, s, dockerArchive(t, imagetest.WithLayer(tc.layer...)))
			img, err := s.Get(ctx, "reassemble:1")
			if err != nil {
				t.Fatal(err)
			}
			d := img.DiffIDs[1]
			if tc.tamper != nil {
				tc.tamper(t, s.layerDiffDir(d))
			}
			if _, ok, err := s.layerTarSize(d); err != nil || ok != tc.servable {
				t.Fatalf("layerTarSize: servable %v, %v; want %v", ok, err, tc.servable)
			}
			var buf bytes.Buffer
			_, err = s.writeLayerTar(ctx, d, &buf)
			if err == nil {
				t.Fatal("writeLayerTar succeeded")
			}
			if !tc.servable && !hasClass(err, "notfound") {
				t.Errorf("writeLayerTar: %v, want a NotFound error", err)
			}
			t.Logf("writeLayerTar: %v", err)
		})
	}
}

// Layers unpacked before tar-split metadata was recorded cannot be reassembled.
func TestLayerWithoutMetadataIsNotFound(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, Options{})
	loadFile(t, s, dockerArchive(t))
	img, err := s.Get(ctx, "reassemble:1")
	if err != nil {
		t.Fatal(err)
	}
	d := img.DiffIDs[0]
	if err := os.Remove(filepath.Join(s.layerDir(d), tarSplitFile)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.layerTarSize(d); ok || err != nil {
		t.Errorf("layerTarSize: servable %v, %v", ok, err)
	}
	if _, err := s.writeLayerTar(ctx, d, &bytes.Buffer{}); !hasClass(err, "notfound") {
		t.Errorf("writeLayerTar: %v, want a NotFound error", err)
	}
	for _, bad := range []string{"sha256:../../etc", "sha256:" + strings.Repeat("A", 64), "md5:00"} {
		if _, err := s.writeLayerTar(ctx, bad, &bytes.Buffer{}); !hasClass(err, "notfound") {
			t.Errorf("writeLayerTar(%q): %v, want a NotFound error", bad, err)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A hard link whose header announces a size carries no payload: reassembly would
// copy its target there, so such a layer is not servable.
func TestHeaderOnlyEntryWithSizeIsNotServable(t *testing.T) {
	s := openStore(t, Options{})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, hdr := range []tar.Header{
		{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 4},
		{Name: "l", Typeflag: tar.TypeLink, Linkname: "f", Size: 4},
	} {
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			tw.Write([]byte("data"))
		}
	}
	tw.Close()
	sum := sha256.Sum256(buf.Bytes())
	diffID := "sha256:" + hex.EncodeToString(sum[:])
	if _, err := s.unpack(context.Background(), diffID, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatalf("unpack: %v", err)
	}
	if _, ok, err := s.layerTarSize(diffID); ok || err != nil {
		t.Errorf("layerTarSize: servable %v, %v; want not servable", ok, err)
	}
}
