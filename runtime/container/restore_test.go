package container

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	ctypes "github.com/moby/moby/api/types/container"
)

// A daemon killed after starting a container but before recording it as
// running must not lose track of it; a half-created directory is discarded.
func TestCrashBeforeRunIsRecorded(t *testing.T) {
	env := newTestEnv(t)
	m1 := env.open()
	id := run(t, m1, CreateRequest{Config: ctypes.Config{
		Cmd: []string{"sh", "-c", `trap "exit 0" TERM; while true; do sleep 0.05; done`},
	}})
	before, _ := m1.Inspect(ctxT(t), id)
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}
	// Rewind the record to "created", as if the crash came before persisting.
	path := filepath.Join(env.root, id, "config.json")
	rec, err := readRecord(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	rec.State = runState{Status: statusCreated}
	b, _ := json.Marshal(rec)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	half := filepath.Join(env.root, newID())
	if err := os.MkdirAll(filepath.Join(half, "upper"), 0o755); err != nil {
		t.Fatal(err)
	}

	m2 := env.open()
	cleanupContainers(t, m2)
	after, err := m2.Inspect(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if !after.State.Running || after.State.Pid != before.State.Pid {
		t.Fatalf("after restart: %+v, want running with pid %d", after.State, before.State.Pid)
	}
	if _, err := os.Stat(half); !os.IsNotExist(err) {
		t.Fatalf("half-created container dir kept: %v", err)
	}
	grace := 5 * time.Second
	if err := m2.Stop(ctxT(t), id, &grace); err != nil {
		t.Fatal(err)
	}
	if ins, _ := m2.Inspect(ctxT(t), id); ins.State.Running {
		t.Fatalf("still running after stop")
	}
}
