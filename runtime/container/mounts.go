package container

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// mountPoint is a resolved user mount: a host source (or tmpfs) at a destination.
type mountPoint struct {
	ctypes.MountPoint
	TmpfsOptions string // for tmpfs: mount data, e.g. "size=65536k"
}

// resolveMounts turns Binds, Mounts and Tmpfs into mount points, creating named
// volume directories under <Root>/../volumes/<name>.
func (m *Manager) resolveMounts(rec record) ([]mountPoint, error) {
	hc := rec.HostConfig
	var out []mountPoint
	for _, bind := range hc.Binds {
		mp, err := m.parseBind(bind)
		if err != nil {
			return nil, err
		}
		out = append(out, mp)
	}
	for _, mnt := range hc.Mounts {
		mp, err := m.convertMount(mnt)
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
func (m *Manager) parseBind(bind string) (mountPoint, error) {
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
	return m.volume(parts[0], mp)
}

func (m *Manager) convertMount(mnt mount.Mount) (mountPoint, error) {
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
		return m.volume(mnt.Source, mp)
	case mount.TypeTmpfs:
		if o := mnt.TmpfsOptions; o != nil && o.SizeBytes > 0 {
			mp.TmpfsOptions = fmt.Sprintf("size=%d", o.SizeBytes)
		}
		return mp, nil
	default:
		return mountPoint{}, errInvalidf("invalid mount config: mount type %q is not supported", mnt.Type)
	}
}

func (m *Manager) volume(name string, mp mountPoint) (mountPoint, error) {
	if !validName.MatchString(name) && !isFullID(name) {
		return mountPoint{}, errInvalidf("invalid volume name %q", name)
	}
	dir := filepath.Join(filepath.Dir(filepath.Clean(m.cfg.Root)), "volumes", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return mountPoint{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	mp.Type = mount.TypeVolume
	mp.Name = name
	mp.Source = dir
	mp.Driver = "local"
	return mp, nil
}
