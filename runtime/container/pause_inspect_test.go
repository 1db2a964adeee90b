package container

import (
	"strings"
	"testing"

	ctypes "github.com/moby/moby/api/types/container"
)

// inspect and docker ps show a paused container as Docker does; exec is refused.
func TestPausedContainerInspectListExec(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	id := run(t, m, CreateRequest{Name: "paused-shown", Config: ctypes.Config{Cmd: []string{"sleep", "1000"}}})
	killOnCleanup(t, env, id)
	if err := m.Pause(ctxT(t), id); err != nil {
		t.Fatal(err)
	}
	ins, err := m.Inspect(ctxT(t), id)
	if err != nil || ins.State.Status != ctypes.StatePaused || !ins.State.Running || !ins.State.Paused {
		t.Fatalf("inspect of a paused container: %+v %v, want paused, running, Paused", ins.State, err)
	}
	list, _ := m.List(ctxT(t), false)
	if len(list) != 1 || list[0].State != ctypes.StatePaused || !strings.HasPrefix(list[0].Status, "Up ") || !strings.HasSuffix(list[0].Status, " (Paused)") {
		t.Fatalf("docker ps rows %+v, want one paused row Up … (Paused)", list)
	}
	_, err = m.Exec(ctxT(t), id, ExecConfig{Cmd: []string{"true"}}, nil, nil, nil)
	if !isErrType[interface{ Conflict() bool }](err) || !strings.Contains(err.Error(), "is paused, unpause the container before exec") {
		t.Fatalf("exec in a paused container: %v, want Conflict", err)
	}
	if err := m.Unpause(ctxT(t), id); err != nil {
		t.Fatal(err)
	}
	if ins, _ := m.Inspect(ctxT(t), id); ins.State.Status != statusRunning || ins.State.Paused {
		t.Fatalf("inspect after unpause: %+v", ins.State)
	}
}
