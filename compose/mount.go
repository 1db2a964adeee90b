package compose

import (
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/mount"
)

// mounts converts volumes and tmpfs. A named volume takes the stack's name
// for it ("<stack>_<key>" unless the file names it) and the stack's label.
func mounts(p *types.Project, svc types.ServiceConfig) ([]mount.Mount, error) {
	var out []mount.Mount
	for _, v := range svc.Volumes {
		m := mount.Mount{Type: mount.Type(v.Type), Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
		switch v.Type {
		case types.VolumeTypeVolume:
			opts := &mount.VolumeOptions{}
			if v.Volume != nil {
				opts.NoCopy, opts.Subpath = v.Volume.NoCopy, v.Volume.Subpath
				opts.Labels = v.Volume.Labels
			}
			if v.Source != "" {
				vol, ok := p.Volumes[v.Source]
				if !ok {
					return nil, fmt.Errorf("volume %s is not defined", v.Source)
				}
				m.Source = vol.Name
				if !vol.External {
					opts.Labels = withNamespace(p.Name, mergeLabels(vol.Labels, opts.Labels))
					if vol.Driver != "" || len(vol.DriverOpts) > 0 {
						opts.DriverConfig = &mount.Driver{Name: vol.Driver, Options: vol.DriverOpts}
					}
				}
			}
			m.VolumeOptions = opts
		case types.VolumeTypeBind:
			if v.Bind != nil && v.Bind.Propagation != "" {
				m.BindOptions = &mount.BindOptions{Propagation: mount.Propagation(v.Bind.Propagation)}
			}
		case types.VolumeTypeTmpfs:
			if v.Tmpfs != nil {
				m.TmpfsOptions = &mount.TmpfsOptions{SizeBytes: int64(v.Tmpfs.Size), Mode: os.FileMode(v.Tmpfs.Mode)}
			}
		default:
			return nil, fmt.Errorf("volume %s: type %q is not supported", v.Target, v.Type)
		}
		out = append(out, m)
	}
	for _, target := range svc.Tmpfs {
		out = append(out, mount.Mount{Type: mount.TypeTmpfs, Target: target})
	}
	return out, nil
}

func mergeLabels(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
