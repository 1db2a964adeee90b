package container

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// tarEntry is one member of an archive read back by readArchive.
type tarEntry struct {
	hdr  *tar.Header
	data string
}

// readArchive reads a whole archive and closes it; names in order.
func readArchive(t *testing.T, rc io.ReadCloser) ([]string, map[string]tarEntry) {
	t.Helper()
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	out := map[string]tarEntry{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names, out
		}
		if err != nil {
			t.Fatalf("read archive: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("read %s: %v", hdr.Name, err)
		}
		names = append(names, hdr.Name)
		out[hdr.Name] = tarEntry{hdr: hdr, data: string(data)}
	}
}

// archiveOf builds an archive of hdrs; a regular file's content is its Linkname.
func archiveOf(t *testing.T, hdrs ...tar.Header) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range hdrs {
		var data string
		if h.Typeflag == tar.TypeReg {
			data, h.Linkname, h.Size = h.Linkname, "", int64(len(h.Linkname))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &b
}

func mustExec(t *testing.T, m *Manager, id string, cmd ...string) string {
	t.Helper()
	var out bytes.Buffer
	code, err := m.Exec(ctxT(t), id, ExecConfig{Cmd: cmd}, nil, &out, &out)
	if err != nil || code != 0 {
		t.Fatalf("exec %q = %d %v: %s", cmd, code, err, out.String())
	}
	return out.String()
}

// archiveFixture runs a container with a named volume at /vol and a tree under
// /data: a 0640 file, a symlink to it, a hard link and a nested directory.
func archiveFixture(t *testing.T) (*Manager, string, string) {
	t.Helper()
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	id := run(t, m, CreateRequest{Name: "cp-" + newID()[:6], Config: ctypes.Config{
		Hostname: "cphost", Cmd: []string{"sleep", "1000"},
	}, HostConfig: ctypes.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "cpvol", Target: "/vol"}}}})
	mustExec(t, m, id, "sh", "-c", `mkdir -p /data/sub && printf hello > /data/sub/f && chmod 640 /data/sub/f &&
		chown 1000:1000 /data/sub/f && ln -s sub/f /data/link && ln /data/sub/f /data/hard && printf vol > /vol/v`)
	return m, id, env.root
}

func TestArchiveFromRunningContainer(t *testing.T) {
	m, id, _ := archiveFixture(t)
	rc, st, err := m.ArchivePath(ctxT(t), id, "/data")
	if err != nil {
		t.Fatalf("ArchivePath: %v", err)
	}
	if st.Name != "data" || !st.Mode.IsDir() {
		t.Fatalf("stat = %+v", st)
	}
	names, entries := readArchive(t, rc)
	if got := strings.Join(names, " "); got != "data/ data/hard data/link data/sub/ data/sub/f" {
		t.Fatalf("names = %s", got)
	}
	// data/hard comes first in name order: it carries the bytes, the other name links to it.
	f := entries["data/hard"]
	if f.data != "hello" || f.hdr.Mode != 0o640 || f.hdr.Uid != 1000 || f.hdr.Typeflag != tar.TypeReg {
		t.Fatalf("data/hard = %+v %q", f.hdr, f.data)
	}
	if h := entries["data/sub/f"].hdr; h.Typeflag != tar.TypeLink || h.Linkname != "data/hard" {
		t.Fatalf("data/sub/f = %+v", h)
	}
	if l := entries["data/link"].hdr; l.Typeflag != tar.TypeSymlink || l.Linkname != "sub/f" {
		t.Fatalf("data/link = %+v", l)
	}

	// The host files and volumes are reached as the container sees them.
	rc, _, err = m.ArchivePath(ctxT(t), id, "/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	if _, e := readArchive(t, rc); e["hostname"].data != "cphost\n" {
		t.Fatalf("/etc/hostname = %q", e["hostname"].data)
	}
	rc, _, err = m.ArchivePath(ctxT(t), id, "/vol/.")
	if err != nil {
		t.Fatal(err)
	}
	if names, e := readArchive(t, rc); strings.Join(names, " ") != "./ ./v" || e["./v"].data != "vol" {
		t.Fatalf("/vol/. = %v", names)
	}

	st, err = m.StatPath(ctxT(t), id, "/data/link")
	if err != nil || st.Mode&os.ModeSymlink == 0 || st.LinkTarget != "/data/sub/f" || st.Name != "link" {
		t.Fatalf("stat link = %+v, %v", st, err)
	}
	st, err = m.StatPath(ctxT(t), id, "/data/sub/f")
	if err != nil || st.Size != 5 || st.Mode != 0o640 {
		t.Fatalf("stat file = %+v, %v", st, err)
	}
	_, err = m.StatPath(ctxT(t), id, "/nope")
	if !isErrType[notFoundError](err) || !strings.Contains(err.Error(), "Could not find the file /nope in container "+id) {
		t.Fatalf("stat missing = %v", err)
	}
}

