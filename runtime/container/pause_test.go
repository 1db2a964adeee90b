package container

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ctypes "github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// ticker is a container that rewrites /tick with a counter every 20ms, so a
// test can see whether its processes make progress.
var ticker = ctypes.Config{Cmd: []string{"sh", "-c", `i=0; while true; do i=$((i+1)); echo $i > /tick; sleep 0.02; done`}}

// freezerState reads the freezer.state of the container's cgroup (cgroup v1),
// or "frozen"/"thawed" from cgroup.freeze (v2): what `cat` shows the user.
func freezerState(t *testing.T, env *testEnv, id string) string {
	t.Helper()
	lc, err := libcontainer.Load(env.state, id)
	if err != nil {
		t.Fatalf("load runtime state: %v", err)
	}
	st, err := lc.State()
	if err != nil {
		t.Fatal(err)
	}
	if p := st.CgroupPaths["freezer"]; p != "" {
		b, err := os.ReadFile(filepath.Join(p, "freezer.state"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	b, err := os.ReadFile(filepath.Join(st.CgroupPaths[""], "cgroup.freeze"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(b)) == "1" {
		return "FROZEN"
	}
	return "THAWED"
}

func tick(t *testing.T, env *testEnv, id string) string {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(env.root, id, "upper", "tick"))
	return strings.TrimSpace(string(b))
}

// killOnCleanup kills a container through libcontainer alone (SIGKILL thaws a
// frozen cgroup), so a failed test leaves no frozen process behind.
func killOnCleanup(t *testing.T, env *testEnv, id string) {
	t.Cleanup(func() {
		if lc, err := libcontainer.Load(env.state, id); err == nil {
			_ = lc.Signal(unix.SIGKILL)
		}
	})
}

func TestPauseFreezesAndUnpauseThaws(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	events := m.Subscribe(ctxT(t))
	id := run(t, m, CreateRequest{Name: "pause-ticker", Config: ticker})
	killOnCleanup(t, env, id)
	eventually(t, 10*time.Second, "the ticker to tick", func() bool { return tick(t, env, id) != "" })

	if err := m.Pause(ctxT(t), "pause-ticker"); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if got := freezerState(t, env, id); got != "FROZEN" {
		t.Fatalf("freezer state after pause = %q, want FROZEN", got)
	}
	// A frozen process writes nothing: the counter holds still while the
	// cgroup stays frozen (checked over many of the ticker's periods).
	frozenAt := tick(t, env, id)
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		if got := tick(t, env, id); got != frozenAt {
			t.Fatalf("the paused container kept running: tick %s -> %s", frozenAt, got)
		}
		time.Sleep(20 * time.Millisecond)
	}

	if err := m.Unpause(ctxT(t), id[:12]); err != nil {
		t.Fatalf("Unpause: %v", err)
	}
	if got := freezerState(t, env, id); got != "THAWED" {
		t.Fatalf("freezer state after unpause = %q, want THAWED", got)
	}
	eventually(t, 10*time.Second, "the ticker to tick again", func() bool { return tick(t, env, id) != frozenAt })

	var actions []string
	for len(actions) < 4 {
		select {
		case e := <-events:
			if e.ID == id {
				actions = append(actions, e.Action)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("events so far %q, want create start pause unpause", actions)
		}
	}
	if strings.Join(actions, " ") != "create start pause unpause" {
		t.Fatalf("events %q, want create start pause unpause", actions)
	}
}

func TestPauseErrors(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	created, err := m.Create(ctxT(t), CreateRequest{Name: "pause-created", Config: ctypes.Config{Image: "busybox", Cmd: []string{"true"}}})
	if err != nil {
		t.Fatal(err)
	}
	live := run(t, m, CreateRequest{Name: "pause-live", Config: ctypes.Config{Cmd: []string{"sleep", "1000"}}})
	killOnCleanup(t, env, live)

	conflict := func(what string, err error, want string) {
		t.Helper()
		if !isErrType[interface{ Conflict() bool }](err) || err.Error() != want {
			t.Fatalf("%s: %v, want Conflict %q", what, err, want)
		}
	}
	conflict("pause a created container", m.Pause(ctxT(t), "pause-created"), "Container "+created+" is not running")
	conflict("unpause a created container", m.Unpause(ctxT(t), "pause-created"), "Container "+created+" is not paused")
	conflict("unpause a running container", m.Unpause(ctxT(t), "pause-live"), "Container "+live+" is not paused")
	if err := m.Pause(ctxT(t), "pause-live"); err != nil {
		t.Fatal(err)
	}
	conflict("pause twice", m.Pause(ctxT(t), "pause-live"), "Container "+live+" is already paused")
	if err := m.Pause(ctxT(t), "nosuch"); !isErrType[interface{ NotFound() bool }](err) || err.Error() != "No such container: nosuch" {
		t.Fatalf("pause unknown: %v", err)
	}
}

// A paused container can still be stopped and killed: SIGKILL thaws it.
func TestStopAndKillPausedContainer(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	stopMe := run(t, m, CreateRequest{Name: "paused-stop", Config: ctypes.Config{Cmd: []string{"sleep", "1000"}}})
	killMe := run(t, m, CreateRequest{Name: "paused-kill", Config: ctypes.Config{Cmd: []string{"sleep", "1000"}}})
	killOnCleanup(t, env, stopMe)
	killOnCleanup(t, env, killMe)
	for _, id := range []string{stopMe, killMe} {
		if err := m.Pause(ctxT(t), id); err != nil {
			t.Fatal(err)
		}
	}

	grace := time.Second
	if err := m.Stop(ctxT(t), stopMe, &grace); err != nil {
		t.Fatalf("stop a paused container: %v", err)
	}
	if ins, _ := m.Inspect(ctxT(t), stopMe); ins.State.Running || ins.State.Status != statusExited {
		t.Fatalf("after stop: %+v, want exited", ins.State)
	}

	if err := m.Kill(ctxT(t), killMe, unix.SIGKILL); err != nil {
		t.Fatalf("kill a paused container: %v", err)
	}
	if e := waitExit(t, m, killMe); e.Code != 137 {
		t.Fatalf("exit of the killed paused container = %+v, want 137", e)
	}
	// Exited containers are not paused any more.
	if err := m.Unpause(ctxT(t), killMe); !isErrType[interface{ Conflict() bool }](err) {
		t.Fatalf("unpause an exited container: %v, want Conflict", err)
	}
}

// The frozen state lives in the cgroup: a restarted daemon re-adopts a paused
// container still paused.
func TestPausedContainerStaysPausedAcrossRestart(t *testing.T) {
	env := newTestEnv(t)
	m1 := env.open()
	id := run(t, m1, CreateRequest{Name: "paused-restart", Config: ticker})
	killOnCleanup(t, env, id)
	if err := m1.Pause(ctxT(t), id); err != nil {
		t.Fatal(err)
	}
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}

	m2 := env.open()
	cleanupContainers(t, m2)
	if got := freezerState(t, env, id); got != "FROZEN" {
		t.Fatalf("freezer state after restart = %q, want FROZEN", got)
	}
	if err := m2.Pause(ctxT(t), id); !isErrType[interface{ Conflict() bool }](err) || !strings.Contains(err.Error(), "already paused") {
		t.Fatalf("pause after restart: %v, want already paused", err)
	}
	before := tick(t, env, id)
	if err := m2.Unpause(ctxT(t), id); err != nil {
		t.Fatalf("unpause after restart: %v", err)
	}
	eventually(t, 10*time.Second, "the re-adopted ticker to tick", func() bool { return tick(t, env, id) != before })
}

// docker kill with the container's stop signal thaws a paused container, so the
// signal is acted on, as dockerd does.
func TestKillPausedContainerWithItsStopSignal(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	id := run(t, m, CreateRequest{Name: "paused-term", Config: ctypes.Config{
		StopSignal: "SIGUSR1",
		Cmd:        []string{"sh", "-c", `trap "exit 7" USR1; echo trapped; while :; do sleep 0.1; done`},
	}})
	killOnCleanup(t, env, id)
	eventually(t, 10*time.Second, "the trap installed", func() bool {
		text, _ := logText(t, m, id, LogOptions{})
		return strings.Contains(text, "trapped")
	})
	if err := m.Pause(ctxT(t), id); err != nil {
		t.Fatal(err)
	}
	if err := m.Kill(ctxT(t), id, unix.SIGUSR1); err != nil {
		t.Fatalf("kill a paused container with its stop signal: %v", err)
	}
	if e := waitExit(t, m, id); e.Code != 7 {
		t.Fatalf("exit after the stop signal = %+v, want 7 (the trap ran)", e)
	}
}
