package systemd

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The unit runs the binary it names as a notify service that systemd stops
// without its containers, with the settings a container engine needs.
func TestUnit(t *testing.T) {
	u := Unit("/usr/local/bin/shoal")
	for _, want := range []string{
		"\nExecStart=/usr/local/bin/shoal daemon\n",
		"\nType=notify\n",
		"\nKillMode=process\n",
		"\nDelegate=yes\n",
		"\nLimitNOFILE=1048576\n",
		"\nExecReload=/bin/kill -s HUP $MAINPID\n",
		"\nWantedBy=multi-user.target\n",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("the unit has no %q:\n%s", strings.TrimSpace(want), u)
		}
	}
	if strings.Contains(u, "@BINARY@") || strings.Contains(u, "StandardOutput=") || strings.Contains(u, "StandardError=") {
		t.Errorf("the unit names no binary or sends logs elsewhere than the journal:\n%s", u)
	}
	section := ""
	for _, line := range strings.Split(u, "\n") {
		switch {
		case line == "", strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line
		case section == "" || !strings.Contains(line, "="):
			t.Errorf("line %q is no setting of a section", line)
		}
	}
}

// Notify sends its state as one datagram to $NOTIFY_SOCKET, and does nothing
// without it.
func TestNotify(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify("READY=1"); sent || err != nil {
		t.Fatalf("without NOTIFY_SOCKET: sent %v, %v", sent, err)
	}
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	if sent, err := Notify("READY=1"); !sent || err != nil {
		t.Fatalf("sent %v, %v", sent, err)
	}
	buf := make([]byte, 64)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("received %q, %v", buf[:n], err)
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody"))
	if _, err := Notify("READY=1"); err == nil {
		t.Fatal("a socket nobody listens on took the message")
	}
}
