package container

import (
	"slices"
	"testing"
	"time"

	ctypes "github.com/moby/moby/api/types/container"
)

func TestPruneRemovesStoppedContainers(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	// Each stopped container wrote 1000 bytes into its writable layer.
	write := []string{"sh", "-c", "head -c 1000 /dev/zero > /junk"}
	exited := run(t, m, CreateRequest{Name: "prune-exited", Config: ctypes.Config{Cmd: write}})
	kept := run(t, m, CreateRequest{Name: "prune-kept", Config: ctypes.Config{Cmd: write, Labels: map[string]string{"keep": "yes"}}})
	waitExit(t, m, exited)
	waitExit(t, m, kept)
	created, err := m.Create(ctxT(t), CreateRequest{Name: "prune-created", Config: ctypes.Config{Image: "busybox", Cmd: []string{"true"}}})
	if err != nil {
		t.Fatal(err)
	}
	live := run(t, m, CreateRequest{Name: "prune-live", Config: ctypes.Config{Cmd: []string{"sleep", "1000"}}})
	paused := run(t, m, CreateRequest{Name: "prune-paused", Config: ctypes.Config{Cmd: []string{"sleep", "1000"}}})
	killOnCleanup(t, env, paused)
	if err := m.Pause(ctxT(t), paused); err != nil {
		t.Fatal(err)
	}

	// until before every creation keeps them all.
	rep, err := m.Prune(ctxT(t), PruneOptions{Until: time.Now().Add(-time.Hour)})
	if err != nil || len(rep.ContainersDeleted) != 0 || rep.SpaceReclaimed != 0 {
		t.Fatalf("prune until an hour ago: %+v, %v; want nothing removed", rep, err)
	}

	rep, err = m.Prune(ctxT(t), PruneOptions{Match: func(l map[string]string) bool { return l["keep"] != "yes" }})
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Clone(rep.ContainersDeleted)
	slices.Sort(got)
	want := []string{exited, created}
	slices.Sort(want)
	if !slices.Equal(got, want) || rep.SpaceReclaimed != 1000 {
		t.Fatalf("prune: deleted %v, %d bytes; want %v, 1000 bytes", got, rep.SpaceReclaimed, want)
	}
	list, _ := m.List(ctxT(t), true)
	var left []string
	for _, s := range list {
		left = append(left, s.ID)
	}
	slices.Sort(left)
	wantLeft := []string{kept, live, paused}
	slices.Sort(wantLeft)
	if !slices.Equal(left, wantLeft) {
		t.Fatalf("containers left %v, want %v (labelled, running, paused)", left, wantLeft)
	}
	if _, err := m.Inspect(ctxT(t), "prune-exited"); !isErrType[interface{ NotFound() bool }](err) {
		t.Fatalf("inspect a pruned container: %v, want NotFound", err)
	}
}