func TestArchiveFromStoppedContainer(t *testing.T) {
	m, id, root := archiveFixture(t)
	if err := m.Stop(ctxT(t), id, nil); err != nil {
		t.Fatal(err)
	}
	rc, _, err := m.ArchivePath(ctxT(t), id, "/data/sub/f")
	if err != nil {
		t.Fatalf("ArchivePath of a stopped container: %v", err)
	}
	if _, e := readArchive(t, rc); e["f"].data != "hello" {
		t.Fatalf("f = %+v", e)
	}
	for p, want := range map[string]string{"/etc/hostname": "cphost\n", "/vol/v": "vol"} {
		rc, _, err := m.ArchivePath(ctxT(t), id, p)
		if err != nil {
			t.Fatalf("ArchivePath %s: %v", p, err)
		}
		if _, e := readArchive(t, rc); e[filepath.Base(p)].data != want {
			t.Fatalf("%s = %q", p, e[filepath.Base(p)].data)
		}
	}
	// A file put into the stopped container is there when it runs again.
	if err := m.ExtractToDir(ctxT(t), id, "/data", archiveOf(t, tar.Header{Name: "put", Typeflag: tar.TypeReg, Linkname: "offline"}), ExtractOptions{}); err != nil {
		t.Fatalf("ExtractToDir of a stopped container: %v", err)
	}
	if mounted(t, filepath.Join(root, id, "rootfs")) {
		t.Fatalf("rootfs still mounted after the copy")
	}
	if err := m.Start(ctxT(t), id); err != nil {
		t.Fatalf("start after the copy: %v", err)
	}
	if out := mustExec(t, m, id, "cat", "/data/put"); out != "offline" {
		t.Fatalf("put while stopped = %q", out)
	}
}

func mounted(t *testing.T, dir string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(data), " "+dir+" ")
}

func TestExtractIntoRunningContainer(t *testing.T) {
	m, id, _ := archiveFixture(t)
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	content := archiveOf(t,
		tar.Header{Name: "new/", Typeflag: tar.TypeDir, Mode: 0o750, ModTime: mtime},
		tar.Header{Name: "new/a", Typeflag: tar.TypeReg, Linkname: "alpha", Mode: 0o604, Uid: 1000, Gid: 1000, ModTime: mtime},
		tar.Header{Name: "new/l", Typeflag: tar.TypeSymlink, Linkname: "a"},
		tar.Header{Name: "new/h", Typeflag: tar.TypeLink, Linkname: "new/a"},
	)
	if err := m.ExtractToDir(ctxT(t), id, "/tmp", content, ExtractOptions{}); err != nil {
		t.Fatalf("ExtractToDir: %v", err)
	}
	out := mustExec(t, m, id, "sh", "-c", `cat /tmp/new/l; echo; stat -c '%a %u:%g %Y %h' /tmp/new/a /tmp/new; readlink /tmp/new/l`)
	want := "alpha\n604 1000:1000 1577934245 2\n750 0:0 1577934245 2\na\n"
	if out != want {
		t.Fatalf("extracted:\n%s\nwant:\n%s", out, want)
	}
	// -a gives the container's user (app, 1000) to every entry.
	id2 := id
	err := m.ExtractToDir(ctxT(t), id2, "/tmp/", archiveOf(t, tar.Header{Name: "mine", Typeflag: tar.TypeReg, Linkname: "x"}), ExtractOptions{CopyUIDGID: true})
	if err != nil {
		t.Fatal(err)
	}
	if out := mustExec(t, m, id, "stat", "-c", "%u", "/tmp/mine"); out != "0\n" {
		t.Fatalf("owner with -a and no Config.User = %q", out)
	}
	// Replacing a directory by a file is refused with noOverwriteDirNonDir.
	err = m.ExtractToDir(ctxT(t), id, "/tmp", archiveOf(t, tar.Header{Name: "new", Typeflag: tar.TypeReg, Linkname: "x"}), ExtractOptions{NoOverwriteDirNonDir: true})
	if !isErrType[invalidError](err) {
		t.Fatalf("dir replaced by file: %v", err)
	}
	err = m.ExtractToDir(ctxT(t), id, "/data/sub/f", archiveOf(t, tar.Header{Name: "x", Typeflag: tar.TypeReg}), ExtractOptions{})
	if !isErrType[invalidError](err) || !strings.Contains(err.Error(), "extraction point is not a directory") {
		t.Fatalf("extract to a file: %v", err)
	}
	err = m.ExtractToDir(ctxT(t), id, "/missing", archiveOf(t, tar.Header{Name: "x", Typeflag: tar.TypeReg}), ExtractOptions{})
	if !isErrType[notFoundError](err) {
		t.Fatalf("extract to a missing dir: %v", err)
	}
}

