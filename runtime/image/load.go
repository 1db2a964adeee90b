package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// OCI annotations that name an image in an image layout's index.json.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
)

// Load reads a `docker save` archive (manifest.json + layer tars, possibly gzip'd) or an
// OCI image-layout archive (oci-layout + index.json, with org.opencontainers.image.ref.name
// or io.containerd.image.name annotations) from r, stores every image in it, and returns
// the loaded references ("busybox:latest") or image IDs when untagged. Unpacks layers.
func (s *Store) Load(ctx context.Context, r io.Reader) ([]string, error) {
	archive, err := s.spool(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("load image archive: %w", err)
	}
	defer os.Remove(archive)

	names, err := archiveEntries(archive)
	if err != nil {
		return nil, fmt.Errorf("load image archive: %w", err)
	}
	switch {
	case names["manifest.json"]:
		return s.loadDockerArchive(ctx, archive)
	case names["index.json"] && names["oci-layout"]:
		return s.loadOCIArchive(ctx, archive)
	default:
		return nil, invalidParameterError{msg: "load image archive: neither manifest.json nor an OCI layout (oci-layout, index.json) found"}
	}
}

// spool copies the archive to a temporary file, which the readers need to seek in,
// undoing a gzip compression of the whole archive on the way.
func (s *Store) spool(ctx context.Context, r io.Reader) (string, error) {
	f, err := os.CreateTemp(s.tmpDir(), "load-*.tar")
	if err != nil {
		return "", err
	}
	defer f.Close()
	br := bufio.NewReader(r)
	var src io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			os.Remove(f.Name())
			return "", fmt.Errorf("decompress archive: %w", err)
		}
		defer zr.Close()
		src = zr
	}
	if _, err := io.Copy(f, ctxReader{ctx: ctx, r: src}); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("read archive: %w", err)
	}
	return f.Name(), nil
}

// archiveEntries lists the cleaned names of the files in a tar archive.
func archiveEntries(archive string) (map[string]bool, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names, nil
		}
		if err != nil {
			return nil, invalidParameterError{msg: fmt.Sprintf("load image archive: not a tar archive: %v", err)}
		}
		names[path.Clean(hdr.Name)] = true
	}
}

// loadDockerArchive stores every image listed in the manifest.json of a
// `docker save` archive.
func (s *Store) loadDockerArchive(ctx context.Context, archive string) ([]string, error) {
	manifest, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(archive) })
	if err != nil {
		return nil, invalidParameterError{msg: fmt.Sprintf("load image archive: read manifest.json: %v", err)}
	}
	var loaded []string
	for _, desc := range manifest {
		refs, err := normalizeRefs(desc.RepoTags)
		if err != nil {
			return loaded, fmt.Errorf("load image archive: %w", err)
		}
		img, err := tarball.Image(singleImageOpener(archive, desc), nil)
		if err != nil {
			return loaded, fmt.Errorf("load image archive: open image %s: %w", desc.Config, err)
		}
		res, err := s.ingest(ctx, img, refs, nil)
		if err != nil {
			return loaded, fmt.Errorf("load image archive: %w", err)
		}
		loaded = append(loaded, loadedNames(res.image.ID, refs)...)
	}
	return loaded, nil
}

// loadOCIArchive stores every image named (or listed) in the index.json of an OCI
// image-layout archive.
func (s *Store) loadOCIArchive(ctx context.Context, archive string) ([]string, error) {
	dir, err := os.MkdirTemp(s.tmpDir(), "oci-")
	if err != nil {
		return nil, fmt.Errorf("load image archive: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := extractFlat(ctx, archive, dir); err != nil {
		return nil, fmt.Errorf("load image archive: %w", err)
	}
	index, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, invalidParameterError{msg: fmt.Sprintf("load image archive: read OCI layout: %v", err)}
	}
	im, err := index.IndexManifest()
	if err != nil {
		return nil, invalidParameterError{msg: fmt.Sprintf("load image archive: read index.json: %v", err)}
	}
	var loaded []string
	for _, desc := range im.Manifests {
		img, err := imageFor(index, desc)
		if err != nil {
			return loaded, fmt.Errorf("load image archive: %w", err)
		}
		if img == nil {
			continue // attestations and other platforms
		}
		var refs []string
		if name := ociName(desc.Annotations); name != "" {
			if refs, err = normalizeRefs([]string{name}); err != nil {
				return loaded, fmt.Errorf("load image archive: %w", err)
			}
		}
		res, err := s.ingest(ctx, img, refs, nil)
		if err != nil {
			return loaded, fmt.Errorf("load image archive: %w", err)
		}
		loaded = append(loaded, loadedNames(res.image.ID, refs)...)
	}
	return loaded, nil
}

