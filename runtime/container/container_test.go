package container

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	ctypes "github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

func TestEchoAppearsInLogsWithTimestamps(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	events := m.Subscribe(ctxT(t))
	before := time.Now().Add(-time.Second)

	id := run(t, m, CreateRequest{Name: "echo", Config: ctypes.Config{Cmd: []string{"echo", "hi"}}})
	if e := waitExit(t, m, id); e.Code != 0 || e.OOMKilled {
		t.Fatalf("exit = %+v, want code 0", e)
	}
	text, entries := logText(t, m, id, LogOptions{})
	if text != "hi\n" {
		t.Fatalf("logs = %q, want %q", text, "hi\n")
	}
	if entries[0].Stream != "stdout" || entries[0].Time.Before(before) || entries[0].Time.After(time.Now()) {
		t.Fatalf("entry = %+v, want stdout with a current timestamp", entries[0])
	}
	raw, err := os.ReadFile(filepath.Join(env.root, id, id+"-json.log"))
	if err != nil || !bytes.Contains(raw, []byte(`"log":"hi\n","stream":"stdout","time":"`)) {
		t.Fatalf("json-file log = %q (%v)", raw, err)
	}
	var actions []string
	for len(actions) < 3 {
		select {
		case e := <-events:
			actions = append(actions, e.Action)
		case <-time.After(5 * time.Second):
			t.Fatalf("events so far %v, want create start die", actions)
		}
	}
	if strings.Join(actions, " ") != "create start die" {
		t.Fatalf("events = %v, want create start die", actions)
	}
}

func TestExitCodesAndInspect(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	for _, code := range []int{0, 3, 42} {
		id := run(t, m, CreateRequest{Config: ctypes.Config{Cmd: []string{"sh", "-c", "exit " + itoa(code)}}})
		if e := waitExit(t, m, id); e.Code != code {
			t.Fatalf("exit code = %d, want %d", e.Code, code)
		}
		ins, err := m.Inspect(ctxT(t), id[:12])
		if err != nil {
			t.Fatal(err)
		}
		if ins.State.Status != "exited" || ins.State.Running || ins.State.ExitCode != code || ins.State.FinishedAt == "" {
			t.Fatalf("inspect state = %+v", ins.State)
		}
		list, _ := m.List(ctxT(t), true)
		found := false
		for _, s := range list {
			if s.ID == id {
				found = strings.HasPrefix(s.Status, "Exited ("+itoa(code)+")")
			}
		}
		if !found {
			t.Fatalf("docker ps -a row for %s missing or wrong: %+v", id, list)
		}
	}
}

