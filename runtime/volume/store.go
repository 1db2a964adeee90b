// Package volume keeps this node's named volumes, as Docker's "local" volume
// driver does: one plain directory per volume under a root, plus a little
// metadata (labels, options, creation time). Task containers get their volume
// mounts from a [Store], and the Engine API lists, inspects, creates, removes and
// prunes volumes through it.
package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"sync"
	"time"

	volumetypes "github.com/moby/moby/api/types/volume"
)

// AnonymousLabel marks a volume created without a name (dockerd's label). Prune
// removes only such volumes unless asked for all.
const AnonymousLabel = "com.docker.volume.anonymous"

// DriverName is the only volume driver shoal has.
const DriverName = "local"

// maxNameLen bounds a volume name: it is a directory name on the node.
const maxNameLen = 255

// validName is the local driver's rule for volume names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Config configures a [Store]. It is built by main.go.
type Config struct {
	// Root holds one data directory per volume, <Root>/<name>, and the metadata
	// in <Root>/.meta/<name>.json (no volume name starts with a dot).
	Root string
	// Users returns the IDs of the containers whose mounts use the named volume;
	// a volume with users is not removed. Nil means no volume is ever in use.
	Users func(name string) []string
	// Logger receives the store's logs; default slog.Default().
	Logger *slog.Logger
}

// Volume is one local volume.
type Volume struct {
	Name string
	// Mountpoint is the host directory holding the volume's data.
	Mountpoint string
	CreatedAt  time.Time
	Labels     map[string]string
	Options    map[string]string
	// UsedBy are the IDs of the containers using the volume (from Config.Users),
	// sorted; empty for a dangling volume.
	UsedBy []string
}

// API is the volume as the Engine API shows it (no UsageData).
func (v Volume) API() volumetypes.Volume {
	labels, opts := v.Labels, v.Options
	if labels == nil {
		labels = map[string]string{}
	}
	if opts == nil {
		opts = map[string]string{}
	}
	return volumetypes.Volume{
		Name:       v.Name,
		Driver:     DriverName,
		Mountpoint: v.Mountpoint,
		CreatedAt:  v.CreatedAt.Format(time.RFC3339),
		Labels:     maps.Clone(labels),
		Options:    maps.Clone(opts),
		Scope:      "local",
	}
}

// Anonymous reports whether the volume was created without a name.
func (v Volume) Anonymous() bool {
	_, ok := v.Labels[AnonymousLabel]
	return ok
}

// Store is the node's local volumes. It is safe for concurrent use.
type Store struct {
	cfg     Config
	log     *slog.Logger
	metaDir string

	mu   sync.Mutex // guards vols and every change on disk
	vols map[string]meta
}

