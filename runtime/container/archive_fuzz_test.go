package container

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fuzzTar builds a tar stream of hdrs, each with its body.
func fuzzTar(t testing.TB, entries ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		body := []byte(h.Linkname) // regular files carry their link name as content
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
			h.Linkname = ""
		}
		h.ModTime = time.Unix(1, 0)
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzExtract feeds arbitrary `docker cp` tar streams to the extractor: it
// refuses them or writes inside the container's root, and nothing outside it
// changes, whatever the names, links and types say.
func FuzzExtract(f *testing.F) {
	reg, dir, sym, hard := byte(tar.TypeReg), byte(tar.TypeDir), byte(tar.TypeSymlink), byte(tar.TypeLink)
	for _, seed := range [][]tar.Header{
		{{Name: "a/", Typeflag: dir, Mode: 0o755}, {Name: "a/f", Typeflag: reg, Mode: 0o644, Linkname: "hello"}},
		{{Name: "../escape", Typeflag: reg, Mode: 0o644, Linkname: "x"}},
		{{Name: "/abs/f", Typeflag: reg, Mode: 0o600, Linkname: "x"}},
		{{Name: "l", Typeflag: sym, Linkname: "../../outside"}, {Name: "l/f", Typeflag: reg, Linkname: "through the link"}},
		{{Name: "l", Typeflag: sym, Linkname: "/"}, {Name: "l/../../f", Typeflag: reg, Linkname: "x"}},
		{{Name: "h", Typeflag: hard, Linkname: "../outside/sentinel"}},
		{{Name: "d", Typeflag: dir, Mode: 0o7777}, {Name: "d", Typeflag: reg, Linkname: "file over dir"}},
	} {
		f.Add(fuzzTar(f, seed...))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		base := t.TempDir()
		root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
		for _, d := range []string{root, outside} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		sentinel := filepath.Join(outside, "sentinel")
		if err := os.WriteFile(sentinel, []byte("untouched"), 0o644); err != nil {
			t.Fatal(err)
		}
		h, err := os.Open(root)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		x := &extractor{root: h, dest: "/", uid: -1, gid: -1}
		_ = x.run(context.Background(), tar.NewReader(bytes.NewReader(stream)))

		top, _ := os.ReadDir(base)
		out, _ := os.ReadDir(outside)
		data, _ := os.ReadFile(sentinel)
		var st unix.Stat_t
		_ = unix.Stat(sentinel, &st)
		if len(top) != 2 || len(out) != 1 || string(data) != "untouched" || st.Nlink != 1 {
			t.Fatalf("the stream changed what is outside the root: %d entries beside it, %d in outside, sentinel %q with %d links",
				len(top), len(out), data, st.Nlink)
		}
	})
}
