package image

import (
	"strings"
	"testing"

	"github.com/distribution/reference"
)

// peerPath is the path a request is asked with; the inverse of parsePeerPath.
func peerPath(t testing.TB, req peerRequest) string {
	t.Helper()
	if req.kind == peerPing {
		return "/v2/"
	}
	repo, err := peerRepository(req.repo)
	if err != nil {
		t.Fatalf("peerRepository(%s): %v", req.repo, err)
	}
	ref := req.tag
	if req.digest != "" {
		ref = req.digest.String()
	}
	kind := "manifests"
	if req.kind == peerBlob {
		kind = "blobs"
	}
	return "/v2/" + repo + "/" + kind + "/" + ref
}

func TestParsePeerPath(t *testing.T) {
	dgst := "sha256:" + strings.Repeat("ab", 32)
	cases := []struct {
		path   string
		kind   peerRequestKind
		repo   string // the reference's name; "" for refused paths
		tag    string
		digest string
		status int // of a refused path
	}{
		{path: "/v2/", kind: peerPing},
		{path: "/v2", kind: peerPing},
		{path: "/v2/docker.io/library/busybox/manifests/latest", kind: peerManifest, repo: "docker.io/library/busybox", tag: "latest"},
		{path: "/v2/docker.io/library/busybox/manifests/" + dgst, kind: peerManifest, repo: "docker.io/library/busybox", digest: dgst},
		{path: "/v2/docker.io/library/busybox/blobs/" + dgst, kind: peerBlob, repo: "docker.io/library/busybox", digest: dgst},
		{path: "/v2/localhost_5000/team/app/manifests/v1.2_rc-3", kind: peerManifest, repo: "localhost:5000/team/app", tag: "v1.2_rc-3"},
		{path: "/v2/registry.example.com/a/manifests/manifests/x", kind: peerManifest, repo: "registry.example.com/a/manifests", tag: "x"},
		{path: "/v2/ghcr.io/o/blobs/blobs/" + dgst, kind: peerBlob, repo: "ghcr.io/o/blobs", digest: dgst},

		{path: "/v2/busybox/manifests/latest", status: 400},                     // not fully qualified
		{path: "/v2/library/busybox/manifests/latest", status: 400},             // no domain
		{path: "/v2/docker.io/busybox/manifests/latest", status: 400},           // not normalized
		{path: "/v2/docker.io/library/Busybox/manifests/latest", status: 400},   // upper case
		{path: "/v2/docker.io/library/busybox:1/manifests/latest", status: 400}, // a tag in the name
		{path: "/v2/localhost:5000/app/manifests/latest", status: 400},          // port spelt raw
		{path: "/v2/local_host_5000/app/manifests/latest", status: 400},         // two "_"
		{path: "/v2/docker.io/library/busybox/manifests/-bad", status: 400},     // tag grammar
		{path: "/v2/docker.io/library/busybox/manifests/" + strings.Repeat("t", 129), status: 400},
		{path: "/v2/docker.io/library/busybox/manifests/sha256:abc", status: 400}, // short digest
		{path: "/v2/docker.io/library/busybox/manifests/", status: 400},           // empty tag
		{path: "/v2/docker.io/library/busybox/blobs/latest", status: 400},         // blob by tag
		{path: "/v2/docker.io/library/busybox/blobs/sha512:" + strings.Repeat("a", 128), status: 400},
		{path: "/v2/docker.io/library/busybox/blobs/" + strings.ToUpper(dgst), status: 400},
		{path: "/v2/docker.io/library/../busybox/manifests/latest", status: 400},
		{path: "/v2/docker.io//busybox/manifests/latest", status: 400},
		{path: "/v2/" + strings.Repeat("a/", 300) + "manifests/latest", status: 400}, // too long
		{path: "/v2/docker.io/library/busybox/tags/list", status: 404},
		{path: "/v2/docker.io/library/busybox/manifests", status: 404},
		{path: "/v2/_catalog", status: 404},
		{path: "/", status: 404},
		{path: "", status: 404},
	}
	for _, tc := range cases {
		req, err := parsePeerPath(tc.path)
		if tc.status != 0 {
			pe, ok := err.(peerPathError)
			if !ok || pe.status != tc.status {
				t.Errorf("parsePeerPath(%q) = %+v, %v; want refusal with %d", tc.path, req, err, tc.status)
			}
			continue
		}
		if err != nil {
			t.Errorf("parsePeerPath(%q): %v", tc.path, err)
			continue
		}
		var repo string
		if req.repo != nil {
			repo = req.repo.Name()
		}
		if req.kind != tc.kind || repo != tc.repo || req.tag != tc.tag || req.digest.String() != tc.digest {
			t.Errorf("parsePeerPath(%q) = kind %d repo %q tag %q digest %q", tc.path, req.kind, repo, req.tag, req.digest)
		}
	}
}

func TestPeerRepository(t *testing.T) {
	cases := []struct {
		ref, want string // want "" when the reference has no peer name
	}{
		{"busybox", "docker.io/library/busybox"},
		{"busybox:1.36", "docker.io/library/busybox"},
		{"ghcr.io/owner/app@sha256:" + strings.Repeat("0", 64), "ghcr.io/owner/app"},
		{"localhost:5000/app", "localhost_5000/app"},
		{"10.0.0.1:5000/a/b", "10.0.0.1_5000/a/b"},
		{"Registry.Example.com/app", ""},
		{"[::1]:5000/app", ""},
		{"example.com/" + strings.Repeat("a", 250), ""},
	}
	for _, tc := range cases {
		named, err := reference.ParseNormalizedNamed(tc.ref)
		if err != nil {
			t.Fatalf("%s: %v", tc.ref, err)
		}
		got, err := peerRepository(named)
		if tc.want == "" {
			if err == nil || !hasClass(err, "invalid") {
				t.Errorf("peerRepository(%s) = %q, %v; want an InvalidParameter error", tc.ref, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("peerRepository(%s) = %q, %v; want %q", tc.ref, got, err, tc.want)
		}
		back, err := parsePeerRepository(got)
		if err != nil || back.Name() != reference.TrimNamed(named).Name() {
			t.Errorf("parsePeerRepository(%q) = %v, %v; want %s", got, back, err, named.Name())
		}
	}
}

// FuzzParsePeerPath: any path is refused cleanly or parses into a request that
// is asked with exactly that path.
func FuzzParsePeerPath(f *testing.F) {
	for _, p := range []string{
		"/v2/", "/v2/docker.io/library/busybox/manifests/latest",
		"/v2/localhost_5000/a/blobs/sha256:" + strings.Repeat("0", 64),
		"/v2/docker.io/library/busybox/manifests/sha256:" + strings.Repeat("f", 64),
		"/v2/a_b_c/x/manifests/t", "/v2/x/../manifests/..", "/v2/\x00/blobs/\xff",
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		req, err := parsePeerPath(p)
		if err != nil {
			if _, ok := err.(peerPathError); !ok {
				t.Fatalf("parsePeerPath(%q): error of type %T", p, err)
			}
			return
		}
		if len(p) > maxPeerPath {
			t.Fatalf("parsePeerPath(%q) accepted %d bytes", p, len(p))
		}
		if req.kind == peerPing {
			return
		}
		if !reference.IsNameOnly(req.repo) || (req.tag == "") == (req.digest == "") {
			t.Fatalf("parsePeerPath(%q) = %+v", p, req)
		}
		if back := peerPath(t, req); back != p {
			t.Fatalf("parsePeerPath(%q) is asked as %q", p, back)
		}
	})
}