// Open reads the volumes under cfg.Root. Volume directories without metadata
// (made by an older shoal) are adopted with their directory's time as CreatedAt.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Root == "" {
		return nil, errors.New("volume store: Root is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Store{cfg: cfg, log: cfg.Logger, metaDir: filepath.Join(cfg.Root, ".meta"), vols: map[string]meta{}}
	if err := os.MkdirAll(s.metaDir, 0o700); err != nil {
		return nil, fmt.Errorf("create volume metadata dir: %w", err)
	}
	if err := os.Chmod(cfg.Root, 0o701); err != nil {
		return nil, fmt.Errorf("open volume store: %w", err)
	}
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// load fills vols from the data and metadata directories.
func (s *Store) load(ctx context.Context) error {
	entries, err := os.ReadDir(s.cfg.Root)
	if err != nil {
		return fmt.Errorf("list volumes in %s: %w", s.cfg.Root, err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := e.Name()
		if !e.IsDir() || !validName.MatchString(name) {
			continue
		}
		m, err := readMeta(s.metaPath(name))
		if errors.Is(err, os.ErrNotExist) {
			m, err = s.adopt(name, e)
		}
		if err != nil {
			return err
		}
		s.vols[name] = m
	}
	s.dropStaleMeta()
	return nil
}

// adopt writes metadata for a volume directory that has none.
func (s *Store) adopt(name string, e os.DirEntry) (meta, error) {
	m := meta{Name: name, CreatedAt: time.Now()}
	if info, err := e.Info(); err == nil {
		m.CreatedAt = info.ModTime()
	}
	// Before the store existed, shoal gave only anonymous volumes 64-hex names.
	if isRandomName(name) {
		m.Labels = map[string]string{AnonymousLabel: ""}
	}
	if err := writeMeta(s.metaPath(name), m); err != nil {
		return meta{}, fmt.Errorf("adopt volume %s: %w", name, err)
	}
	s.log.Info("adopted volume without metadata", "volume", name)
	return m, nil
}

// dropStaleMeta removes metadata whose data directory is gone (a crash during
// Remove deletes the data first).
func (s *Store) dropStaleMeta() {
	entries, err := os.ReadDir(s.metaDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name, ok := metaName(e.Name())
		if !ok {
			continue
		}
		if _, known := s.vols[name]; !known {
			if err := os.Remove(filepath.Join(s.metaDir, e.Name())); err != nil {
				s.log.Warn("remove stale volume metadata", "volume", name, "err", err)
			}
		}
	}
}

// Create makes the named local volume, or returns it if it exists (its labels
// are then left as they are, as dockerd does). An empty name makes an anonymous
// volume with a random 64-hex name. driverOpts must be empty: the local driver's
// mount options (type, o, device) are not supported.
func (s *Store) Create(ctx context.Context, name string, labels, driverOpts map[string]string) (Volume, error) {
	if err := ctx.Err(); err != nil {
		return Volume{}, err
	}
	if name == "" {
		name = randomName()
		labels = maps.Clone(labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[AnonymousLabel] = ""
	}
	if len(name) > maxNameLen {
		return Volume{}, errInvalidf("create %.20s...: a volume name may have at most %d characters", name, maxNameLen)
	}
	if !validName.MatchString(name) {
		return Volume{}, errInvalidf("create %s: %q includes invalid characters for a local volume name, only %q are allowed. If you intended to pass a host directory, use absolute path",
			name, name, "[a-zA-Z0-9][a-zA-Z0-9_.-]")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.vols[name]; ok {
		return s.volume(m), nil
	}
	if len(driverOpts) > 0 {
		keys := slices.Sorted(maps.Keys(driverOpts))
		return Volume{}, errInvalidf("create %s: invalid option(s) %q: shoal's local volume driver takes no options (mounting a device, tmpfs or NFS is not supported)", name, keys)
	}
	m := meta{Name: name, CreatedAt: time.Now(), Labels: maps.Clone(labels)}
	dir := s.dataPath(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := writeMeta(s.metaPath(name), m); err != nil {
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	s.vols[name] = m
	return s.volume(m), nil
}

// Get returns the named volume; NotFound "get <name>: no such volume".
func (s *Store) Get(ctx context.Context, name string) (Volume, error) {
	if err := ctx.Err(); err != nil {
		return Volume{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.vols[name]
	if !ok {
		return Volume{}, errNoSuchVolume(name)
	}
	return s.volume(m), nil
}

// List returns every volume, sorted by name.
func (s *Store) List(ctx context.Context) ([]Volume, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Volume, 0, len(s.vols))
	for _, name := range slices.Sorted(maps.Keys(s.vols)) {
		out = append(out, s.volume(s.vols[name]))
	}
	return out, nil
}

// Remove deletes the named volume and its data. A volume some container uses
// is refused (Conflict, even with force, as dockerd does); force makes an
// unknown name succeed.
func (s *Store) Remove(ctx context.Context, name string, force bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.vols[name]
	if !ok {
		if force {
			return nil
		}
		return errNoSuchVolume(name)
	}
	if users := s.users(name); len(users) > 0 {
		return errInUse(name, users)
	}
	return s.removeLocked(m.Name)
}

// removeLocked deletes the data first, then the metadata, so that a crash in
// between leaves metadata that the next Open drops.
func (s *Store) removeLocked(name string) error {
	if err := os.RemoveAll(s.dataPath(name)); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if err := os.Remove(s.metaPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove volume %s metadata: %w", name, err)
	}
	delete(s.vols, name)
	return nil
}

// PruneOptions selects what [Store.Prune] removes.
type PruneOptions struct {
	// All removes unused named volumes too; by default only anonymous ones go
	// (dockerd 23+ with API 1.42+).
	All bool
	// Match, when set, must accept a volume for it to be removed (label filters).
	Match func(Volume) bool
}

// Prune removes the unused volumes opts selects and reports what it removed and
// the bytes freed.
func (s *Store) Prune(ctx context.Context, opts PruneOptions) (volumetypes.PruneReport, error) {
	rep := volumetypes.PruneReport{VolumesDeleted: []string{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(s.vols)) {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		v := s.volume(s.vols[name])
		if len(v.UsedBy) > 0 || (!opts.All && !v.Anonymous()) || (opts.Match != nil && !opts.Match(v)) {
			continue
		}
		size, err := volumeSize(ctx, v.Mountpoint)
		if err != nil {
			s.log.Warn("size of volume to prune", "volume", name, "err", err)
		}
		if err := s.removeLocked(name); err != nil {
			s.log.Warn("prune volume", "volume", name, "err", err)
			continue
		}
		rep.VolumesDeleted = append(rep.VolumesDeleted, name)
		rep.SpaceReclaimed += uint64(size)
	}
	return rep, nil
}

// Size returns the bytes the named volume's files take (hard links once).
func (s *Store) Size(ctx context.Context, name string) (int64, error) {
	v, err := s.Get(ctx, name)
	if err != nil {
		return 0, err
	}
	return volumeSize(ctx, v.Mountpoint)
}

// volume is m as a Volume, with its current users. Called with mu held.
func (s *Store) volume(m meta) Volume {
	return Volume{
		Name:       m.Name,
		Mountpoint: s.dataPath(m.Name),
		CreatedAt:  m.CreatedAt,
		Labels:     maps.Clone(m.Labels),
		Options:    maps.Clone(m.Options),
		UsedBy:     s.users(m.Name),
	}
}

func (s *Store) users(name string) []string {
	if s.cfg.Users == nil {
		return nil
	}
	users := slices.Clone(s.cfg.Users(name))
	sort.Strings(users)
	return users
}

func (s *Store) dataPath(name string) string { return filepath.Join(s.cfg.Root, name) }

func (s *Store) metaPath(name string) string { return filepath.Join(s.metaDir, name+".json") }

// randomName is a name for an anonymous volume, as dockerd makes them.
func randomName() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("read random bytes: %v", err))
	}
	return hex.EncodeToString(b)
}

func isRandomName(name string) bool {
	if len(name) != 64 {
		return false
	}
	_, err := hex.DecodeString(name)
	return err == nil
}
