package container

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ctypes "github.com/moby/moby/api/types/container"
)

// A container's files are on a tmpfs of its own, bound read-only at their paths
// with their owners and modes; their data is in no file of the container's
// directory on disk, and removing the container unmounts the tmpfs.
func TestFilesAreInMemoryOnly(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	secret := "s3cr3t-" + newID()[:16]
	script := `set -e
md5sum /run/secrets/db_pass | cut -d' ' -f1
stat -c '%u:%g:%a' /run/secrets/db_pass /etc/app/app.conf
grep -E ' /run/secrets/db_pass | /etc/app/app.conf ' /proc/mounts | cut -d' ' -f1,3,4 | cut -d, -f1
if echo x 2>&1 > /run/secrets/db_pass; then echo writable; fi
cat /etc/app/app.conf`
	id, err := m.Create(ctxT(t), CreateRequest{
		Config: ctypes.Config{Image: "busybox", Cmd: []string{"sh", "-c", script}},
		Files: []File{
			{Path: "/run/secrets/db_pass", Data: []byte(secret), UID: 100, GID: 101, Mode: 0o400},
			{Path: "/etc/app/app.conf", Data: []byte("port=8080\n"), UID: 0, GID: 0, Mode: 0o444},
		},
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := m.Start(ctxT(t), id); err != nil {
		t.Fatalf("Start: %v", err)
	}
	e := waitExit(t, m, id)
	out, _ := logText(t, m, id, LogOptions{})
	sum := fmt.Sprintf("%x", md5.Sum([]byte(secret))) // the container prints no secret to its log
	want := sum + "\n100:101:400\n0:0:444\ntmpfs tmpfs ro\ntmpfs tmpfs ro\n"
	if e.Code != 0 || !strings.Contains(out, want) || !strings.Contains(out, "Read-only file system\nport=8080\n") || strings.Contains(out, "writable") {
		t.Fatalf("exit %d, output:\n%s\nwant:\n%s", e.Code, out, want)
	}
	dir := filepath.Join(env.root, id)
	if filesMounted(dir) {
		t.Fatal("the files' tmpfs is still mounted after the container stopped")
	}
	// No byte of the secret in the container's directory on disk (its tmpfs aside),
	// nor in the runtime's state.
	for _, root := range []string{dir, env.state} {
		_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err != nil {
				return nil
			}
			if info.IsDir() && (p == filesDir(dir) || p == filepath.Join(dir, "rootfs")) {
				return filepath.SkipDir
			}
			if info.Mode().IsRegular() {
				if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(secret)) {
					t.Errorf("the secret is on disk in %s", p)
				}
			}
			return nil
		})
	}
	// A new start needs the files again.
	if err := m.Start(ctxT(t), id); err == nil || !strings.Contains(err.Error(), "secrets and configs are gone") {
		t.Fatalf("Start without the files: %v", err)
	}
	files := []File{
		{Path: "/run/secrets/db_pass", Data: []byte(secret), UID: 100, GID: 101, Mode: 0o400},
		{Path: "/etc/app/app.conf", Data: []byte("port=8080\n"), Mode: 0o444},
	}
	if err := m.RestoreFiles(ctxT(t), id, files[:1]); err == nil {
		t.Fatal("RestoreFiles took files for other paths")
	}
	if err := m.RestoreFiles(ctxT(t), id, files); err != nil {
		t.Fatal(err)
	}
	// A restarted runtime finds them where they were (live restore).
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = env.open()
	if err := m.Start(ctxT(t), id); err != nil {
		t.Fatalf("Start after the runtime restarted: %v", err)
	}
	if !filesMounted(dir) {
		t.Fatal("the files' tmpfs is not mounted while the container runs")
	}
	waitExit(t, m, id)
	if out, _ := logText(t, m, id, LogOptions{}); strings.Count(out, sum) != 2 {
		t.Fatalf("second run's output:\n%s", out)
	}
	if err := m.Remove(ctxT(t), id, true); err != nil {
		t.Fatal(err)
	}
	if filesMounted(dir) {
		t.Fatal("the files' tmpfs is still mounted after the container was removed")
	}
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(mounts, []byte(filesDir(dir))) {
		t.Fatal("the files' tmpfs is still in the mount table")
	}
}

// A file's path must be absolute; a bad one mounts nothing.
func TestFilesRefuseRelativePaths(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	_, err := m.Create(ctxT(t), CreateRequest{
		Config: ctypes.Config{Image: "busybox", Cmd: []string{"true"}},
		Files:  []File{{Path: "run/secrets/x", Data: []byte("x"), Mode: 0o444}},
	})
	if err == nil || !strings.Contains(err.Error(), "must be an absolute path") {
		t.Fatalf("Create: %v", err)
	}
	if entries, _ := os.ReadDir(env.root); len(entries) != 0 {
		t.Fatalf("a refused create left %d entries in the root", len(entries))
	}
}
