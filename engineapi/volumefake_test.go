package engineapi

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/volume"

	vol "github.com/shoal-project/shoal/runtime/volume"
)

// volumeFake is an in-memory volume store: volumes with a size and the
// containers that use them, set by the test.
type volumeFake struct {
	mu    sync.Mutex
	vols  map[string]vol.Volume
	sizes map[string]int64
	seq   int
}

func newVolumeFake() *volumeFake {
	return &volumeFake{vols: map[string]vol.Volume{}, sizes: map[string]int64{}}
}

// add puts a volume of size bytes used by the given containers in the store.
func (f *volumeFake) add(name string, labels map[string]string, size int64, users ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vols[name] = vol.Volume{Name: name, Mountpoint: "/var/lib/shoal/volumes/" + name,
		CreatedAt: svcFakeEpoch, Labels: labels, UsedBy: users}
	f.sizes[name] = size
}

func (f *volumeFake) Create(_ context.Context, name string, labels, driverOpts map[string]string) (vol.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name == "" {
		f.seq++
		name = strings.Repeat(fmt.Sprintf("%02x", f.seq), 32)
		labels = maps.Clone(labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[vol.AnonymousLabel] = ""
	}
	if v, ok := f.vols[name]; ok {
		return v, nil
	}
	if len(driverOpts) > 0 {
		return vol.Volume{}, &svcFakeErr{invalid: true, msg: "create " + name + ": invalid option(s)"}
	}
	v := vol.Volume{Name: name, Mountpoint: "/var/lib/shoal/volumes/" + name,
		CreatedAt: svcFakeEpoch.Add(time.Duration(len(f.vols)) * time.Minute), Labels: labels}
	f.vols[name] = v
	return v, nil
}

func (f *volumeFake) Get(_ context.Context, name string) (vol.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.vols[name]
	if !ok {
		return vol.Volume{}, &svcFakeErr{notFound: true, msg: "get " + name + ": no such volume"}
	}
	return v, nil
}

func (f *volumeFake) List(context.Context) ([]vol.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []vol.Volume
	for _, name := range slices.Sorted(maps.Keys(f.vols)) {
		out = append(out, f.vols[name])
	}
	return out, nil
}

func (f *volumeFake) Remove(_ context.Context, name string, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.vols[name]
	switch {
	case !ok && force:
		return nil
	case !ok:
		return &svcFakeErr{notFound: true, msg: "get " + name + ": no such volume"}
	case len(v.UsedBy) > 0:
		return &svcFakeErr{clash: true, msg: "remove " + name + ": volume is in use - [" + strings.Join(v.UsedBy, ", ") + "]"}
	}
	delete(f.vols, name)
	return nil
}

func (f *volumeFake) Prune(_ context.Context, opts vol.PruneOptions) (volume.PruneReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rep := volume.PruneReport{VolumesDeleted: []string{}}
	for _, name := range slices.Sorted(maps.Keys(f.vols)) {
		v := f.vols[name]
		if len(v.UsedBy) > 0 || (!opts.All && !v.Anonymous()) || (opts.Match != nil && !opts.Match(v)) {
			continue
		}
		delete(f.vols, name)
		rep.VolumesDeleted = append(rep.VolumesDeleted, name)
		rep.SpaceReclaimed += uint64(f.sizes[name])
	}
	return rep, nil
}

func (f *volumeFake) Size(_ context.Context, name string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sizes[name], nil
}
