package engineapi

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

func TestContainerArchiveHTTP(t *testing.T) {
	ct, _, api := ctrFixture(t)
	resp, body := api.call(t, "HEAD", "/v1.51/containers/web.1.task1/archive?path=/etc/hostname", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD = %d %s", resp.StatusCode, body)
	}
	raw, err := base64.StdEncoding.DecodeString(resp.Header.Get("X-Docker-Container-Path-Stat"))
	if err != nil {
		t.Fatalf("stat header: %v", err)
	}
	var st container.PathStat
	if err := json.Unmarshal(raw, &st); err != nil || st.Name != "hostname" || st.Size != 9 {
		t.Fatalf("stat = %s (%v)", raw, err)
	}

	resp, body = api.call(t, "GET", "/v1.51/containers/web.1.task1/archive?path=/etc/hostname", nil, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-tar" {
		t.Fatalf("GET = %d %v", resp.StatusCode, resp.Header)
	}
	tr := tar.NewReader(bytes.NewReader(body))
	hdr, err := tr.Next()
	data, _ := io.ReadAll(tr)
	if err != nil || hdr.Name != "hostname" || string(data) != "web-host\n" {
		t.Fatalf("archive = %+v %q %v", hdr, data, err)
	}

	for _, tc := range []struct {
		method, path string
		status       int
		msg          string
	}{
		{"GET", "/containers/web.1.task1/archive?path=/nope", 404, "Could not find the file /nope in container web.1.task1"},
		{"GET", "/containers/web.1.task1/archive", 400, "bad parameter: 'path' cannot be empty"},
		{"GET", "/containers/web.1.task1/archive?path=%2Fetc%00x", 400, "bad parameter: 'path' cannot contain a NUL byte"},
		{"GET", "/containers/ghost/archive?path=/etc", 404, "No such container: ghost"},
		{"PUT", "/containers/web.1.task1/archive?path=/etc/hostname", 400, "extraction point is not a directory"},
	} {
		resp, body := api.call(t, tc.method, tc.path, strings.NewReader(""), nil)
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.msg) {
			t.Errorf("%s %s = %d %s, want %d %q", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.msg)
		}
	}

	// A PUT body is an archive of any size, not a bounded JSON body.
	big := strings.Repeat("x", 6<<20)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	_ = tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(big))})
	_, _ = io.WriteString(tw, big)
	_ = tw.Close()
	resp, body = api.call(t, "PUT", "/v1.51/containers/web.1.task1/archive?path=/tmp&noOverwriteDirNonDir=true", &b, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT = %d %s", resp.StatusCode, body)
	}
	if got, _ := ct.file("/tmp/big"); len(got) != len(big) {
		t.Fatalf("stored %d bytes, want %d", len(got), len(big))
	}
}

func TestDockerCp(t *testing.T) {
	ct, _, api := ctrFixture(t)
	out := api.mustDocker(t, "cp", "web.1.task1:/etc/hostname", "-")
	tr := tar.NewReader(strings.NewReader(out))
	hdr, err := tr.Next()
	data, _ := io.ReadAll(tr)
	if err != nil || hdr.Name != "hostname" || string(data) != "web-host\n" {
		t.Fatalf("docker cp ctr:/etc/hostname - = %+v %q %v", hdr, data, err)
	}

	dst := filepath.Join(t.TempDir(), "x")
	api.mustDocker(t, "cp", "web.1.task1:/etc", dst)
	for name, want := range map[string]string{"hostname": "web-host\n", "os-release": "ID=busybox\n"} {
		if b, err := os.ReadFile(filepath.Join(dst, name)); err != nil || string(b) != want {
			t.Fatalf("%s = %q, %v", name, b, err)
		}
	}

	src := filepath.Join(t.TempDir(), "note.txt")
	if err := os.WriteFile(src, []byte("copied in\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	api.mustDocker(t, "cp", src, "web.1.task1:/tmp/")
	if got, ok := ct.file("/tmp/note.txt"); !ok || got != "copied in\n" {
		t.Fatalf("/tmp/note.txt in the container = %q (%v)", got, ok)
	}

	_, errOut, err := api.docker(t, "", "cp", "web.1.task1:/nope", "-")
	if err == nil || !strings.Contains(errOut, "Could not find the file /nope in container web.1.task1") {
		t.Fatalf("docker cp of a missing path: %v %q", err, errOut)
	}
	_, errOut, err = api.docker(t, "", "cp", src, "web.1.task1:/nodir/sub/")
	if err == nil || !strings.Contains(errOut, "no such directory") { // the CLI's words after a 404 HEAD
		t.Fatalf("docker cp into a missing dir: %v %q", err, errOut)
	}
}
