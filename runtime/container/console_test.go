package container

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	ctypes "github.com/moby/moby/api/types/container"
)

// An exec with a console runs on a terminal of the asked size, with the line
// discipline's CRLF output and interactive input, and reports its PID.
func TestExecWithConsole(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	id := run(t, m, CreateRequest{Config: ctypes.Config{Cmd: []string{"sleep", "1000"}}})

	var out bytes.Buffer
	var pid int
	console := NewConsole(30, 100)
	cfg := ExecConfig{Cmd: []string{"sh", "-c", "stty size; tty; echo err >&2"}, Console: console, Started: func(p int) { pid = p }}
	code, err := m.Exec(ctxT(t), id, cfg, nil, &out, io.Discard)
	if err != nil || code != 0 {
		t.Fatalf("exec on a console = %d %v (%q)", code, err, out.String())
	}
	if got := out.String(); got != "30 100\r\n/dev/pts/0\r\nerr\r\n" {
		t.Fatalf("console output = %q", got)
	}
	if pid <= 0 {
		t.Fatalf("exec PID = %d", pid)
	}

	// Interactive: a shell reads its commands from the terminal; a resize while
	// it runs reaches it.
	stdin, feed := io.Pipe()
	t.Cleanup(func() { feed.Close() })
	console = NewConsole(0, 0)
	out.Reset()
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		cfg := ExecConfig{Cmd: []string{"sh"}, Console: console, Started: func(int) { close(started) }}
		code, err := m.Exec(ctxT(t), id, cfg, stdin, &out, io.Discard)
		if err == nil && code != 7 {
			t.Errorf("interactive shell exit code %d, want 7", code)
		}
		done <- err
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("interactive exec did not start")
	}
	if err := console.Resize(12, 34); err != nil {
		t.Fatalf("resize: %v", err)
	}
	if _, err := io.WriteString(feed, "stty size\nexit 7\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("interactive exec: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("interactive shell did not exit")
	}
	if got := out.String(); !strings.Contains(got, "12 34\r\n") {
		t.Fatalf("interactive shell output = %q", got)
	}
}
