package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
)

// servePeer serves h over TLS and returns the Peer to fetch from it.
func servePeer(t *testing.T, h http.Handler, http2 bool) (Peer, *httptest.Server) {
	t.Helper()
	srv := serveTLS(t, h, http2)
	return Peer{Addr: srv.Listener.Addr().String(), Transport: srv.Client().Transport}, srv
}

// requestLog records the requests a handler receives.
type requestLog struct {
	mu   sync.Mutex
	reqs []string // "METHOD path"
	auth bool     // a request carried an Authorization header
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.reqs = append(l.reqs, r.Method+" "+r.URL.Path)
		l.auth = l.auth || r.Header.Get("Authorization") != ""
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (l *requestLog) count(method, suffix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.reqs {
		if strings.HasPrefix(r, method+" ") && strings.HasSuffix(r, suffix) {
			n++
		}
	}
	return n
}

// treeOf describes every file of a directory tree: type, mode, owner, times,
// device, xattrs, and content or link target.
func treeOf(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if rel == "." {
			return nil // made by the unpack, not by an entry
		}
		// Times only of files and links: directories and whiteouts that no
		// entry describes get the time they were made.
		desc := fmt.Sprintf("mode %o uid %d gid %d rdev %d", st.Mode, st.Uid, st.Gid, st.Rdev)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			desc += fmt.Sprintf(" mtime %d", st.Mtim.Nano())
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			desc += " content " + hex.EncodeToString(sum[:])
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" -> %s mtime %d", target, st.Mtim.Nano())
		case unix.S_IFDIR:
			buf := make([]byte, 8)
			if n, err := unix.Lgetxattr(p, "trusted.overlay.opaque", buf); err == nil {
				desc += " opaque " + string(buf[:n])
			}
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkSameImage asserts that b stores the image a has, layer for layer.
func checkSameImage(t *testing.T, a, b *Store, want, got Image) {
	t.Helper()
	if got.ID != want.ID || !slices.Equal(got.DiffIDs, want.DiffIDs) {
		t.Fatalf("pulled %s %v, want %s %v", got.ID, got.DiffIDs, want.ID, want.DiffIDs)
	}
	for _, d := range want.DiffIDs {
		ta, tb := treeOf(t, a.layerDiffDir(d)), treeOf(t, b.layerDiffDir(d))
		for p, desc := range ta {
			if tb[p] != desc {
				t.Errorf("layer %s, %s: %q, want %q", shortID(d), p, tb[p], desc)
			}
		}
		if len(ta) != len(tb) {
			t.Errorf("layer %s: %d files, want %d", shortID(d), len(tb), len(ta))
		}
		// The pulling node recorded tar-split metadata too: it can serve in turn.
		h := sha256.New()
		if _, err := b.writeLayerTar(context.Background(), d, h); err != nil {
			t.Errorf("reassemble pulled layer %s: %v", shortID(d), err)
		} else if "sha256:"+hex.EncodeToString(h.Sum(nil)) != d {
			t.Errorf("pulled layer %s reassembles to another digest", shortID(d))
		}
	}
}

// checkNothingStored asserts a store holds no image and no trace of one.
func checkNothingStored(t *testing.T, s *Store) {
	t.Helper()
	if list, _ := s.List(context.Background()); len(list) != 0 {
		t.Errorf("%d images stored", len(list))
	}
	for _, dir := range []string{s.layersDir(), s.configsDir(), s.tmpDir()} {
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s holds %d entries", dir, len(entries))
		}
	}
}

