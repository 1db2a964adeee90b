package container

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ctypes "github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// runTestDaemon is a stand-in daemon in a child process: it starts one ticking
// container, prints its ID and waits to be killed.
func runTestDaemon() int {
	images := &fakeImages{layer: os.Getenv("SHOAL_TEST_LAYER")}
	m, err := New(context.Background(), Config{
		Root: os.Getenv("SHOAL_TEST_ROOT"), StateRoot: os.Getenv("SHOAL_TEST_STATE"),
		Images: images, CgroupParent: os.Getenv("SHOAL_TEST_CGROUP"),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	id, err := m.Create(context.Background(), CreateRequest{Name: "survivor", Config: ctypes.Config{
		Image: "busybox",
		Cmd:   []string{"sh", "-c", `trap "exit 0" TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.02; done`},
	}})
	if err == nil {
		err = m.Start(context.Background(), id)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(id)
	select {}
}

// The daemon process is SIGKILLed while a container runs: the container keeps
// running and writing, and a new manager re-adopts it without losing output.
func TestDaemonKilledContainerSurvives(t *testing.T) {
	env := newTestEnv(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "SHOAL_TEST_DAEMON=1", "SHOAL_TEST_LAYER="+env.images.layer,
		"SHOAL_TEST_ROOT="+env.root, "SHOAL_TEST_STATE="+env.state, "SHOAL_TEST_CGROUP="+env.cgroup)
	cmd.Stderr = testWriter{t}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("daemon did not report a container: %v", err)
	}
	id := strings.TrimSpace(line)
	rec, err := readRecord(filepath.Join(env.root, id))
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	raw := filepath.Join(env.root, id, "stdout")
	size := func() int64 { st, _ := os.Stat(raw); return st.Size() }
	grown := size() + 200
	eventually(t, 10*time.Second, "output while no daemon runs", func() bool { return size() > grown })
	if err := unix.Kill(rec.State.Pid, 0); err != nil {
		t.Fatalf("container died with the daemon: %v", err)
	}

	m := env.open()
	cleanupContainers(t, m)
	ins, err := m.Inspect(ctxT(t), "survivor")
	if err != nil || !ins.State.Running || ins.State.Pid != rec.State.Pid {
		t.Fatalf("re-adopted state = %+v, %v; want running pid %d", ins.State, err, rec.State.Pid)
	}
	_, entries := logText(t, m, id, LogOptions{})
	for i, e := range entries {
		if want := fmt.Sprintf("tick %d\n", i); string(e.Line) != want {
			t.Fatalf("entry %d = %q, want %q", i, e.Line, want)
		}
	}
	if len(entries) < int(grown)/len("tick 10\n") {
		t.Fatalf("only %d log entries; output written while the daemon was down is missing", len(entries))
	}
	if err := m.Stop(ctxT(t), id, nil); err != nil {
		t.Fatal(err)
	}
	e := waitExit(t, m, id)
	if e.Code != 255 || e.Err == nil {
		t.Fatalf("exit of re-adopted container = %+v, want 255 with an error", e)
	}
	// Gone, or a zombie left for whoever reaps orphans here.
	eventually(t, 5*time.Second, "container process gone", func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", rec.State.Pid))
		if err != nil {
			return true
		}
		_, after, _ := strings.Cut(string(b), ") ")
		return strings.HasPrefix(after, "Z")
	})
}
