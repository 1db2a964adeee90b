// Package imagetest builds small, real container images for tests, from the host's
// busybox-static binary (Debian package busybox-static): a root file system with
// /bin/busybox and a symlink per applet, written as a `docker save` archive, an OCI
// image-layout archive, or pushed to a throw-away registry started with Registry.
//
// Images are deterministic: the same options (and the same busybox binary) give the
// same image ID, so tests can build an image twice and expect one stored image.
package imagetest

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BusyboxPath is where the busybox-static binary is read from.
const BusyboxPath = "/bin/busybox"

// DefaultPath is the PATH every image built here starts with, as in Docker images.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// epoch is the timestamp of every file and of the image itself, for determinism.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Option changes the image a builder makes.
type Option func(*spec)

// spec collects what the options ask for.
type spec struct {
	config    dockerspec.DockerOCIImageConfig
	created   time.Time
	layers    [][]Entry
	extraTags []string
	gzip      bool
}

// WithCmd sets the image's CMD (default ["sh"]).
func WithCmd(cmd ...string) Option { return func(s *spec) { s.config.Cmd = cmd } }

// WithEntrypoint sets the image's ENTRYPOINT.
func WithEntrypoint(ep ...string) Option { return func(s *spec) { s.config.Entrypoint = ep } }

// WithEnv appends "KEY=value" variables after the default PATH.
func WithEnv(env ...string) Option {
	return func(s *spec) { s.config.Env = append(s.config.Env, env...) }
}

// WithLabels adds image labels.
func WithLabels(labels map[string]string) Option {
	return func(s *spec) {
		if s.config.Labels == nil {
			s.config.Labels = map[string]string{}
		}
		for k, v := range labels {
			s.config.Labels[k] = v
		}
	}
}

// WithHealthcheck sets the image's HEALTHCHECK.
func WithHealthcheck(hc dockerspec.HealthcheckConfig) Option {
	return func(s *spec) { s.config.Healthcheck = &hc }
}

// WithWorkingDir sets the image's WORKDIR (which should exist in some layer).
func WithWorkingDir(dir string) Option { return func(s *spec) { s.config.WorkingDir = dir } }

// WithUser sets the image's USER.
func WithUser(user string) Option { return func(s *spec) { s.config.User = user } }

// WithExposedPorts declares ports ("80/tcp", "53/udp") as EXPOSE does.
func WithExposedPorts(ports ...string) Option {
	return func(s *spec) {
		if s.config.ExposedPorts == nil {
			s.config.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range ports {
			s.config.ExposedPorts[p] = struct{}{}
		}
	}
}

// WithStopSignal sets the image's STOPSIGNAL ("SIGTERM").
func WithStopSignal(sig string) Option { return func(s *spec) { s.config.StopSignal = sig } }

// WithConfig lets a test change anything else in the image config.
func WithConfig(fn func(*dockerspec.DockerOCIImageConfig)) Option {
	return func(s *spec) { fn(&s.config) }
}

// WithCreated sets the image's creation time (default 2024-01-01T00:00:00Z).
func WithCreated(t time.Time) Option { return func(s *spec) { s.created = t } }

// WithLayer adds a layer holding entries on top of the busybox layer (and of the
// layers added before it).
func WithLayer(entries ...Entry) Option {
	return func(s *spec) { s.layers = append(s.layers, entries) }
}

// WithExtraTags names the image with more tags, in archives.
func WithExtraTags(tags ...string) Option {
	return func(s *spec) { s.extraTags = append(s.extraTags, tags...) }
}

// Gzip stores the layers of a `docker save` archive gzip-compressed, as some tools do.
func Gzip() Option { return func(s *spec) { s.gzip = true } }

// Entry is one file system change in a layer added with WithLayer.
type Entry struct {
	hdr     tar.Header
	content string
}

// File is a regular file with content and mode (permission bits, plus
// os.ModeSetuid, os.ModeSetgid, os.ModeSticky), owned by root.
func File(path, content string, mode os.FileMode) Entry {
	return Entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: path, Mode: tarMode(mode), Size: int64(len(content))}, content: content}
}

// tarMode converts an os.FileMode into the mode bits of a tar header.
func tarMode(mode os.FileMode) int64 {
	m := int64(mode.Perm())
	if mode&os.ModeSetuid != 0 {
		m |= 0o4000
	}
	if mode&os.ModeSetgid != 0 {
		m |= 0o2000
	}
	if mode&os.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

// OwnedFile is a regular file owned by uid:gid.
func OwnedFile(path, content string, mode os.FileMode, uid, gid int) Entry {
	e := File(path, content, mode)
	e.hdr.Uid, e.hdr.Gid = uid, gid
	return e
}

// Dir is a directory with mode (as for File).
func Dir(path string, mode os.FileMode) Entry {
	return Entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: path + "/", Mode: tarMode(mode)}}
}

// Symlink is a symbolic link at path pointing to target.
func Symlink(path, target string) Entry {
	return Entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: path, Linkname: target, Mode: 0o777}}
}

