package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
	"github.com/shoal-project/shoal/testenv"
)

// Docker's words for a locked manager and a wrong key.
const (
	lockedMsg     = `Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker swarm unlock" to unlock it.`
	wrongKeyMsg   = "swarm could not be unlocked: invalid key provided"
	badKeyTextMsg = "invalid key string"
)

var unlockKeyRE = regexp.MustCompile(`SWMKEY-1-[A-Za-z0-9+/]+`)

// unlockKeyIn finds the one unlock key in the CLI's output.
func unlockKeyIn(t *testing.T, out string) string {
	t.Helper()
	keys := unlockKeyRE.FindAllString(out, -1)
	if len(keys) != 1 {
		t.Fatalf("want one unlock key in the output, found %d:\n%s", len(keys), out)
	}
	return keys[0]
}

// unlock runs `docker swarm unlock`, giving key on its standard input as a
// user types it.
func unlock(n *testenv.Node, key string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := n.DockerCommand(ctx, "docker", "swarm", "unlock")
	cmd.Stdin = strings.NewReader(key + "\n")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func localNodeState(t *testing.T, n *testenv.Node) string {
	t.Helper()
	return strings.TrimSpace(n.MustDocker("info", "--format", "{{.Swarm.LocalNodeState}}"))
}

// assertLocked checks that the node says it is locked and that every swarm
// call answers Docker's locked error.
func assertLocked(t *testing.T, n *testenv.Node) {
	t.Helper()
	if got := localNodeState(t, n); got != "locked" {
		t.Fatalf("LocalNodeState = %q, want locked", got)
	}
	for _, args := range [][]string{
		{"service", "ls"},
		{"service", "ps", "web"},
		{"service", "inspect", "web"},
		{"service", "create", "--name", "other", "busybox", "true"},
		{"node", "ls"},
		{"swarm", "join-token", "worker"},
		{"swarm", "unlock-key"},
		{"swarm", "update", "--autolock=false"},
	} {
		out, err := n.Docker(args...)
		if err == nil || !strings.Contains(out, lockedMsg) {
			t.Errorf("docker %s on a locked manager: err %v, output %q; want the locked error", strings.Join(args, " "), err, out)
		}
	}
	if status, msg := apiCall(t, n, http.MethodGet, "/services", nil); status != http.StatusServiceUnavailable || msg != lockedMsg {
		t.Errorf("GET /services on a locked manager = %d %q, want 503 %q", status, msg, lockedMsg)
	}
}

// randomKey is an unlock key of the right form that unlocks nothing.
func randomKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "SWMKEY-1-" + base64.RawStdEncoding.EncodeToString(b)
}

