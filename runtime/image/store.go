// Package image is a node's image store: it loads `docker save` and OCI archives,
// pulls from registries (with mirrors and insecure registries), and keeps tags,
// image configs and unpacked layers under one root directory.
//
// Each layer is unpacked once, into a directory named by its diff ID, with
// whiteouts converted to overlayfs form, so the layer directories of an image can
// be handed to overlayfs as lowerdirs. Layers are shared between images and are
// deleted when the last image using them is removed. The tar-split metadata
// recorded while unpacking rebuilds a layer's original tar from its directory.
//
// Nodes share images: PeerHandler serves them as a read-only registry, with
// generated manifests and layer tars rebuilt on the fly, and PullFromPeer fetches
// from another node's, checking every digest. README.md describes the layout on
// disk and the protocol.
package image

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/renameio/v2"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// Options configures a Store.
type Options struct {
	Root     string   // e.g. <data-root>/image ; created if missing
	Mirrors  []string // registry mirrors for docker.io ("http://127.0.0.1:5000" or host:port)
	Insecure []string // registries reachable over plain http / unverified TLS ("127.0.0.1:5000")
	Metrics  Metrics  // told of pulls and of layers served to peers; nil: nothing
	Logger   *slog.Logger
}

// Store is the image store of one node. It is safe for concurrent use.
type Store struct {
	root    string
	reg     atomic.Pointer[registries]
	metrics Metrics
	log     *slog.Logger

	secureTransport   *http.Transport
	insecureTransport *http.Transport

	mu     sync.Mutex
	images map[string]*entry // by image ID
	refs   map[string]string // fully qualified tag or digest reference -> image ID
	pins   map[string]int    // diff ID -> loads in flight that need the layer
}

// entry is one image as the store keeps it in memory.
type entry struct {
	rec     record
	raw     []byte    // the image config exactly as stored
	created time.Time // from the config, for ordering
}

// record is one image as persisted in the metadata file.
type record struct {
	ID          string    `json:"id"`
	Refs        []string  `json:"refs,omitempty"` // fully qualified tags and digest references
	DiffIDs     []string  `json:"diffIDs"`
	Size        int64     `json:"size"`                 // sum of LayerSizes
	LayerSizes  []int64   `json:"layerSizes,omitempty"` // by DiffIDs index; missing in older stores
	LastTagTime time.Time `json:"lastTagTime,omitempty"`
}

// metadataFile is the persisted form of the store's images and references.
type metadataFile struct {
	Images []record `json:"images"`
}

// Open opens (creating if needed) the image store under opts.Root and loads the
// images recorded there. Leftovers of an interrupted load are cleaned up.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Root == "" {
		return nil, errors.New("open image store: no root directory")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		root:    opts.Root,
		metrics: opts.Metrics,
		log:     log,
		images:  make(map[string]*entry),
		refs:    make(map[string]string),
		pins:    make(map[string]int),
	}
	s.SetRegistries(opts.Mirrors, opts.Insecure)
	s.secureTransport = newTransport(false)
	s.insecureTransport = newTransport(true)

	if err := os.RemoveAll(s.tmpDir()); err != nil {
		return nil, fmt.Errorf("open image store: clean temporary files: %w", err)
	}
	for _, dir := range []string{s.root, s.tmpDir(), s.layersDir(), s.configsDir()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	if err := s.loadMetadata(); err != nil {
		return nil, fmt.Errorf("open image store %s: %w", s.root, err)
	}
	if err := s.removeOrphanLayers(ctx); err != nil {
		return nil, fmt.Errorf("open image store %s: %w", s.root, err)
	}
	if err := s.refreshSizes(); err != nil {
		return nil, fmt.Errorf("open image store %s: %w", s.root, err)
	}
	return s, nil
}

// Close releases idle registry connections. The store must not be used afterwards.
func (s *Store) Close() error {
	s.secureTransport.CloseIdleConnections()
	s.insecureTransport.CloseIdleConnections()
	return nil
}

func newTransport(insecure bool) *http.Transport {
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: time.Minute,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
	}
	if insecure {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the operator listed this registry as insecure
	}
	return t
}

func (s *Store) tmpDir() string       { return filepath.Join(s.root, "tmp") }
func (s *Store) layersDir() string    { return filepath.Join(s.root, "layers") }
func (s *Store) configsDir() string   { return filepath.Join(s.root, "configs") }
func (s *Store) metadataPath() string { return filepath.Join(s.root, "images.json") }

func (s *Store) configPath(id string) string {
	return filepath.Join(s.configsDir(), strings.TrimPrefix(id, "sha256:")+".json")
}

// newEntry pairs a record with its raw config, checking that the config decodes.
func newEntry(rec record, raw []byte) (*entry, error) {
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("decode config of image %s: %w", rec.ID, err)
	}
	e := &entry{rec: rec, raw: raw}
	if cfg.Created != nil {
		e.created = *cfg.Created
	}
	return e, nil
}

// loadMetadata reads the metadata file and every image config it names.
func (s *Store) loadMetadata() error {
	data, err := os.ReadFile(s.metadataPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read metadata: %w", err)
	}
	var meta metadataFile
	if err := json.Unmarshal(data, &meta); err != nil {
		return fmt.Errorf("decode metadata %s: %w", s.metadataPath(), err)
	}
	for _, rec := range meta.Images {
		raw, err := os.ReadFile(s.configPath(rec.ID))
		if err != nil {
			return fmt.Errorf("read config of image %s: %w", rec.ID, err)
		}
		e, err := newEntry(rec, raw)
		if err != nil {
			return err
		}
		s.images[rec.ID] = e
		for _, ref := range rec.Refs {
			s.refs[ref] = rec.ID
		}
	}
	return nil
}

// saveLocked writes the metadata file atomically. s.mu must be held.
func (s *Store) saveLocked() error {
	meta := metadataFile{Images: make([]record, 0, len(s.images))}
	for _, e := range s.images {
		meta.Images = append(meta.Images, e.rec)
	}
	sort.Slice(meta.Images, func(i, j int) bool { return meta.Images[i].ID < meta.Images[j].ID })
	data, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return fmt.Errorf("encode image metadata: %w", err)
	}
	if err := writeFileAtomic(s.metadataPath(), data); err != nil {
		return fmt.Errorf("save image metadata: %w", err)
	}
	return nil
}

// writeFileAtomic replaces path with data so that a crash leaves either the old or
// the new content, never a mix, and makes the rename durable.
func writeFileAtomic(path string, data []byte) error {
	if err := renameio.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