func TestNamesLookupAndConflicts(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	ctx := ctxT(t)
	id, err := m.Create(ctx, CreateRequest{Name: "web.1.abc", Config: ctypes.Config{Image: "busybox", Cmd: []string{"true"},
		Labels: map[string]string{"com.docker.swarm.service.name": "web"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{id, id[:10], "web.1.abc", "/web.1.abc"} {
		ins, err := m.Inspect(ctx, ref)
		if err != nil || ins.ID != id || ins.Name != "/web.1.abc" || ins.State.Status != "created" {
			t.Fatalf("Inspect(%q) = %s %s %v", ref, ins.ID, ins.Name, err)
		}
	}
	_, err = m.Create(ctx, CreateRequest{Name: "web.1.abc", Config: ctypes.Config{Image: "busybox"}})
	if !isErrType[interface{ Conflict() bool }](err) {
		t.Fatalf("duplicate name: err = %v, want Conflict", err)
	}
	_, err = m.Inspect(ctx, "nope")
	if !isErrType[interface{ NotFound() bool }](err) || err.Error() != "No such container: nope" {
		t.Fatalf("missing: err = %v", err)
	}
	_, err = m.Create(ctx, CreateRequest{Config: ctypes.Config{Image: "alpine"}})
	if !isErrType[interface{ NotFound() bool }](err) || !strings.Contains(err.Error(), "No such image: alpine") {
		t.Fatalf("missing image: err = %v", err)
	}
	list, _ := m.List(ctx, true)
	if len(list) != 1 || list[0].Labels["com.docker.swarm.service.name"] != "web" || list[0].Names[0] != "/web.1.abc" {
		t.Fatalf("List = %+v", list)
	}
	if err := m.Remove(ctx, "web.1.abc", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(env.root, id)); !os.IsNotExist(err) {
		t.Fatalf("container dir still there after remove: %v", err)
	}
}

func TestStopKillsAfterGraceWhenTermIgnored(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	id := run(t, m, CreateRequest{Config: ctypes.Config{Cmd: []string{"sh", "-c", `trap "" TERM; echo ready; while true; do sleep 1; done`}}})
	eventually(t, 10*time.Second, "ready in logs", func() bool {
		text, _ := logText(t, m, id, LogOptions{})
		return text == "ready\n"
	})
	err := m.Remove(ctxT(t), id, false)
	if !isErrType[interface{ Conflict() bool }](err) {
		t.Fatalf("remove running: err = %v, want Conflict", err)
	}
	grace := 500 * time.Millisecond
	start := time.Now()
	if err := m.Stop(ctxT(t), id, &grace); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < grace {
		t.Fatalf("stop took %v, before the grace period", took)
	}
	ins, _ := m.Inspect(ctxT(t), id)
	if ins.State.Running || ins.State.ExitCode != 137 {
		t.Fatalf("state after stop = %+v, want exited 137", ins.State)
	}
}

func TestStopWithTermHandler(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	id := run(t, m, CreateRequest{Config: ctypes.Config{Cmd: []string{"sh", "-c", `trap "exit 7" TERM; echo ready; while true; do sleep 0.1; done`}}})
	eventually(t, 10*time.Second, "ready", func() bool { s, _ := logText(t, m, id, LogOptions{}); return s == "ready\n" })
	start := time.Now()
	if err := m.Stop(ctxT(t), id, nil); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("stop waited for the grace period although the container handled SIGTERM")
	}
	if e := waitExit(t, m, id); e.Code != 7 {
		t.Fatalf("exit = %d, want 7", e.Code)
	}
}

// A stop signal sent before the container's main process has a handler for
// it (a task stopped right after it started) is dropped by the kernel, the
// process being its PID namespace's init: Stop delivers it again once the
// process handles it, so the process ends cleanly instead of being killed
// after the grace period.
func TestStopSignalBeforeHandlerIsDeliveredAgain(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	id := run(t, m, CreateRequest{Config: ctypes.Config{Cmd: []string{"sh", "-c", `echo started; sleep 1; trap "exit 7" TERM; while true; do sleep 0.1; done`}}})
	eventually(t, 10*time.Second, "started", func() bool { s, _ := logText(t, m, id, LogOptions{}); return s == "started\n" })
	grace := time.Minute
	if err := m.Stop(ctxT(t), id, &grace); err != nil {
		t.Fatal(err)
	}
	if e := waitExit(t, m, id); e.Code != 7 {
		text, _ := logText(t, m, id, LogOptions{})
		t.Fatalf("exit = %d (logs %q), want 7: the stop signal reached the handler", e.Code, text)
	}
}

func TestSignalMasks(t *testing.T) {
	status := []byte("Name:\tsh\nSigQ:\t0/1\nSigPnd:\t0000000000000000\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000004\nSigCgt:\t0000000000004002\n")
	masks, err := signalMasks(status)
	if err != nil || masks["SigCgt"] != 0x4002 || masks["SigIgn"] != 4 || masks["SigBlk"] != 0 {
		t.Fatalf("masks %v, %v", masks, err)
	}
	if _, err := signalMasks([]byte("Name:\tsh\n")); err == nil {
		t.Fatal("a status without signal masks was read")
	}
}

func TestMemoryLimitOOMKilled(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	hc := ctypes.HostConfig{}
	alloc := "67108864"
	hc.Memory = 8 << 20
	if raceEnabled {
		hc.Memory, alloc = 64<<20, "268435456"
	}
	id := run(t, m, CreateRequest{
		Config:     ctypes.Config{Cmd: []string{"sh", "-c", `x=$(head -c ` + alloc + ` /dev/zero | tr '\0' a); echo survived`}},
		HostConfig: hc,
	})
	e := waitExit(t, m, id)
	if !e.OOMKilled || e.Code != 137 {
		t.Fatalf("exit = %+v, want OOMKilled and 137", e)
	}
	ins, _ := m.Inspect(ctxT(t), id)
	if !ins.State.OOMKilled {
		t.Fatalf("inspect OOMKilled = false")
	}
}

func TestExecHostnameAndEnvWorkdirUser(t *testing.T) {
	env := newTestEnv(t)
	env.images.cfg.Env = []string{"PATH=/bin", "FOO=img", "BAR=img"}
	env.images.cfg.WorkingDir = "/data"
	m := env.open()
	cleanupContainers(t, m)
	id := run(t, m, CreateRequest{Config: ctypes.Config{
		Hostname: "myhost", User: "app", Env: []string{"BAR=req"},
		Cmd: []string{"sh", "-c", `echo "$FOO $BAR $(pwd) $(id -u):$(id -g)"; exec sleep 1000`},
	}})
	eventually(t, 10*time.Second, "first line", func() bool { s, _ := logText(t, m, id, LogOptions{}); return s != "" })
	text, _ := logText(t, m, id, LogOptions{})
	if text != "img req /data 1000:1000\n" {
		t.Fatalf("env/workdir/user output = %q", text)
	}
	var out, errOut bytes.Buffer
	code, err := m.Exec(ctxT(t), id, ExecConfig{Cmd: []string{"hostname"}}, nil, &out, &errOut)
	if err != nil || code != 0 || out.String() != "myhost\n" {
		t.Fatalf("exec hostname = %d %q %q %v", code, out.String(), errOut.String(), err)
	}
	out.Reset()
	code, err = m.Exec(ctxT(t), id, ExecConfig{Cmd: []string{"sh", "-c", "id -u; exit 5"}, User: "0"}, nil, &out, &out)
	if err != nil || code != 5 || out.String() != "0\n" {
		t.Fatalf("exec as root = %d %q %v", code, out.String(), err)
	}
	out.Reset()
	code, _ = m.Exec(ctxT(t), id, ExecConfig{Cmd: []string{"cat", "/etc/hosts", "/etc/resolv.conf"}}, nil, &out, &out)
	if code != 0 || !strings.Contains(out.String(), "127.0.0.1\tlocalhost") || !strings.Contains(out.String(), "nameserver") {
		t.Fatalf("hosts/resolv.conf = %d %q", code, out.String())
	}
	// A missing executable: 127 and the words dockerd passes on from runc.
	code, err = m.Exec(ctxT(t), id, ExecConfig{Cmd: []string{"nope-command"}}, nil, &out, &out)
	want := `OCI runtime exec failed: exec failed: unable to start container process: exec: "nope-command": executable file not found in $PATH: unknown`
	if code != 127 || err == nil || err.Error() != want {
		t.Fatalf("exec of a missing executable = %d %v, want 127 %s", code, err, want)
	}
}

func TestReadonlyRootfsRejectsWrites(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	id := run(t, m, CreateRequest{
		Config:     ctypes.Config{Cmd: []string{"sh", "-c", "touch /x && echo wrote"}},
		HostConfig: ctypes.HostConfig{ReadonlyRootfs: true},
	})
	if e := waitExit(t, m, id); e.Code == 0 {
		t.Fatalf("write to a read-only rootfs succeeded")
	}
	text, _ := logText(t, m, id, LogOptions{})
	if !strings.Contains(text, "Read-only file system") {
		t.Fatalf("stderr = %q, want Read-only file system", text)
	}
}

func TestHealthCheckTurnsHealthyAndUnhealthy(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	events := m.Subscribe(ctxT(t))
	id := run(t, m, CreateRequest{Config: ctypes.Config{
		Cmd: []string{"sleep", "1000"},
		Healthcheck: &ctypes.HealthConfig{
			Test: []string{"CMD-SHELL", "test -f /tmp/ok"}, Interval: 100 * time.Millisecond,
			Timeout: 2 * time.Second, Retries: 2,
		},
	}})
	health := func() string {
		ins, err := m.Inspect(ctxT(t), id)
		if err != nil || ins.State.Health == nil {
			return ""
		}
		return string(ins.State.Health.Status)
	}
	eventually(t, 10*time.Second, "unhealthy", func() bool { return health() == "unhealthy" })
	if _, err := m.Exec(ctxT(t), id, ExecConfig{Cmd: []string{"touch", "/tmp/ok"}}, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "healthy", func() bool { return health() == "healthy" })
	ins, _ := m.Inspect(ctxT(t), id)
	if h := ins.State.Health; h.FailingStreak != 0 || len(h.Log) == 0 || len(h.Log) > 5 || h.Log[len(h.Log)-1].ExitCode != 0 {
		t.Fatalf("health = %+v", h)
	}
	seen := map[string]bool{}
	deadline := time.After(5 * time.Second)
	for !seen["health_status: healthy"] || !seen["health_status: unhealthy"] {
		select {
		case e := <-events:
			seen[e.Action] = true
		case <-deadline:
			t.Fatalf("health events seen: %v", seen)
		}
	}
}

func TestLiveRestore(t *testing.T) {
	env := newTestEnv(t)
	m1 := env.open()
	id := run(t, m1, CreateRequest{Name: "ticker", Config: ctypes.Config{
		Cmd: []string{"sh", "-c", `trap "exit 0" TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done`},
	}})
	eventually(t, 10*time.Second, "first tick", func() bool { s, _ := logText(t, m1, id, LogOptions{}); return s != "" })
	before, _ := m1.Inspect(ctxT(t), id)
	if err := m1.Close(); err != nil { // a crash: containers keep running
		t.Fatal(err)
	}
	_, logged := logText(t, m1, id, LogOptions{})
	rawPath := filepath.Join(env.root, id, "stdout")
	eventually(t, 10*time.Second, "output while the daemon is down", func() bool {
		st, err := os.Stat(rawPath)
		return err == nil && st.Size() > int64(len(logged)*len("tick 10\n")+64)
	})
	if err := unix.Kill(before.State.Pid, 0); err != nil {
		t.Fatalf("container died with the manager: %v", err)
	}

	m2 := env.open()
	cleanupContainers(t, m2)
	after, err := m2.Inspect(ctxT(t), "ticker")
	if err != nil {
		t.Fatal(err)
	}
	if !after.State.Running || after.State.Pid != before.State.Pid {
		t.Fatalf("after restore: running=%v pid=%d, want running pid %d", after.State.Running, after.State.Pid, before.State.Pid)
	}
	_, entries := logText(t, m2, id, LogOptions{})
	if len(entries) <= len(logged)+3 {
		t.Fatalf("logs after restore have %d entries, had %d before the crash: output written while down is missing", len(entries), len(logged))
	}
	for i, e := range entries {
		if want := "tick " + itoa(i) + "\n"; string(e.Line) != want {
			t.Fatalf("entry %d = %q, want %q (lost or repeated output)", i, e.Line, want)
		}
	}
	var out bytes.Buffer
	if code, err := m2.Exec(ctxT(t), id, ExecConfig{Cmd: []string{"echo", "still here"}}, nil, &out, &out); err != nil || code != 0 || out.String() != "still here\n" {
		t.Fatalf("exec in re-adopted container = %d %q %v", code, out.String(), err)
	}
	// Follow streams until the container stops.
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	follow, err := m2.Logs(ctx, id, LogOptions{Follow: true, Tail: 0})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := <-follow; !ok {
		t.Fatal("follow ended while the container runs")
	}
	if err := m2.Stop(ctxT(t), id, nil); err != nil {
		t.Fatal(err)
	}
	for range follow {
	}
	ins, _ := m2.Inspect(ctxT(t), id)
	if ins.State.Running || ins.State.Status != "exited" {
		t.Fatalf("after stop: %+v", ins.State)
	}
	if ins.State.ExitCode != 255 || ins.State.Error == "" {
		t.Fatalf("re-adopted exit = %d %q, want 255 with an explanation", ins.State.ExitCode, ins.State.Error)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