// Autolock's life with the real CLI: turned on by `swarm update`, a restarted
// manager is locked until the right key unlocks it, with all its state back;
// a rotated key replaces the old one; autolock off restarts unlocked.
func TestAutolock(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "autolock")
	n.MustDocker("service", "create", "-d", "--name", "web", "--label", "tier=front", "busybox", "sleep", "1d")
	waitRunning(t, n, "web", 1)
	containers := n.MustDocker("ps", "-q", "--no-trunc")
	if out, err := n.Docker("swarm", "unlock-key"); err == nil || !strings.Contains(out, "no unlock key is set") {
		t.Fatalf("unlock-key without autolock: err %v, output %q", err, out)
	}

	key := unlockKeyIn(t, n.MustDocker("swarm", "update", "--autolock=true"))
	if got := strings.TrimSpace(n.MustDocker("swarm", "unlock-key", "-q")); got != key {
		t.Fatalf("unlock-key -q = %q, want the key update printed, %q", got, key)
	}
	if out, err := unlock(n, key); err == nil || !strings.Contains(out, "swarm is not locked") {
		t.Fatalf("unlock of an unlocked manager: err %v, output %q", err, out)
	}

	n.Restart()
	assertLocked(t, n)
	if got := n.MustDocker("ps", "-q", "--no-trunc"); got != containers {
		t.Errorf("task containers while locked:\n%s\nwant those running before the restart:\n%s", got, containers)
	}
	if out, err := unlock(n, randomKey(t)); err == nil || !strings.Contains(out, wrongKeyMsg) {
		t.Fatalf("unlock with a wrong key: err %v, output %q; want %q", err, out, wrongKeyMsg)
	}
	if out, err := unlock(n, "hunter2"); err == nil || !strings.Contains(out, badKeyTextMsg) {
		t.Fatalf("unlock with a malformed key: err %v, output %q; want %q", err, out, badKeyTextMsg)
	}
	if status, msg := apiCall(t, n, http.MethodPost, "/swarm/unlock", strings.NewReader(`{"UnlockKey":"`+randomKey(t)+`"}`)); status != http.StatusUnauthorized || msg != wrongKeyMsg {
		t.Errorf("POST /swarm/unlock with a wrong key = %d %q, want 401 %q", status, msg, wrongKeyMsg)
	}
	assertLocked(t, n)
	if out, err := unlock(n, key); err != nil {
		t.Fatalf("unlock with the right key: %v\n%s", err, out)
	}
	if got := localNodeState(t, n); got != "active" {
		t.Fatalf("LocalNodeState after unlock = %q", got)
	}
	if got := strings.TrimSpace(n.MustDocker("service", "inspect", "--format", `{{index .Spec.Labels "tier"}}`, "web")); got != "front" {
		t.Fatalf("service web after unlock: label tier = %q", got)
	}
	waitRunning(t, n, "web", 1)

	rotated := strings.TrimSpace(n.MustDocker("swarm", "unlock-key", "--rotate", "-q"))
	if !unlockKeyRE.MatchString(rotated) || rotated == key {
		t.Fatalf("rotated key %q (old %q)", rotated, key)
	}
	n.Restart()
	assertLocked(t, n)
	if out, err := unlock(n, key); err == nil || !strings.Contains(out, wrongKeyMsg) {
		t.Fatalf("unlock with the rotated-out key: err %v, output %q", err, out)
	}
	if out, err := unlock(n, rotated); err != nil {
		t.Fatalf("unlock with the rotated key: %v\n%s", err, out)
	}
	waitRunning(t, n, "web", 1)

	n.MustDocker("swarm", "update", "--autolock=false")
	if out, err := n.Docker("swarm", "unlock-key"); err == nil || !strings.Contains(out, "no unlock key is set") {
		t.Fatalf("unlock-key after autolock off: err %v, output %q", err, out)
	}
	n.Restart()
	if got := localNodeState(t, n); got != "active" {
		t.Fatalf("LocalNodeState after a restart with autolock off = %q, want active", got)
	}
	waitRunning(t, n, "web", 1)
}

