package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"
)

// tarOf builds a tar of name/content pairs.
func tarOf(t testing.TB, files ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		hdr := &tar.Header{Name: files[i], Mode: 0o644, Size: int64(len(files[i+1])), Typeflag: tar.TypeReg, ModTime: time.Unix(1, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// smallArchive is a `docker save` archive of a one-file image, small enough
// for the fuzzer to mutate.
func smallArchive(t testing.TB, tag string) []byte {
	t.Helper()
	layer := tarOf(t, "hello", "hi\n")
	sum := sha256.Sum256(layer)
	diffID := hex.EncodeToString(sum[:])
	config := fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{"Cmd":["/hello"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}`, diffID)
	csum := sha256.Sum256([]byte(config))
	cfgName := hex.EncodeToString(csum[:]) + ".json"
	manifest := fmt.Sprintf(`[{"Config":%q,"RepoTags":[%q],"Layers":["%s/layer.tar"]}]`, cfgName, tag, diffID)
	return tarOf(t, "manifest.json", manifest, cfgName, config, diffID+"/layer.tar", string(layer))
}

// FuzzLoad feeds arbitrary `docker load` archives to the image store: each is
// loaded or refused, never a panic, and the store opens again afterwards.
func FuzzLoad(f *testing.F) {
	f.Add(smallArchive(f, "fuzz:1"))
	f.Add(tarOf(f, "manifest.json", `[{"Config":"../../etc/passwd","Layers":["../x"]}]`))
	f.Add(tarOf(f, "manifest.json", `[{"Config":"c.json","RepoTags":["UPPER::bad@@"],"Layers":[]}]`, "c.json", `{"rootfs":{"diff_ids":[]}}`))
	f.Add(tarOf(f, "oci-layout", `{"imageLayoutVersion":"1.0.0"}`, "index.json", `{"schemaVersion":2,"manifests":[{"digest":"sha256:00","size":-1}]}`))
	f.Add([]byte("not a tar"))
	s := openStore(f, Options{})
	f.Fuzz(func(t *testing.T, archive []byte) {
		names, err := s.Load(context.Background(), bytes.NewReader(archive))
		if err == nil && len(names) == 0 {
			t.Fatalf("an archive loaded without an image")
		}
	})
	// What the loads left must open again.
	s.Close()
	again, err := Open(context.Background(), Options{Root: s.root})
	if err != nil {
		f.Fatalf("the store does not open after the loads: %v", err)
	}
	again.Close()
}

// The fuzzer's first seed is a real image, so mutations start from one that loads.
func TestSmallArchiveLoads(t *testing.T) {
	s := openStore(t, Options{})
	names, err := s.Load(context.Background(), bytes.NewReader(smallArchive(t, "fuzz:1")))
	if err != nil || len(names) != 1 || names[0] != "fuzz:1" {
		t.Fatalf("Load = %v, %v", names, err)
	}
}
