package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/testenv"
)

// `shoal install --root DIR` puts the binary at DIR/usr/local/bin/shoal and
// shoal.service beside systemd's units, again without harm, and `shoal uninstall`
// removes both. No unit is started: --root keeps systemctl out of it.
func TestInstallAndUninstall(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	binary := testenv.Binary(t)
	shoal := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, binary, args...).CombinedOutput()
		return string(out), err
	}
	installed := filepath.Join(root, "usr/local/bin/shoal")
	unit := filepath.Join(root, "etc/systemd/system/shoal.service")
	for range 2 {
		if out, err := shoal("install", "--root", root); err != nil {
			t.Fatalf("shoal install: %v\n%s", err, out)
		}
		want, _ := os.ReadFile(binary)
		got, err := os.ReadFile(installed)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("installed binary: %d bytes, %v; want a copy of %s", len(got), err, binary)
		}
		if fi, err := os.Stat(installed); err != nil || fi.Mode().Perm() != 0o755 {
			t.Fatalf("installed binary mode: %v, %v", fi.Mode(), err)
		}
		text, err := os.ReadFile(unit)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"ExecStart=/usr/local/bin/shoal daemon\n", "Type=notify\n", "KillMode=process\n", "Delegate=yes\n"} {
			if !strings.Contains(string(text), want) {
				t.Errorf("shoal.service has no %q", strings.TrimSpace(want))
			}
		}
		// What a --root install leaves beside them: no temporary file.
		if entries, _ := os.ReadDir(filepath.Dir(installed)); len(entries) != 1 {
			t.Errorf("%s holds %d entries", filepath.Dir(installed), len(entries))
		}
	}
	// The installed binary runs: it is the daemon, unit and all.
	if out, err := exec.Command(installed, "daemon", "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "--config-file") {
		t.Fatalf("the installed binary: %v\n%s", err, out)
	}
	if out, err := shoal("uninstall", "--root", root); err != nil {
		t.Fatalf("shoal uninstall: %v\n%s", err, out)
	}
	for _, path := range []string{installed, unit} {
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s after uninstall: %v", path, err)
		}
	}
	if out, err := shoal("install", "--root", root, "--bogus"); err == nil {
		t.Errorf("an unknown flag was accepted:\n%s", out)
	}
	if out, err := shoal("install", "--help"); err != nil || !strings.Contains(out, "--root") {
		t.Errorf("install --help: %v\n%s", err, out)
	}
}

// Under systemd (Type=notify) the daemon says READY=1 once its API answers and
// STOPPING=1 when told to stop, on the socket $NOTIFY_SOCKET names. Not parallel:
// the daemon takes the variable from this process's environment.
func TestDaemonNotifiesSystemd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	n := testenv.StartNode(t, "notify", testenv.Options{})
	read := func() string {
		buf := make([]byte, 256)
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		k, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no message from the daemon: %v", err)
		}
		return string(buf[:k])
	}
	if got := read(); got != "READY=1" {
		t.Fatalf("first message %q, want READY=1", got)
	}
	if err := n.Ping(context.Background()); err != nil {
		t.Fatalf("ready but not answering: %v", err)
	}
	n.Stop()
	if got := read(); got != "STOPPING=1" {
		t.Fatalf("message at stop %q, want STOPPING=1", got)
	}
}