// A locked manager's disk reveals nothing: values only the swarm's store
// holds (service and node labels, which no container or file of the node
// copies) are found nowhere under the node's directory (data root with the
// Raft log and snapshots, container dirs, exec root, daemon log) in plain
// text, base64 or hex; no KEK is on disk and the node's TLS key is sealed.
func TestAutolockDiskScan(t *testing.T) {
	t.Parallel()
	n := testenv.StartNode(t, "autolock-scan", testenv.Options{})
	key := unlockKeyIn(t, n.MustDocker("swarm", "init", "--autolock", "--advertise-addr", "127.0.0.1"))
	archive := imagetest.BusyboxArchive(t, t.TempDir(), "busybox:latest")
	n.MustDocker("load", "-i", archive)

	markers := make([]string, 4)
	for i := range markers {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		markers[i] = "mk" + hex.EncodeToString(b)
	}
	n.MustDocker("service", "create", "-d", "--name", "web", "--label", "m0="+markers[0], "--label", "m1="+markers[1], "busybox", "sleep", "1d")
	n.MustDocker("service", "create", "-d", "--name", "idle", "--replicas", "0", "--label", "m2="+markers[2], "busybox", "true")
	n.MustDocker("node", "update", "--label-add", "m3="+markers[3], "self")
	waitRunning(t, n, "web", 1)
	// A new unlock key rotates the data key, which snapshots the state: the
	// markers are in a snapshot and in the log.
	key = strings.TrimSpace(n.MustDocker("swarm", "unlock-key", "--rotate", "-q"))
	if !hasSnapshot(t, n.DataRoot) {
		t.Fatal("no Raft snapshot under the data root after the data key rotated")
	}
	n.MustDocker("service", "update", "-d", "--label-add", "again="+markers[1], "idle")
	n.Restart()
	assertLockedState(t, n)

	if !scanFinds(t, writeProbe(t, markers[0]), markers[0]) {
		t.Fatal("the scan does not find a marker planted in base64: it would find nothing")
	}
	for _, m := range markers {
		if scanFinds(t, n.Dir, m) {
			t.Errorf("marker %s is readable on the locked manager's disk", m)
		}
	}
	err := filepath.WalkDir(n.DataRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch d.Name() {
		case "kek":
			t.Errorf("a key-encryption key is on disk: %s", path)
		case "swarm-node.key":
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if !bytes.HasPrefix(data, []byte("-----BEGIN SHOAL SEALED PRIVATE KEY-----")) {
				t.Errorf("the node's TLS key is not sealed: %s starts %q", path, data[:min(len(data), 40)])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	if out, err := unlock(n, key); err != nil {
		t.Fatalf("unlock: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(n.MustDocker("service", "inspect", "--format", `{{index .Spec.Labels "m0"}}`, "web")); got != markers[0] {
		t.Fatalf("after unlock the marker label is %q, want %q: the scan looked for values the swarm never held", got, markers[0])
	}
	waitRunning(t, n, "web", 1)

	// A locked manager leaves only with --force (Docker's rule).
	n.Restart()
	assertLockedState(t, n)
	if out, err := n.Docker("swarm", "leave"); err == nil || !strings.Contains(out, "Swarm is encrypted and locked. Please unlock it first or use `--force` to ignore this message.") {
		t.Fatalf("leave a locked swarm without --force: err %v, output %q", err, out)
	}
	n.MustDocker("swarm", "leave", "--force")
	if got := localNodeState(t, n); got != "inactive" {
		t.Fatalf("LocalNodeState after leave --force = %q", got)
	}
}

// hasSnapshot reports whether a Raft snapshot is under root.
func hasSnapshot(t *testing.T, root string) bool {
	t.Helper()
	found := false
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "state.bin" && filepath.Base(filepath.Dir(filepath.Dir(path))) == "snapshots" {
			found = true
		}
		return nil
	})
	return found
}

func assertLockedState(t *testing.T, n *testenv.Node) {
	t.Helper()
	if got := localNodeState(t, n); got != "locked" {
		t.Fatalf("LocalNodeState = %q, want locked", got)
	}
}

// writeProbe writes a file holding marker in base64 amid other bytes, to show
// that the scan finds what it looks for.
func writeProbe(t *testing.T, marker string) string {
	t.Helper()
	dir := t.TempDir()
	data := base64.StdEncoding.EncodeToString([]byte(`{"x":"` + marker + `"}`))
	if err := os.WriteFile(filepath.Join(dir, "probe"), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// scanFinds reports whether any regular file under dir holds marker in plain
// text, in hex (either case), or in base64 (standard or URL alphabet) at any
// of the three alignments it can have inside a longer encoded text.
func scanFinds(t *testing.T, dir, marker string) bool {
	t.Helper()
	needles := [][]byte{[]byte(marker), []byte(hex.EncodeToString([]byte(marker))), []byte(strings.ToUpper(hex.EncodeToString([]byte(marker))))}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for pad := range 3 {
			s := enc.EncodeToString(append(make([]byte, pad), marker...))
			// Drop the characters the padding and the unknown neighbours
			// can change.
			needles = append(needles, []byte(s[4:len(s)-4]))
		}
	}
	found := false
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) || os.IsPermission(err) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil // a file that went away meanwhile
		}
		for _, nd := range needles {
			if bytes.Contains(data, nd) {
				t.Logf("%s holds %q", path, nd)
				found = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", dir, err)
	}
	return found
}
