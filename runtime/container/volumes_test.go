package container

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/shoal-project/shoal/runtime/volume"
)

// volumeFake is a VolumeStore that keeps volumes as directories under dir and
// remembers the labels each was created with.
type volumeFake struct {
	dir    string
	mu     sync.Mutex
	labels map[string]map[string]string
}

func (f *volumeFake) Create(_ context.Context, name string, labels, _ map[string]string) (volume.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.labels[name]; !ok {
		f.labels[name] = maps.Clone(labels)
	}
	dir := filepath.Join(f.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return volume.Volume{}, err
	}
	return volume.Volume{Name: name, Mountpoint: dir, Labels: f.labels[name]}, nil
}

func (f *volumeFake) Remove(_ context.Context, name string, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.labels, name)
	return os.RemoveAll(filepath.Join(f.dir, name))
}

func TestVolumeMountsGoThroughTheVolumeStore(t *testing.T) {
	env := newTestEnv(t)
	vols := &volumeFake{dir: t.TempDir(), labels: map[string]map[string]string{}}
	m, err := New(context.Background(), Config{
		Root: env.root, StateRoot: env.state, Images: env.images, CgroupParent: env.cgroup, Volumes: vols,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	cleanupContainers(t, m)

	id := run(t, m, CreateRequest{
		Config: ctypes.Config{Cmd: []string{"sh", "-c", `echo hello > /data/file && echo anon > /scratch/file`}},
		HostConfig: ctypes.HostConfig{Mounts: []mount.Mount{
			{Type: mount.TypeVolume, Source: "data", Target: "/data",
				VolumeOptions: &mount.VolumeOptions{Labels: map[string]string{"com.example": "yes"}}},
			{Type: mount.TypeVolume, Target: "/scratch"},
		}},
	})
	if e := waitExit(t, m, id); e.Code != 0 {
		text, _ := logText(t, m, id, LogOptions{})
		t.Fatalf("exit %d: %s", e.Code, text)
	}
	if b, _ := os.ReadFile(filepath.Join(vols.dir, "data", "file")); string(b) != "hello\n" {
		t.Fatalf("file in the store's volume dir = %q", b)
	}
	vols.mu.Lock()
	names := slices.Sorted(maps.Keys(vols.labels))
	dataLabels := vols.labels["data"]
	vols.mu.Unlock()
	if len(names) != 2 || dataLabels["com.example"] != "yes" {
		t.Fatalf("store volumes %v, labels of data %v", names, dataLabels)
	}
	anon := names[0]
	if anon == "data" {
		anon = names[1]
	}
	vols.mu.Lock()
	_, anonymous := vols.labels[anon][volume.AnonymousLabel]
	vols.mu.Unlock()
	if !isFullID(anon) || !anonymous {
		t.Fatalf("anonymous volume %q labels %v", anon, vols.labels[anon])
	}
	if users := m.VolumeUsers("data"); !slices.Equal(users, []string{id}) {
		t.Fatalf("VolumeUsers(data) = %v, want [%s]", users, id)
	}
	if users := m.VolumeUsers("other"); len(users) != 0 {
		t.Fatalf("VolumeUsers(other) = %v", users)
	}
	if err := m.Remove(ctxT(t), id, true); err != nil {
		t.Fatal(err)
	}
	if users := m.VolumeUsers("data"); len(users) != 0 {
		t.Fatalf("VolumeUsers after remove = %v", users)
	}
	// The anonymous volume went with its container; the named one stays.
	vols.mu.Lock()
	names = slices.Sorted(maps.Keys(vols.labels))
	vols.mu.Unlock()
	if !slices.Equal(names, []string{"data"}) {
		t.Fatalf("volumes after the container's removal = %v, want [data]", names)
	}

	_, err = m.Create(ctxT(t), CreateRequest{
		Config: ctypes.Config{Image: "busybox", Cmd: []string{"true"}},
		HostConfig: ctypes.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "nfs", Target: "/n",
			VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Name: "rexray"}}}}},
	})
	if !isErrType[invalidError](err) {
		t.Fatalf("create with driver rexray: %v, want a 400", err)
	}
}