func TestPullFromPeer(t *testing.T) {
	cases := []struct {
		name  string
		http2 bool
		opts  []imagetest.Option
	}{
		{"busybox, HTTP/1.1", false, nil},
		{"busybox, HTTP/2", true, nil},
		{"whiteouts and opaque dir", false, []imagetest.Option{whiteoutLayer}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			a, want := storeWith(t, "busybox:latest", tc.opts...)
			var log requestLog
			peer, _ := servePeer(t, log.wrap(a.PeerHandler()), tc.http2)

			b := openStore(t, Options{})
			if b.HasImage(ctx, "busybox") {
				t.Fatal("empty store has busybox")
			}
			if ok, err := PeerHas(ctx, "busybox", peer); !ok || err != nil {
				t.Fatalf("PeerHas = %v, %v", ok, err)
			}
			got, err := b.PullFromPeer(ctx, "busybox", peer)
			if err != nil {
				t.Fatalf("PullFromPeer: %v", err)
			}
			checkSameImage(t, a, b, want, got)
			if !slices.Equal(got.RepoTags, []string{"busybox:latest"}) || len(got.RepoDigests) != 0 {
				t.Errorf("RepoTags %v RepoDigests %v; want the reference pulled, no digest", got.RepoTags, got.RepoDigests)
			}
			if !b.HasImage(ctx, "docker.io/library/busybox:latest") {
				t.Error("HasImage false after the pull")
			}
			if log.auth {
				t.Error("a request carried credentials")
			}
			for _, d := range want.DiffIDs {
				if n := log.count("GET", "/blobs/"+d); n != 1 {
					t.Errorf("layer %s fetched %d times", shortID(d), n)
				}
			}

			// A third node fetches from the second.
			peerB, _ := servePeer(t, b.PeerHandler(), tc.http2)
			c := openStore(t, Options{})
			got, err = c.PullFromPeer(ctx, "busybox:latest", peerB)
			if err != nil {
				t.Fatalf("PullFromPeer from the node that pulled: %v", err)
			}
			checkSameImage(t, a, c, want, got)
		})
	}
}

// Layers the store has are not fetched again.
func TestPullFromPeerFetchesMissingLayersOnly(t *testing.T) {
	ctx := context.Background()
	a, want := storeWith(t, "app:1", whiteoutLayer)
	var log requestLog
	peer, _ := servePeer(t, log.wrap(a.PeerHandler()), false)
	b, base := storeWith(t, "busybox:latest") // the same first layer
	if base.DiffIDs[0] != want.DiffIDs[0] {
		t.Fatal("the images do not share their first layer")
	}
	got, err := b.PullFromPeer(ctx, "app:1", peer)
	if err != nil {
		t.Fatalf("PullFromPeer: %v", err)
	}
	checkSameImage(t, a, b, want, got)
	if n := log.count("GET", "/blobs/"+want.DiffIDs[0]); n != 0 {
		t.Errorf("shared layer fetched %d times", n)
	}
	if n := log.count("GET", "/blobs/"+want.DiffIDs[1]); n != 1 {
		t.Errorf("missing layer fetched %d times", n)
	}
	if _, err := b.PullFromPeer(ctx, "app:1", peer); err != nil {
		t.Fatalf("second PullFromPeer: %v", err)
	}
	if n := log.count("GET", "/blobs/"+want.DiffIDs[1]); n != 1 {
		t.Errorf("layer fetched again by a second pull: %d GETs", n)
	}
}

// A layer that changed on the serving node is not sent whole: the pull fails and
// leaves nothing in the pulling store, over HTTP/1.1 and HTTP/2.
func TestPullFromPeerTamperedLayer(t *testing.T) {
	for _, http2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%v", http2), func(t *testing.T) {
			a, img := storeWith(t, "app:1", imagetest.WithLayer(
				imagetest.File("d/f", strings.Repeat("x", 100<<10), 0o644),
				imagetest.Whiteout("etc/group"),
			))
			writeFile(t, filepath.Join(a.layerDiffDir(img.DiffIDs[1]), "d/f"), strings.Repeat("y", 100<<10))
			peer, _ := servePeer(t, a.PeerHandler(), http2)
			b := openStore(t, Options{})
			_, err := b.PullFromPeer(context.Background(), "app:1", peer)
			if err == nil {
				t.Fatal("PullFromPeer of a tampered layer succeeded")
			}
			t.Logf("PullFromPeer: %v", err)
			checkNothingStored(t, b)
		})
	}
}

// lyingPeer serves what h serves, changed by lie (which gets each response body by
// request path and returns the one to send).
func lyingPeer(h http.Handler, lie func(path string, body []byte) []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := lie(r.URL.Path, rec.Body.Bytes())
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(rec.Code)
		if r.Method == http.MethodGet {
			w.Write(body)
		}
	})
}

// The pulling node checks what it receives itself: a peer that sends wrong
// content with the right length fails the pull with a digest error.
func TestPullFromLyingPeer(t *testing.T) {
	a, img := storeWith(t, "app:1", imagetest.WithLayer(imagetest.File("d/f", strings.Repeat("x", 4096), 0o644)))
	layer, cfg := "/blobs/"+img.DiffIDs[1], "/blobs/"+img.ID
	cases := []struct {
		name string
		lie  func(path string, body []byte) []byte
		want string // in the error
	}{
		{"layer content", func(p string, b []byte) []byte {
			if strings.HasSuffix(p, layer) {
				b = bytes.Replace(b, []byte("xxxx"), []byte("xyxx"), 1)
			}
			return b
		}, "checksum"},
		{"config", func(p string, b []byte) []byte {
			if strings.HasSuffix(p, cfg) {
				b = bytes.Replace(b, []byte(`"sh"`), []byte(`"rm"`), 1)
			}
			return b
		}, "checksum"},
		{"layers swapped in the manifest", func(p string, b []byte) []byte {
			if strings.Contains(p, "/manifests/") {
				d0, d1 := []byte(img.DiffIDs[0]), []byte(img.DiffIDs[1])
				b = bytes.ReplaceAll(b, d0, []byte("TMP"))
				b = bytes.ReplaceAll(b, d1, d0)
				b = bytes.ReplaceAll(b, []byte("TMP"), d1)
			}
			return b
		}, "diff ID"},
		{"layer served for another", func(p string, b []byte) []byte {
			if strings.HasSuffix(p, layer) {
				var buf bytes.Buffer
				a.writeLayerTar(context.Background(), img.DiffIDs[0], &buf)
				return buf.Bytes()
			}
			return b
		}, "does not match expected size"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			peer, _ := servePeer(t, lyingPeer(a.PeerHandler(), tc.lie), false)
			b := openStore(t, Options{})
			_, err := b.PullFromPeer(context.Background(), "app:1", peer)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("PullFromPeer: %v; want an error about %q", err, tc.want)
			}
			t.Logf("PullFromPeer: %v", err)
			checkNothingStored(t, b)
		})
	}
}

func TestPullFromPeerMissingImage(t *testing.T) {
	ctx := context.Background()
	a, _ := storeWith(t, "busybox:latest")
	peer, _ := servePeer(t, a.PeerHandler(), false)
	b := openStore(t, Options{})
	for _, ref := range []string{"nope", "busybox:1.0", "ghcr.io/other/busybox:latest", "other@sha256:" + strings.Repeat("0", 64)} {
		if ok, err := PeerHas(ctx, ref, peer); ok || err != nil {
			t.Errorf("PeerHas(%s) = %v, %v", ref, ok, err)
		}
		if _, err := b.PullFromPeer(ctx, ref, peer); !hasClass(err, "notfound") {
			t.Errorf("PullFromPeer(%s): %v, want a NotFound error", ref, err)
		}
	}
	checkNothingStored(t, b)
}

// An image with a layer unpacked without tar-split metadata (by an earlier
// version) is not offered at all.
func TestImageWithoutMetadataIsNotOffered(t *testing.T) {
	ctx := context.Background()
	a, img := storeWith(t, "app:1", whiteoutLayer)
	if err := os.Remove(filepath.Join(a.layerDir(img.DiffIDs[1]), tarSplitFile)); err != nil {
		t.Fatal(err)
	}
	peer, _ := servePeer(t, a.PeerHandler(), false)
	b := openStore(t, Options{})
	if ok, err := PeerHas(ctx, "app:1", peer); ok || err != nil {
		t.Errorf("PeerHas = %v, %v", ok, err)
	}
	if _, err := b.PullFromPeer(ctx, "app:1", peer); !hasClass(err, "notfound") {
		t.Errorf("PullFromPeer: %v, want a NotFound error", err)
	}
	h := a.PeerHandler()
	for _, p := range []string{
		"/v2/docker.io/library/app/manifests/1",
		"/v2/docker.io/library/app/manifests/" + img.ID,
		"/v2/docker.io/library/app/blobs/" + img.ID,
		"/v2/docker.io/library/app/blobs/" + img.DiffIDs[1],
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `"errors":[{"code":"`) {
			t.Errorf("GET %s: %d %s", p, rec.Code, rec.Body)
		}
	}
	checkNothingStored(t, b)
}

// A reference pinned to a digest: the digest a registry pull recorded on the
// peer, or else the reference's name, as ImageConfig resolves it.
func TestPullFromPeerPinnedReference(t *testing.T) {
	ctx := context.Background()
	a, img := storeWith(t, "busybox:latest")
	registryDigest := "sha256:" + strings.Repeat("5", 64)
	a.mu.Lock()
	a.addRefLocked(a.images[img.ID], "docker.io/library/busybox@"+registryDigest, time.Now())
	a.mu.Unlock()
	peer, _ := servePeer(t, a.PeerHandler(), false)

	cases := []struct {
		ref         string
		tags, dgsts []string
	}{
		{"busybox@" + registryDigest, nil, []string{"busybox@" + registryDigest}},
		{"busybox:latest@" + registryDigest, nil, []string{"busybox@" + registryDigest}},
		{"busybox:latest@sha256:" + strings.Repeat("6", 64), []string{"busybox:latest"}, nil},
		{"busybox@" + img.ID, nil, []string{"busybox@" + img.ID}},
	}
	for _, tc := range cases {
		b := openStore(t, Options{})
		if ok, err := PeerHas(ctx, tc.ref, peer); !ok || err != nil {
			t.Errorf("PeerHas(%s) = %v, %v", tc.ref, ok, err)
		}
		got, err := b.PullFromPeer(ctx, tc.ref, peer)
		if err != nil {
			t.Errorf("PullFromPeer(%s): %v", tc.ref, err)
			continue
		}
		if got.ID != img.ID || !slices.Equal(got.RepoTags, tc.tags) || !slices.Equal(got.RepoDigests, tc.dgsts) {
			t.Errorf("PullFromPeer(%s) = %s tags %v digests %v; want %s %v %v", tc.ref, got.ID, got.RepoTags, got.RepoDigests, img.ID, tc.tags, tc.dgsts)
		}
		if !b.HasImage(ctx, tc.ref) {
			t.Errorf("HasImage(%s) false after its pull", tc.ref)
		}
	}
}

// Requests go to the peer only: a redirect or an authentication challenge that
// names another server fails the pull without reaching that server.
func TestPullFromPeerStaysOnThePeer(t *testing.T) {
	a, _ := storeWith(t, "busybox:latest")
	var elsewhere requestLog
	_, other := servePeer(t, elsewhere.wrap(a.PeerHandler()), false)
	cases := []struct {
		name    string
		handler http.Handler
	}{
		{"blob redirect", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/blobs/") {
				http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
				return
			}
			a.PeerHandler().ServeHTTP(w, r)
		})},
		{"manifest redirect", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/manifests/") {
				http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
				return
			}
			a.PeerHandler().ServeHTTP(w, r)
		})},
		{"bearer challenge", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			realm := strings.Replace(other.URL, "127.0.0.1", "localhost", 1) + "/token"
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`",service="peer"`)
			writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "token needed")
		})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var log requestLog
			peer, _ := servePeer(t, log.wrap(tc.handler), false)
			b := openStore(t, Options{})
			if _, err := b.PullFromPeer(context.Background(), "busybox", peer); err == nil {
				t.Fatal("PullFromPeer succeeded")
			} else {
				t.Logf("PullFromPeer: %v", err)
			}
			if n := len(elsewhere.reqs); n != 0 {
				t.Errorf("the other server got %d requests: %v", n, elsewhere.reqs)
			}
			if log.auth {
				t.Error("a request carried credentials")
			}
			checkNothingStored(t, b)
		})
	}
}