// Hardlink is a hard link at path to target, a file of the same layer.
func Hardlink(path, target string) Entry {
	return Entry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: path, Linkname: target}}
}

// Whiteout deletes path (file or directory) of the layers below.
func Whiteout(p string) Entry {
	dir, base := path.Split(p)
	return Entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: dir + ".wh." + base}}
}

// Opaque hides everything the layers below have in directory dir.
func Opaque(dir string) Entry {
	return Entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimSuffix(dir, "/") + "/.wh..wh..opq"}}
}

// BusyboxImage builds the image in memory. Its first layer holds /bin/busybox, one
// symlink per applet in /bin, /etc/passwd and /etc/group (root, nobody), /tmp, /root,
// /proc, /sys and /dev; its config has Env [DefaultPath] and Cmd ["sh"].
func BusyboxImage(t testing.TB, opts ...Option) v1.Image {
	t.Helper()
	img, _ := build(t, opts, false)
	return img
}

// build makes the image, with OCI media types when oci is set, and returns it with
// the options it was built from.
func build(t testing.TB, opts []Option, oci bool) (v1.Image, *spec) {
	t.Helper()
	s := &spec{created: epoch}
	s.config.Env = []string{DefaultPath}
	s.config.Cmd = []string{"sh"}
	for _, opt := range opts {
		opt(s)
	}
	layers := [][]byte{busyboxLayer(t)}
	for _, entries := range s.layers {
		layers = append(layers, tarOf(t, entries))
	}
	img := &memImage{layers: map[v1.Hash][]byte{}, manifestType: types.DockerManifestSchema2, layerType: types.DockerLayer}
	if oci {
		img.manifestType, img.layerType = types.OCIManifestSchema1, types.OCILayer
	}
	cfg := dockerspec.DockerOCIImage{
		Image: ocispec.Image{
			Created:  &s.created,
			Platform: ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"},
			RootFS:   ocispec.RootFS{Type: "layers"},
		},
		Config: s.config,
	}
	for i, l := range layers {
		h, _, err := v1.SHA256(bytes.NewReader(l))
		if err != nil {
			t.Fatalf("imagetest: digest layer: %v", err)
		}
		img.layers[h] = l
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.Digest(h.String()))
		cfg.History = append(cfg.History, ocispec.History{Created: &s.created, CreatedBy: fmt.Sprintf("imagetest layer %d", i)})
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("imagetest: encode config: %v", err)
	}
	img.raw = raw
	out, err := partial.UncompressedToImage(img)
	if err != nil {
		t.Fatalf("imagetest: build image: %v", err)
	}
	return out, s
}

// busyboxLayer is the tar of the base layer.
func busyboxLayer(t testing.TB) []byte {
	t.Helper()
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		t.Fatalf("imagetest: read %s (apt-get install busybox-static): %v", BusyboxPath, err)
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		t.Fatalf("imagetest: busybox --list: %v", err)
	}
	applets := strings.Fields(string(out))
	sort.Strings(applets)

	entries := []Entry{
		Dir("bin", 0o755), Dir("dev", 0o755), Dir("etc", 0o755), Dir("proc", 0o555),
		Dir("root", 0o700), Dir("sys", 0o555), Dir("tmp", os.ModeSticky|0o777), Dir("usr", 0o755),
		Dir("usr/bin", 0o755), Dir("var", 0o755),
		File("bin/busybox", string(bin), 0o755),
		File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", 0o644),
		File("etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644),
	}
	for _, a := range applets {
		if a != "busybox" {
			entries = append(entries, Symlink("bin/"+a, "busybox"))
		}
	}
	return tarOf(t, entries)
}

// tarOf writes entries as a layer tar with fixed timestamps.
func tarOf(t testing.TB, entries []Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.hdr
		hdr.ModTime = epoch
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatalf("imagetest: write layer entry %s: %v", hdr.Name, err)
		}
		if _, err := io.WriteString(tw, e.content); err != nil {
			t.Fatalf("imagetest: write layer entry %s: %v", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("imagetest: write layer: %v", err)
	}
	return buf.Bytes()
}

// memImage is an image held in memory: raw config and uncompressed layers.
type memImage struct {
	raw          []byte
	layers       map[v1.Hash][]byte
	manifestType types.MediaType
	layerType    types.MediaType
}

func (m *memImage) RawConfigFile() ([]byte, error)      { return m.raw, nil }
func (m *memImage) MediaType() (types.MediaType, error) { return m.manifestType, nil }

func (m *memImage) LayerByDiffID(h v1.Hash) (partial.UncompressedLayer, error) {
	data, ok := m.layers[h]
	if !ok {
		return nil, os.ErrNotExist
	}
	return &memLayer{diffID: h, data: data, mediaType: m.layerType}, nil
}

// memLayer is one uncompressed layer held in memory.
type memLayer struct {
	diffID    v1.Hash
	data      []byte
	mediaType types.MediaType
}

func (l *memLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *memLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.data)), nil
}
func (l *memLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }
