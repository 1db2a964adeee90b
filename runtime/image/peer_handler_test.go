package image

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vbatts/tar-split/tar/storage"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
)

// serveTLS serves h over TLS, as a node's control port would.
func serveTLS(t *testing.T, h http.Handler, http2 bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = http2
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// storeWith opens a store and loads the busybox archive imagetest builds from
// opts, tagged tag.
func storeWith(t *testing.T, tag string, opts ...imagetest.Option) (*Store, Image) {
	t.Helper()
	s := openStore(t, Options{})
	loadFile(t, s, imagetest.BusyboxArchive(t, t.TempDir(), tag, opts...))
	img, err := s.Get(context.Background(), tag)
	if err != nil {
		t.Fatal(err)
	}
	return s, img
}

// The serving node checks the digest of what it rebuilt before the end of the
// response: with metadata changed so that tar-split's own checks pass (a byte of
// the end-of-archive padding), the body still ends short of its length.
func TestServedLayerIsCheckedToTheEnd(t *testing.T) {
	for _, http2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%v", http2), func(t *testing.T) {
			a, img := storeWith(t, "app:1")
			d := img.DiffIDs[0]
			size, _, _ := a.layerTarSize(d)
			alterLastSegment(t, filepath.Join(a.layerDir(d), tarSplitFile))

			srv := serveTLS(t, a.PeerHandler(), http2)
			resp, err := srv.Client().Get(srv.URL + "/v2/docker.io/library/app/blobs/" + d)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			n, err := io.Copy(io.Discard, resp.Body)
			if err == nil || n >= size || resp.ContentLength != size {
				t.Fatalf("read %d bytes of %d (Content-Length %d), error %v; want a failed read short of the end",
					n, size, resp.ContentLength, err)
			}
			t.Logf("read %d bytes of %d: %v", n, size, err)
		})
	}
}

// alterLastSegment changes the last byte of the last raw segment a tar-split
// metadata file records.
func alterLastSegment(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var entries []storage.Entry
	up := storage.NewJSONUnpacker(zr)
	for {
		e, err := up.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, *e)
	}
	f.Close()
	last := -1
	for i, e := range entries {
		if e.Type == storage.SegmentType && len(e.Payload) > 0 {
			last = i
		}
	}
	entries[last].Payload[len(entries[last].Payload)-1] ^= 1
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	p := storage.NewJSONPacker(zw)
	for _, e := range entries {
		if _, err := p.AddEntry(e); err != nil {
			t.Fatal(err)
		}
	}
	zw.Close()
	writeFile(t, path, buf.String())
}

func TestPeerHandler(t *testing.T) {
	a, img := storeWith(t, "localhost:5000/team/app:1.0", whiteoutLayer)
	h := a.PeerHandler()
	get := func(method, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec
	}
	manifest := get(http.MethodGet, "/v2/localhost_5000/team/app/manifests/1.0")
	if manifest.Code != http.StatusOK {
		t.Fatalf("GET manifest: %d %s", manifest.Code, manifest.Body)
	}
	sum := sha256.Sum256(manifest.Body.Bytes())
	manifestDigest := "sha256:" + hex.EncodeToString(sum[:])
	var layerTar bytes.Buffer
	if _, err := a.writeLayerTar(context.Background(), img.DiffIDs[1], &layerTar); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(a.configPath(img.ID))
	if err != nil {
		t.Fatal(err)
	}
	const repo = "/v2/localhost_5000/team/app"
	cases := []struct {
		method, path string
		status       int
		typ          string // Content-Type
		digest       string // Docker-Content-Digest
		body         []byte // nil: not checked
		code         string // registry error code
	}{
		{method: "GET", path: "/v2/", status: 200, body: []byte("{}")},
		{method: "HEAD", path: repo + "/manifests/1.0", status: 200, typ: "application/vnd.docker.distribution.manifest.v2+json", digest: manifestDigest},
		{method: "GET", path: repo + "/manifests/" + img.ID, status: 200, digest: manifestDigest, body: manifest.Body.Bytes()},
		{method: "GET", path: repo + "/manifests/" + manifestDigest, status: 200, digest: manifestDigest, body: manifest.Body.Bytes()},
		{method: "GET", path: "/v2/docker.io/library/other/manifests/" + img.ID, status: 200, digest: manifestDigest},
		{method: "GET", path: "/v2/docker.io/library/other/manifests/" + manifestDigest, status: 404, code: "MANIFEST_UNKNOWN"},
		{method: "GET", path: repo + "/manifests/2.0", status: 404, code: "MANIFEST_UNKNOWN"},
		{method: "GET", path: repo + "/blobs/" + img.ID, status: 200, typ: "application/octet-stream", digest: img.ID, body: raw},
		{method: "GET", path: repo + "/blobs/" + img.DiffIDs[1], status: 200, digest: img.DiffIDs[1], body: layerTar.Bytes()},
		{method: "HEAD", path: repo + "/blobs/" + img.DiffIDs[1], status: 200, digest: img.DiffIDs[1]},
		{method: "GET", path: repo + "/blobs/" + manifestDigest, status: 404, code: "BLOB_UNKNOWN"},
		{method: "GET", path: repo + "/blobs/sha256:" + strings.Repeat("0", 64), status: 404, code: "BLOB_UNKNOWN"},
		{method: "PUT", path: repo + "/manifests/1.0", status: 405, code: "UNSUPPORTED"},
		{method: "DELETE", path: repo + "/blobs/" + img.ID, status: 405, code: "UNSUPPORTED"},
		{method: "GET", path: "/v2/localhost:5000/team/app/manifests/1.0", status: 400, code: "NAME_INVALID"},
		{method: "GET", path: repo + "/manifests/..", status: 400, code: "TAG_INVALID"},
		{method: "GET", path: repo + "/blobs/sha256:zz", status: 400, code: "DIGEST_INVALID"},
		{method: "GET", path: repo + "/tags/list", status: 404, code: "UNSUPPORTED"},
		{method: "GET", path: "/v2/" + strings.Repeat("x", 5000), status: 400, code: "NAME_INVALID"},
	}
	for _, tc := range cases {
		rec := get(tc.method, tc.path)
		name := tc.method + " " + tc.path
		if len(name) > 100 {
			name = name[:100] + "…"
		}
		if rec.Code != tc.status {
			t.Errorf("%s: %d %s, want %d", name, rec.Code, rec.Body, tc.status)
			continue
		}
		if rec.Header().Get("Docker-Distribution-API-Version") != "registry/2.0" {
			t.Errorf("%s: no API version header", name)
		}
		if tc.typ != "" && rec.Header().Get("Content-Type") != tc.typ {
			t.Errorf("%s: Content-Type %q, want %q", name, rec.Header().Get("Content-Type"), tc.typ)
		}
		if tc.digest != "" && rec.Header().Get("Docker-Content-Digest") != tc.digest {
			t.Errorf("%s: Docker-Content-Digest %q, want %q", name, rec.Header().Get("Docker-Content-Digest"), tc.digest)
		}
		if tc.body != nil && !bytes.Equal(rec.Body.Bytes(), tc.body) {
			t.Errorf("%s: body of %d bytes differs from the %d expected", name, rec.Body.Len(), len(tc.body))
		}
		if tc.method == "HEAD" && rec.Body.Len() != 0 {
			t.Errorf("%s: a body of %d bytes", name, rec.Body.Len())
		}
		if tc.code != "" && !strings.Contains(rec.Body.String(), `"code":"`+tc.code+`"`) {
			t.Errorf("%s: body %s, want error code %s", name, rec.Body, tc.code)
		}
	}
	if got := get("HEAD", repo+"/blobs/"+img.DiffIDs[1]).Header().Get("Content-Length"); got != fmt.Sprint(layerTar.Len()) {
		t.Errorf("HEAD layer: Content-Length %s, want %d", got, layerTar.Len())
	}
	var m struct {
		MediaType string
		Config    struct{ MediaType, Digest string }
		Layers    []struct {
			MediaType, Digest string
			Size              int64
		}
	}
	if err := json.Unmarshal(manifest.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m.Config.Digest != img.ID || len(m.Layers) != 2 || m.Layers[1].Digest != img.DiffIDs[1] ||
		m.Layers[1].MediaType != "application/vnd.docker.image.rootfs.diff.tar" || m.Layers[1].Size != int64(layerTar.Len()) {
		t.Errorf("manifest %s", manifest.Body)
	}
}

// BenchmarkServeLayer measures serving a 64 MiB layer: the SHA-256 pass the
// check adds alone, the reassembly with its check, and a whole GET over TLS.
func BenchmarkServeLayer(b *testing.B) {
	ctx := context.Background()
	big := make([]byte, 64<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>11)
	}
	s := openStore(b, Options{})
	loadFile(b, s, imagetest.BusyboxArchive(b, b.TempDir(), "big:1", imagetest.WithLayer(
		imagetest.File("data/big", string(big), 0o644),
		imagetest.File("data/small", "small", 0o644),
	)))
	img, err := s.Get(ctx, "big:1")
	if err != nil {
		b.Fatal(err)
	}
	d := img.DiffIDs[1]
	size, _, _ := s.layerTarSize(d)

	b.Run("sha256 only", func(b *testing.B) {
		b.SetBytes(int64(len(big)))
		h := sha256.New()
		for b.Loop() {
			h.Reset()
			h.Write(big)
		}
	})
	b.Run("reassemble", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := s.writeLayerTar(ctx, d, io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("https GET", func(b *testing.B) {
		srv := httptest.NewTLSServer(s.PeerHandler())
		defer srv.Close()
		client := srv.Client()
		b.SetBytes(size)
		for b.Loop() {
			resp, err := client.Get(srv.URL + "/v2/docker.io/library/big/blobs/" + d)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || n != size {
				b.Fatalf("read %d of %d bytes: %v", n, size, err)
			}
		}
	})
}
