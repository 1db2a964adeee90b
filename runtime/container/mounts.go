package container

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/shoal-project/shoal/runtime/volume"
)

// VolumeStore is what the manager needs of the node's volume store.
// *volume.Store implements it.
type VolumeStore interface {
	// Create returns the named volume, creating it with labels when it does not
	// exist yet; driverOpts are the local driver's options.
	Create(ctx context.Context, name string, labels, driverOpts map[string]string) (volume.Volume, error)
	// Remove deletes the named volume; it refuses one still in use (Conflict).
	Remove(ctx context.Context, name string, force bool) error
}

// removeAnonymousVolumes deletes the anonymous volumes rec mounted, as dockerd's
// swarm executor removes a task container together with its volumes. A volume
// another container still uses stays.
func (m *Manager) removeAnonymousVolumes(ctx context.Context, rec record) {
	if m.cfg.Volumes == nil {
		return
	}
	for _, mp := range rec.Mounts {
		if mp.Type != mount.TypeVolume || !isFullID(mp.Name) {
			continue
		}
		if err := m.cfg.Volumes.Remove(ctx, mp.Name, false); err != nil {
			m.log.Debug("anonymous volume kept", "container", rec.ID, "volume", mp.Name, "err", err)
		}
	}
}

// mountPoint is a resolved user mount: a host source (or tmpfs) at a destination.
type mountPoint struct {
	ctypes.MountPoint
	TmpfsOptions string // for tmpfs: mount data, e.g. "size=65536k"
}

// resolveMounts turns Binds, Mounts and Tmpfs into mount points, creating named
// volumes in Config.Volumes (or, without one, directories under
// <Root>/../volumes/<name>). Volume creation is bounded by the manager's
// lifetime: it is local and quick.
func (m *Manager) resolveMounts(rec record) ([]mountPoint, error) {
	ctx := m.ctx
	hc := rec.HostConfig
	var out []mountPoint
	for _, bind := range hc.Binds {
		mp, err := m.parseBind(ctx, bind)
		if err != nil {
			return nil, err
		}
		out = append(out, mp)
	}
	for _, mnt := range hc.Mounts {
		mp, err := m.convertMount(ctx, mnt)
		if err != nil {
			return nil, err
		}
		out = append(out, mp)
	}
	for dst, opts := range hc.Tmpfs {
		out = append(out, mountPoint{
			MountPoint:   ctypes.MountPoint{Type: mount.TypeTmpfs, Destination: dst, RW: true},
			TmpfsOptions: opts,
		})
	}
	for _, mp := range out {
		if !filepath.IsAbs(mp.Destination) {
			return nil, errInvalidf("invalid mount config: mount path must be absolute: %s", mp.Destination)
		}
	}
	return out, nil
}

// parseBind parses "src:dst[:opts]"; a src that is not a path names a volume.
func (m *Manager) parseBind(ctx context.Context, bind string) (mountPoint, error) {
	parts := strings.Split(bind, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return mountPoint{}, errInvalidf("invalid volume specification: '%s'", bind)
	}
	mp := mountPoint{MountPoint: ctypes.MountPoint{Destination: parts[1], RW: true}}
	if len(parts) == 3 {
		mp.Mode = parts[2]
		for _, o := range strings.Split(parts[2], ",") {
			if o == "ro" {
				mp.RW = false
			}
		}
	}
	if filepath.IsAbs(parts[0]) {
		mp.Type = mount.TypeBind
		mp.Source = parts[0]
		mp.Propagation = mount.PropagationRPrivate
		if err := os.MkdirAll(parts[0], 0o755); err != nil {
			return mountPoint{}, fmt.Errorf("create bind source %s: %w", parts[0], err)
		}
		return mp, nil
	}
	return m.volume(ctx, parts[0], nil, nil, mp)
}

func (m *Manager) convertMount(ctx context.Context, mnt mount.Mount) (mountPoint, error) {
	mp := mountPoint{MountPoint: ctypes.MountPoint{Type: mnt.Type, Destination: mnt.Target, RW: !mnt.ReadOnly}}
	switch mnt.Type {
	case mount.TypeBind:
		if _, err := os.Stat(mnt.Source); err != nil {
			return mountPoint{}, errInvalidf("invalid mount config for type \"bind\": bind source path does not exist: %s", mnt.Source)
		}
		mp.Source = mnt.Source
		mp.Propagation = mount.PropagationRPrivate
		return mp, nil
	case mount.TypeVolume:
		if mnt.Source == "" {
			mnt.Source = newID()
		}
		var labels, opts map[string]string
		if vo := mnt.VolumeOptions; vo != nil {
			if dc := vo.DriverConfig; dc != nil {
				if dc.Name != "" && dc.Name != volume.DriverName {
					return mountPoint{}, errInvalidf("create %s: volume driver %q is not supported: only %q volumes are", mnt.Source, dc.Name, volume.DriverName)
				}
				opts = dc.Options
			}
			labels = vo.Labels
		}
		return m.volume(ctx, mnt.Source, labels, opts, mp)
	case mount.TypeTmpfs:
		if o := mnt.TmpfsOptions; o != nil && o.SizeBytes > 0 {
			mp.TmpfsOptions = fmt.Sprintf("size=%d", o.SizeBytes)
		}
		return mp, nil
	default:
		return mountPoint{}, errInvalidf("invalid mount config: mount type %q is not supported", mnt.Type)
	}
}

// volume mounts the named volume, creating it with labels and driver options if
// it does not exist. A 64-hex name is an anonymous volume (Create names those so) and is labelled
// as dockerd labels anonymous volumes, so that `docker volume prune` finds it.
func (m *Manager) volume(ctx context.Context, name string, labels, driverOpts map[string]string, mp mountPoint) (mountPoint, error) {
	if !validName.MatchString(name) && !isFullID(name) {
		return mountPoint{}, errInvalidf("invalid volume name %q", name)
	}
	mp.Type = mount.TypeVolume
	mp.Name = name
	mp.Driver = volume.DriverName
	if m.cfg.Volumes == nil {
		dir := filepath.Join(filepath.Dir(filepath.Clean(m.cfg.Root)), "volumes", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return mountPoint{}, fmt.Errorf("create volume %s: %w", name, err)
		}
		mp.Source = dir
		return mp, nil
	}
	if isFullID(name) {
		labels = mapWith(labels, volume.AnonymousLabel, "")
	}
	v, err := m.cfg.Volumes.Create(ctx, name, labels, driverOpts)
	if err != nil {
		return mountPoint{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	mp.Source = v.Mountpoint
	return mp, nil
}

// VolumeUsers returns the IDs of the containers (running or not) whose mounts
// use the named volume, sorted.
func (m *Manager) VolumeUsers(name string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id, c := range m.byID {
		for _, mp := range c.rec.Mounts {
			if mp.Type == mount.TypeVolume && mp.Name == name {
				ids = append(ids, id)
				break
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// mapWith is a copy of in with k set to v.
func mapWith(in map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(in)+1)
	for key, val := range in {
		out[key] = val
	}
	out[k] = v
	return out
}