// imageFor returns the image desc points at in index: the image itself, or the
// entry for this machine's platform when desc is a nested index. It returns nil
// for descriptors that are not images of this platform.
func imageFor(index v1.ImageIndex, desc v1.Descriptor) (v1.Image, error) {
	switch {
	case desc.MediaType.IsImage():
		if desc.Platform != nil && !platformMatches(*desc.Platform) {
			return nil, nil
		}
		img, err := index.Image(desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("open image %s: %w", desc.Digest, err)
		}
		return img, nil
	case desc.MediaType.IsIndex():
		child, err := index.ImageIndex(desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("open index %s: %w", desc.Digest, err)
		}
		cm, err := child.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("read index %s: %w", desc.Digest, err)
		}
		var images []v1.Descriptor
		for _, m := range cm.Manifests {
			if m.MediaType.IsImage() && m.Annotations["vnd.docker.reference.type"] == "" {
				images = append(images, m)
			}
		}
		for _, m := range images {
			if (m.Platform != nil && platformMatches(*m.Platform)) || (m.Platform == nil && len(images) == 1) {
				return imageFor(child, m)
			}
		}
		return nil, fmt.Errorf("index %s has no image for linux/%s", desc.Digest, runtime.GOARCH)
	}
	return nil, nil
}

func platformMatches(p v1.Platform) bool {
	return p.OS == "linux" && p.Architecture == runtime.GOARCH
}

// ociName returns the image name an index.json entry carries. The OCI annotation
// counts only when it is a full reference: by the spec it may be a bare tag.
func ociName(annotations map[string]string) string {
	if name := annotations[annotationContainerdName]; name != "" {
		return name
	}
	name := annotations[annotationRefName]
	if strings.ContainsAny(name, ":/") {
		return name
	}
	return ""
}

// normalizeRefs turns the names of an archive into fully qualified references.
func normalizeRefs(names []string) ([]string, error) {
	var refs []string
	for _, n := range names {
		named, err := parseNamed(n)
		if err != nil {
			return nil, err
		}
		if _, ok := named.(reference.Canonical); ok {
			continue // a digest in an archive says nothing about a registry
		}
		refs = append(refs, named.String())
	}
	return refs, nil
}

// loadedNames is what `docker load` reports for one image: its tags, else its ID.
func loadedNames(id string, refs []string) []string {
	if len(refs) == 0 {
		return []string{id}
	}
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, familiar(r))
	}
	return out
}

// singleImageOpener opens archive as a tar stream whose manifest.json lists only
// desc, so that tarball.Image can read any one image of a multi-image archive,
// tagged or not.
func singleImageOpener(archive string, desc tarball.Descriptor) tarball.Opener {
	return func() (io.ReadCloser, error) {
		manifest, err := json.Marshal(tarball.Manifest{desc})
		if err != nil {
			return nil, err
		}
		f, err := os.Open(archive)
		if err != nil {
			return nil, err
		}
		pr, pw := io.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer f.Close()
			pw.CloseWithError(rewriteManifest(f, pw, manifest))
		}()
		return &pipeReadCloser{PipeReader: pr, done: done}, nil
	}
}

// rewriteManifest copies the tar stream from r to w with manifest.json replaced.
func rewriteManifest(r io.Reader, w io.Writer, manifest []byte) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		if path.Clean(hdr.Name) == "manifest.json" {
			hdr.Size = int64(len(manifest))
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if _, err := tw.Write(manifest); err != nil {
				return err
			}
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// pipeReadCloser stops the goroutine feeding the pipe when closed.
type pipeReadCloser struct {
	*io.PipeReader
	done chan struct{}
}

func (p *pipeReadCloser) Close() error {
	p.PipeReader.CloseWithError(io.ErrClosedPipe)
	<-p.done
	return nil
}

// extractFlat unpacks the directories and regular files of an OCI layout archive
// into dir; nothing else belongs in one.
func extractFlat(ctx context.Context, archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(ctxReader{ctx: ctx, r: f})
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read OCI archive: %w", err)
		}
		rel, err := entryPath(hdr.Name)
		if err != nil {
			return err
		}
		if rel == "." || (hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeDir) {
			continue
		}
		parent, _ := path.Split(rel)
		if err := ensureParents(dir, parent); err != nil {
			return fmt.Errorf("extract %s: %w", hdr.Name, err)
		}
		target := filepath.Join(dir, rel)
		if hdr.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
			continue
		}
		out, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("extract %s: %w", hdr.Name, err)
		}
	}
}

// ctxReader stops a long copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
