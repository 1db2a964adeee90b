package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// docker cp copies files out of a task container and into it, as with dockerd.
func TestRuntimeCp(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "cp")
	n.MustDocker("service", "create", "-d", "--name", "files", "--stop-grace-period", "1s", "busybox", "sleep", "300")
	c := taskContainer(t, n, "files")
	mustExec(t, n, c, "mkdir -p /srv/site/css && printf '<h1>hi</h1>' > /srv/site/index.html && printf 'b{}' > /srv/site/css/a.css && chmod 600 /srv/site/css/a.css")

	// A file out, as a tar on stdout.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := dockerCmd(ctx, n, "cp", c+":/srv/site/index.html", "-").Output()
	if err != nil {
		t.Fatalf("docker cp file to stdout: %v", err)
	}
	tr := tar.NewReader(bytes.NewReader(out))
	hdr, err := tr.Next()
	data, _ := io.ReadAll(tr)
	if err != nil || hdr.Name != "index.html" || string(data) != "<h1>hi</h1>" {
		t.Fatalf("archive of index.html = %+v %q %v", hdr, data, err)
	}

	// A directory out, with its tree and modes.
	dst := filepath.Join(t.TempDir(), "site")
	n.MustDocker("cp", c+":/srv/site", dst)
	if b, err := os.ReadFile(filepath.Join(dst, "css", "a.css")); err != nil || string(b) != "b{}" {
		t.Fatalf("copied css/a.css = %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "css", "a.css")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode of css/a.css = %v, %v", fi, err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "index.html")); err != nil || string(b) != "<h1>hi</h1>" {
		t.Fatalf("copied index.html = %q, %v", b, err)
	}

	// A directory's contents ("/.") into an existing directory, and a symlink followed (-L).
	mustExec(t, n, c, "ln -s /srv/site/index.html /srv/link")
	into := t.TempDir()
	n.MustDocker("cp", c+":/srv/site/.", into)
	if b, err := os.ReadFile(filepath.Join(into, "css", "a.css")); err != nil || string(b) != "b{}" {
		t.Fatalf("contents copy css/a.css = %q, %v", b, err)
	}
	link := filepath.Join(t.TempDir(), "followed")
	n.MustDocker("cp", "-L", c+":/srv/link", link)
	if b, err := os.ReadFile(link); err != nil || string(b) != "<h1>hi</h1>" {
		t.Fatalf("docker cp -L = %q, %v", b, err)
	}

	// A file in, read back by the container.
	src := filepath.Join(t.TempDir(), "motd")
	if err := os.WriteFile(src, []byte("copied in\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	n.MustDocker("cp", src, c+":/tmp/")
	if got := mustExec(t, n, c, "cat /tmp/motd; stat -c %a /tmp/motd"); got != "copied in\n640" {
		t.Fatalf("motd in the container = %q", got)
	}

	// A missing path reads as with dockerd.
	got, err := n.Docker("cp", c+":/no/such/file", "-")
	if err == nil || !strings.Contains(got, "Could not find the file /no/such/file in container "+c) {
		t.Fatalf("docker cp of a missing path: %v %q", err, got)
	}
}