func TestExtractReadonlyRootfs(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	id := run(t, m, CreateRequest{Config: ctypes.Config{Cmd: []string{"sleep", "1000"}},
		HostConfig: ctypes.HostConfig{ReadonlyRootfs: true, Binds: []string{t.TempDir() + ":/rw", t.TempDir() + ":/ro:ro"}}})
	put := func(dir string) error {
		return m.ExtractToDir(ctxT(t), id, dir, archiveOf(t, tar.Header{Name: "f", Typeflag: tar.TypeReg, Linkname: "x"}), ExtractOptions{})
	}
	if err := put("/tmp"); !isErrType[invalidError](err) || err.Error() != "container rootfs is marked read-only" {
		t.Fatalf("put into a read-only rootfs: %v", err)
	}
	if err := put("/ro"); !isErrType[invalidError](err) || err.Error() != "mounted volume is marked read-only" {
		t.Fatalf("put into a read-only bind: %v", err)
	}
	if err := put("/rw"); err != nil {
		t.Fatalf("put into a writable bind: %v", err)
	}
	if out := mustExec(t, m, id, "cat", "/rw/f"); out != "x" {
		t.Fatalf("/rw/f = %q", out)
	}
}

// TestArchiveEscapes tries to reach a host directory from the container: by
// "..", by symlinks the container made, and by archive entries. The host
// directory must stay untouched and unread.
func TestArchiveEscapes(t *testing.T) {
	m, id, root := archiveFixture(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "secret"), []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustExec(t, m, id, "sh", "-c", "ln -s / /rootlink && ln -s ../../../../../../../.. /up && ln -s "+host+" /hostlink")
	for _, p := range []string{
		"../../../../../../../.." + host + "/secret",
		"/rootlink" + host + "/secret",
		"/up" + host + "/secret",
		"/hostlink/secret",
	} {
		rc, _, err := m.ArchivePath(ctxT(t), id, p)
		if err == nil {
			_, e := readArchive(t, rc)
			t.Fatalf("ArchivePath %s reached %v", p, e)
		}
		if !isErrType[notFoundError](err) {
			t.Fatalf("ArchivePath %s: %v, want not found", p, err)
		}
	}
	// The directory link itself resolves inside the container.
	if st, err := m.StatPath(ctxT(t), id, "/up"); err != nil || st.LinkTarget != "/" {
		t.Fatalf("stat /up = %+v, %v", st, err)
	}

	escapes := []*bytes.Buffer{
		archiveOf(t, tar.Header{Name: "../../../../../../../.." + host + "/pwned", Typeflag: tar.TypeReg, Linkname: "x"}),
		archiveOf(t, tar.Header{Name: "../../x", Typeflag: tar.TypeReg, Linkname: "x"}),
		archiveOf(t, tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "../../../../../../.." + host + "/secret"}),
	}
	for i, content := range escapes {
		if err := m.ExtractToDir(ctxT(t), id, "/tmp", content, ExtractOptions{}); !isErrType[invalidError](err) {
			t.Fatalf("escape %d: %v, want refused", i, err)
		}
	}
	// A symlink entry, then entries through it: they land inside the container
	// (where the host directory's path exists too, so that they have a place).
	mustExec(t, m, id, "mkdir", "-p", host)
	through := archiveOf(t,
		tar.Header{Name: "abs", Typeflag: tar.TypeSymlink, Linkname: host},
		tar.Header{Name: "abs/pwned", Typeflag: tar.TypeReg, Linkname: "in container"},
		tar.Header{Name: "rel", Typeflag: tar.TypeSymlink, Linkname: "../../../../../../../../.." + host},
		tar.Header{Name: "rel/pwned2", Typeflag: tar.TypeReg, Linkname: "in container too"},
	)
	if err := m.ExtractToDir(ctxT(t), id, "/tmp", through, ExtractOptions{}); err != nil {
		t.Fatalf("extract through links: %v", err)
	}
	entries, err := os.ReadDir(host)
	if err != nil || len(entries) != 1 {
		t.Fatalf("host dir now holds %v (%v)", entries, err)
	}
	if b, _ := os.ReadFile(filepath.Join(host, "secret")); string(b) != "host secret" {
		t.Fatalf("host secret changed: %q", b)
	}
	if out := mustExec(t, m, id, "cat", host+"/pwned", host+"/pwned2"); out != "in containerin container too" {
		t.Fatalf("files through links in the container = %q", out)
	}
	if _, err := os.Stat(filepath.Join(root, id, "x")); err == nil {
		t.Fatalf("../../x landed in the container's directory")
	}
}
