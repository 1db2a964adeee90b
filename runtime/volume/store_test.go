package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// users is a Config.Users whose answers the test changes.
type users struct {
	mu sync.Mutex
	by map[string][]string
}

func (u *users) set(name string, ids ...string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.by[name] = ids
}

func (u *users) of(name string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.by[name]
}

func openStore(t *testing.T, root string) (*Store, *users) {
	t.Helper()
	u := &users{by: map[string][]string{}}
	s, err := Open(context.Background(), Config{Root: root, Users: u.of})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s, u
}

// class names the error class of err as the API would map it.
func class(err error) string {
	var (
		nf interface{ NotFound() bool }
		cf interface{ Conflict() bool }
		ip interface{ InvalidParameter() bool }
	)
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &nf):
		return "notfound"
	case errors.As(err, &cf):
		return "conflict"
	case errors.As(err, &ip):
		return "invalid"
	}
	return "other"
}

func TestCreateGetList(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, _ := openStore(t, root)
	before := time.Now().Add(-time.Second)
	v, err := s.Create(ctx, "v1", map[string]string{"a": "b"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Mountpoint != filepath.Join(root, "v1") || v.Labels["a"] != "b" || v.CreatedAt.Before(before) {
		t.Fatalf("created %+v", v)
	}
	if fi, err := os.Stat(v.Mountpoint); err != nil || !fi.IsDir() {
		t.Fatalf("data dir: %v", err)
	}
	// An existing name returns the existing volume, labels unchanged.
	again, err := s.Create(ctx, "v1", map[string]string{"c": "d"}, nil)
	if err != nil || again.Labels["a"] != "b" || again.Labels["c"] != "" || !again.CreatedAt.Equal(v.CreatedAt) {
		t.Fatalf("create again: %+v, %v", again, err)
	}
	anon, err := s.Create(ctx, "", nil, nil)
	if err != nil || len(anon.Name) != 64 || !anon.Anonymous() {
		t.Fatalf("anonymous: %+v, %v", anon, err)
	}
	got, err := s.Get(ctx, "v1")
	if err != nil || got.Name != "v1" {
		t.Fatalf("get: %+v, %v", got, err)
	}
	api := got.API()
	if api.Driver != "local" || api.Scope != "local" || api.Labels["a"] != "b" || api.Options == nil || api.CreatedAt == "" {
		t.Fatalf("API form %+v", api)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %+v, %v", list, err)
	}
	if _, err := s.Get(ctx, "nope"); class(err) != "notfound" || err.Error() != "get nope: no such volume" {
		t.Fatalf("get unknown: %v", err)
	}
}

func TestCreateRefuses(t *testing.T) {
	s, _ := openStore(t, t.TempDir())
	tests := []struct {
		name, vol string
		opts      map[string]string
		want      string
	}{
		{"one char", "a", nil, `create a: "a" includes invalid characters for a local volume name`},
		{"slash", "x/y", nil, `"x/y" includes invalid characters`},
		{"leading dot", ".meta", nil, "invalid characters"},
		{"too long", strings.Repeat("v", 256), nil, "a volume name may have at most 255 characters"},
		{"driver options", "nfs", map[string]string{"type": "nfs", "o": "addr=1.2.3.4"}, `create nfs: invalid option(s) ["o" "type"]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Create(context.Background(), tc.vol, nil, tc.opts)
			if class(err) != "invalid" || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want 400 containing %q", err, tc.want)
			}
		})
	}
	if list, _ := s.List(context.Background()); len(list) != 0 {
		t.Fatalf("refused creates left volumes: %+v", list)
	}
}

func TestRemove(t *testing.T) {
	ctx := context.Background()
	s, u := openStore(t, t.TempDir())
	v, err := s.Create(ctx, "data", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.Mountpoint, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	u.set("data", "c2", "c1")
	err = s.Remove(ctx, "data", true)
	if class(err) != "conflict" || err.Error() != "remove data: volume is in use - [c1, c2]" {
		t.Fatalf("remove in use: %v", err)
	}
	if got, _ := s.Get(ctx, "data"); !slices.Equal(got.UsedBy, []string{"c1", "c2"}) {
		t.Fatalf("UsedBy %v", got.UsedBy)
	}
	u.set("data")
	if err := s.Remove(ctx, "data", false); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := os.Stat(v.Mountpoint); !os.IsNotExist(err) {
		t.Fatalf("data dir still there: %v", err)
	}
	if err := s.Remove(ctx, "data", false); class(err) != "notfound" || err.Error() != "get data: no such volume" {
		t.Fatalf("remove unknown: %v", err)
	}
	if err := s.Remove(ctx, "data", true); err != nil {
		t.Fatalf("force remove unknown: %v", err)
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	s, u := openStore(t, t.TempDir())
	mk := func(name string, labels map[string]string, data string) Volume {
		t.Helper()
		v, err := s.Create(ctx, name, labels, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(v.Mountpoint, "f"), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return v
	}
	anonFree := mk("", nil, "12345")
	anonUsed := mk("", nil, "1")
	u.set(anonUsed.Name, "c1")
	mk("named", map[string]string{"keep": "no"}, "123")
	mk("kept", map[string]string{"keep": "yes"}, "1")

	rep, err := s.Prune(ctx, PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.VolumesDeleted, []string{anonFree.Name}) || rep.SpaceReclaimed != 5 {
		t.Fatalf("default prune: %+v", rep)
	}
	rep, err = s.Prune(ctx, PruneOptions{All: true, Match: func(v Volume) bool { return v.Labels["keep"] != "yes" }})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.VolumesDeleted, []string{"named"}) || rep.SpaceReclaimed != 3 {
		t.Fatalf("prune all with filter: %+v", rep)
	}
	list, _ := s.List(ctx)
	var names []string
	for _, v := range list {
		names = append(names, v.Name)
	}
	if !slices.Equal(names, []string{anonUsed.Name, "kept"}) {
		t.Fatalf("left %v", names)
	}
}

func TestReopenKeepsMetadataAndAdoptsOldVolumes(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, _ := openStore(t, root)
	v, err := s.Create(ctx, "v1", map[string]string{"a": "b"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A directory an older shoal made, and a crash mid-remove (metadata only).
	old := strings.Repeat("ab", 32)
	if err := os.MkdirAll(filepath.Join(root, old), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "legacy"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeMeta(filepath.Join(root, ".meta", "gone.json"), meta{Name: "gone", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s2, _ := openStore(t, root)
	got, err := s2.Get(ctx, "v1")
	if err != nil || got.Labels["a"] != "b" || !got.CreatedAt.Equal(v.CreatedAt) {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	if a, err := s2.Get(ctx, old); err != nil || !a.Anonymous() {
		t.Fatalf("adopted 64-hex dir: %+v, %v", a, err)
	}
	if l, err := s2.Get(ctx, "legacy"); err != nil || l.Anonymous() {
		t.Fatalf("adopted named dir: %+v, %v", l, err)
	}
	if _, err := s2.Get(ctx, "gone"); class(err) != "notfound" {
		t.Fatalf("stale metadata: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, ".meta", "gone.json")); !os.IsNotExist(err) {
		t.Fatalf("stale metadata file kept: %v", err)
	}
}

func TestMetadataWriteIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "v.json")
	for i := range 20 {
		if err := writeMeta(path, meta{Name: "v", Labels: map[string]string{"i": fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	m, err := readMeta(path)
	if err != nil || m.Labels["i"] != "19" {
		t.Fatalf("read back %+v, %v", m, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func TestConcurrentCreatesOfOneName(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t, t.TempDir())
	var wg sync.WaitGroup
	created := make([]time.Time, 16)
	errs := make([]error, 16)
	for i := range created {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.Create(ctx, "shared", map[string]string{"n": fmt.Sprint(i)}, nil)
			created[i], errs[i] = v.CreatedAt, err
		}()
	}
	wg.Wait()
	for i := range created {
		if errs[i] != nil || !created[i].Equal(created[0]) {
			t.Fatalf("create %d: %v %v (first %v)", i, errs[i], created[i], created[0])
		}
	}
	if list, _ := s.List(ctx); len(list) != 1 {
		t.Fatalf("list %+v", list)
	}
}
