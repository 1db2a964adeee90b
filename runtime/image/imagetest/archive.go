package imagetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BusyboxArchive writes the busybox image (see BusyboxImage) as a classic
// `docker save` archive (manifest.json, <config>.json, <diffID>/layer.tar) into dir
// and returns the archive's path. tag ("busybox:latest", or "" for an untagged
// image) and WithExtraTags name it in manifest.json; Gzip compresses its layers.
func BusyboxArchive(t testing.TB, dir, tag string, opts ...Option) string {
	t.Helper()
	img, s := build(t, opts, false)
	raw, err := img.RawConfigFile()
	if err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("imagetest: %v", err)
	}

	type manifestEntry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	entry := manifestEntry{Config: cfgName.Hex + ".json", RepoTags: tagsOf(tag, s.extraTags)}
	files := []archiveFile{{name: entry.Config, data: raw}}
	for _, diffID := range cfg.RootFS.DiffIDs {
		layer, err := img.LayerByDiffID(diffID)
		if err != nil {
			t.Fatalf("imagetest: %v", err)
		}
		data := readAll(t, layer.Uncompressed)
		if s.gzip {
			data = gzipped(t, data)
		}
		name := diffID.Hex + "/layer.tar"
		entry.Layers = append(entry.Layers, name)
		files = append(files, archiveFile{name: name, data: data})
	}
	manifest, err := json.Marshal([]manifestEntry{entry})
	if err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	files = append(files, archiveFile{name: "manifest.json", data: manifest})
	return writeArchive(t, filepath.Join(dir, archiveName(tag, cfgName.Hex)), files)
}

// BusyboxOCIArchive writes the busybox image (see BusyboxImage) as an OCI
// image-layout archive (oci-layout, index.json, blobs/sha256/...) into dir and
// returns its path. Each name (tag and WithExtraTags) is one index.json entry with
// the io.containerd.image.name and org.opencontainers.image.ref.name annotations,
// as `docker save` and containerd write them; an untagged image ("") has none.
func BusyboxOCIArchive(t testing.TB, dir, tag string, opts ...Option) string {
	t.Helper()
	img, s := build(t, opts, true)
	img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	cfgName, err := img.ConfigName()
	if err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	layoutDir, err := os.MkdirTemp(dir, "oci-layout-")
	if err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	defer os.RemoveAll(layoutDir)
	lp, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		t.Fatalf("imagetest: write OCI layout: %v", err)
	}
	tags := tagsOf(tag, s.extraTags)
	if len(tags) == 0 {
		if err := lp.AppendImage(img); err != nil {
			t.Fatalf("imagetest: write OCI layout: %v", err)
		}
	}
	for _, tg := range tags {
		named, err := reference.ParseNormalizedNamed(tg)
		if err != nil {
			t.Fatalf("imagetest: tag %q: %v", tg, err)
		}
		named = reference.TagNameOnly(named)
		annotations := map[string]string{
			"io.containerd.image.name":          named.String(),
			"org.opencontainers.image.ref.name": named.(reference.Tagged).Tag(),
		}
		if err := lp.AppendImage(img, layout.WithAnnotations(annotations)); err != nil {
			t.Fatalf("imagetest: write OCI layout: %v", err)
		}
	}
	var files []archiveFile
	err = filepath.Walk(layoutDir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(layoutDir, p)
		files = append(files, archiveFile{name: filepath.ToSlash(rel), data: data})
		return nil
	})
	if err != nil {
		t.Fatalf("imagetest: read OCI layout: %v", err)
	}
	return writeArchive(t, filepath.Join(dir, "oci-"+archiveName(tag, cfgName.Hex)), files)
}

// archiveFile is one file of an archive being written.
type archiveFile struct {
	name string
	data []byte
}

func tagsOf(tag string, extra []string) []string {
	var tags []string
	if tag != "" {
		tags = append(tags, tag)
	}
	return append(tags, extra...)
}

func archiveName(tag, id string) string {
	if tag == "" {
		return id[:12] + ".tar"
	}
	safe := []byte(tag)
	for i, c := range safe {
		if c == '/' || c == ':' || c == '@' {
			safe[i] = '_'
		}
	}
	return string(safe) + ".tar"
}

// writeArchive writes files, with the directories they need, as a tar at path.
func writeArchive(t testing.TB, path string, files []archiveFile) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	dirs := map[string]bool{}
	for _, file := range files {
		for d := filepath.Dir(file.name); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			hdr := &tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: epoch}
			if err := tw.WriteHeader(hdr); err != nil {
				t.Fatalf("imagetest: write archive: %v", err)
			}
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: file.name, Mode: 0o644, Size: int64(len(file.data)), ModTime: epoch}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("imagetest: write archive: %v", err)
		}
		if _, err := tw.Write(file.data); err != nil {
			t.Fatalf("imagetest: write archive: %v", err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("imagetest: write archive: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("imagetest: write archive: %v", err)
	}
	return path
}

func readAll(t testing.TB, open func() (io.ReadCloser, error)) []byte {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	return data
}

func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatalf("imagetest: gzip layer: %v", err)
	}
	if err := zw.Close(); err != nil {
		t.Fatalf("imagetest: gzip layer: %v", err)
	}
	return buf.Bytes()
}
