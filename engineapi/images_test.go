package engineapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
)

func TestImageList(t *testing.T) {
	images := &imageFake{}
	images.addImage("busybox:latest", "busybox:1.36")
	images.addImage("localhost:5000/team/app:1")
	images.addImage()
	api := startSvcAPI(t, Config{Swarm: newServiceFake(), Containers: newCtrFake(), Images: images})
	tests := []struct {
		name, filters string
		status        int
		want          string // RepoTags of each image, newest first, or the error
	}{
		{"all", ``, 200, "[] [localhost:5000/team/app:1] [busybox:latest busybox:1.36]"},
		{"reference by name", `{"reference":{"busybox":true}}`, 200, "[busybox:latest busybox:1.36]"},
		{"reference narrows tags", `{"reference":{"busybox:1.*":true}}`, 200, "[busybox:1.36]"},
		{"reference with registry", `{"reference":{"localhost:5000/team/*":true}}`, 200, "[localhost:5000/team/app:1]"},
		{"dangling", `{"dangling":{"true":true}}`, 200, "[]"},
		{"not dangling", `{"dangling":{"false":true}}`, 200, "[localhost:5000/team/app:1] [busybox:latest busybox:1.36]"},
		{"bad dangling", `{"dangling":{"often":true}}`, 400, "Invalid filter 'dangling=often'"},
		{"label", `{"label":{"seq=2":true}}`, 200, "[localhost:5000/team/app:1]"},
		{"before", `{"before":{"localhost:5000/team/app:1":true}}`, 200, "[busybox:latest busybox:1.36]"},
		{"since", `{"since":{"busybox":true}}`, 200, "[] [localhost:5000/team/app:1]"},
		{"unknown filter", `{"size":{"big":true}}`, 400, "invalid filter 'size'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := api.call(t, "GET", "/v1.50/images/json?filters="+url.QueryEscape(tc.filters), nil, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d body %s", resp.StatusCode, body)
			}
			if tc.status != 200 {
				if strings.TrimSpace(string(body)) != `{"message":`+jsonString(tc.want)+`}` {
					t.Fatalf("body %s, want %s", body, tc.want)
				}
				return
			}
			var list []image.Summary
			if err := json.Unmarshal(body, &list); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range list {
				got = append(got, "["+strings.Join(s.RepoTags, " ")+"]")
			}
			if strings.Join(got, " ") != tc.want {
				t.Fatalf("got %s, want %s", strings.Join(got, " "), tc.want)
			}
		})
	}
}

func TestImagesWithDockerCLI(t *testing.T) {
	images := &imageFake{}
	images.addImage("busybox:latest")
	running := images.addImage("nginx:1")
	ct := newCtrFake(container.Summary{ID: strings.Repeat("d4", 32), Names: []string{"/web.1.x"}, ImageID: running.ID, State: "running"})
	api := startSvcAPI(t, Config{Swarm: newServiceFake(), Containers: ct, Images: images})

	archive := filepath.Join(t.TempDir(), "images.tar")
	if err := os.WriteFile(archive, []byte("alpine:3\nlocalhost:5000/team/app:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := api.mustDocker(t, "load", "-i", archive); out != "Loaded image: alpine:3\nLoaded image: localhost:5000/team/app:1\n" {
		t.Fatalf("docker load: %q", out)
	}
	ls := api.mustDocker(t, "images", "--format", "{{.Repository}}:{{.Tag}}")
	if ls != "localhost:5000/team/app:1\nalpine:3\nnginx:1\nbusybox:latest\n" {
		t.Fatalf("docker images:\n%s", ls)
	}
	if out := api.mustDocker(t, "image", "inspect", "-f", "{{.Id}} {{.Os}}", "localhost:5000/team/app:1"); !regexp.MustCompile(`^sha256:04ab\w+ linux\n$`).MatchString(out) {
		t.Fatalf("docker image inspect: %q", out)
	}
	if out := api.mustDocker(t, "image", "history", "--format", "{{.ID}} {{.CreatedBy}} {{.Size}}", "nginx:1"); out != "02ababababab CMD sh 0B\n<missing> ADD rootfs / 2kB\n" {
		t.Fatalf("docker image history: %q", out)
	}
	api.mustDocker(t, "tag", "localhost:5000/team/app:1", "registry.local/app:v2")
	if out := api.mustDocker(t, "images", "-q", "registry.local/app"); !strings.HasPrefix(out, "04abababab") {
		t.Fatalf("tagged image not listed: %q", out)
	}
	out := api.mustDocker(t, "image", "rm", "registry.local/app:v2")
	if out != "Untagged: registry.local/app:v2\n" {
		t.Fatalf("docker image rm (one of two tags): %q", out)
	}
	out = api.mustDocker(t, "image", "rm", "localhost:5000/team/app:1")
	if !regexp.MustCompile(`^Untagged: localhost:5000/team/app:1\nDeleted: sha256:04ab\w+\n$`).MatchString(out) {
		t.Fatalf("docker image rm (last tag): %q", out)
	}
	_, errOut, err := api.docker(t, "", "image", "rm", "nginx:1")
	if err == nil || !strings.Contains(errOut, `conflict: unable to remove repository reference "nginx:1" (must force) - container d4d4d4d4d4d4 is using its referenced image 02ababababab`) {
		t.Fatalf("docker image rm of a used image: err %v, stderr %q", err, errOut)
	}
	_, errOut, err = api.docker(t, "", "image", "inspect", "nope")
	if err == nil || !strings.Contains(errOut, "No such image: nope") {
		t.Fatalf("docker image inspect nope: %v %q", err, errOut)
	}

	out = api.mustDocker(t, "pull", "-q", "redis:7")
	if out != "docker.io/library/redis:7\n" {
		t.Fatalf("docker pull -q: %q", out)
	}
	out, errOut, err = api.docker(t, "", "pull", "broken/app")
	if err == nil || !strings.Contains(errOut, "read layer layer0000001: unexpected EOF") {
		t.Fatalf("docker pull of a broken image: err %v, stdout %q, stderr %q", err, out, errOut)
	}
	_, errOut, err = api.docker(t, "", "pull", "nosuch")
	if err == nil || !strings.Contains(errOut, "Error response from daemon: pull access denied for nosuch") {
		t.Fatalf("docker pull nosuch: err %v, stderr %q", err, errOut)
	}
}

func TestImageEndpoints(t *testing.T) {
	images := &imageFake{}
	images.addImage("localhost:5000/team/app:1")
	api := startSvcAPI(t, Config{Swarm: newServiceFake(), Containers: newCtrFake(), Images: images})
	auth := base64.URLEncoding.EncodeToString([]byte(`{"username":"ann","password":"pw","serveraddress":"localhost:5000"}`))

	resp, body := api.call(t, "POST", "/v1.50/images/create?fromImage=localhost:5000/team/db&tag=2", nil, map[string]string{"X-Registry-Auth": auth})
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || len(lines) != 5 ||
		lines[0] != `{"status":"Pulling from team/db","id":"2"}` || lines[4] != `{"status":"Status: Downloaded newer image for localhost:5000/team/db:2"}` {
		t.Fatalf("pull: %d %q", resp.StatusCode, body)
	}
	if images.auth == nil || images.auth.Username != "ann" || images.auth.Password != "pw" {
		t.Errorf("registry auth reached the store as %+v", images.auth)
	}
	_, body = api.call(t, "POST", "/images/create?fromImage=broken&tag=1", nil, nil)
	if last := lastLine(body); last != `{"errorDetail":{"message":"read layer layer0000001: unexpected EOF"},"error":"read layer layer0000001: unexpected EOF"}` {
		t.Fatalf("pull error line: %s", last)
	}
	_, body = api.call(t, "POST", "/images/load?quiet=1", strings.NewReader("garbage"), nil)
	if last := lastLine(body); last != `{"errorDetail":{"message":"unrecognized image archive: no manifest.json or index.json"},"error":"unrecognized image archive: no manifest.json or index.json"}` {
		t.Fatalf("load error line: %s", last)
	}

	for _, tc := range []struct{ method, path, status, body string }{
		{"POST", "/images/create?fromImage=UPPER", "400", `{"message":"invalid reference format: UPPER"}`},
		{"POST", "/images/create?fromSrc=-", "501", `{"message":"shoal does not support importing images: use docker load"}`},
		{"POST", "/images/create?fromImage=app&tag=sha256:zz", "400", `{"message":"invalid digest \"sha256:zz\": invalid checksum digest length"}`},
		{"POST", "/images/localhost:5000/team/app:1/tag?repo=Bad", "400", `{"message":"Error parsing reference: \"Bad\" is not a valid repository/tag: invalid reference format: repository name (library/Bad) must be lowercase"}`},
		{"POST", "/images/localhost:5000/team/app:1/tag?repo=app@sha256:" + strings.Repeat("e", 64), "400", `{"message":"refusing to create a tag with a digest reference"}`},
		{"POST", "/images/nope/tag?repo=app", "404", `{"message":"No such image: nope"}`},
		{"POST", "/images/localhost:5000/team/app:1/tag?repo=app", "201", ``},
		{"GET", "/images/localhost:5000/team/app:1/json", "200", ``},
		{"GET", "/images/nope/json", "404", `{"message":"No such image: nope"}`},
		{"GET", "/images/nope/history", "404", `{"message":"No such image: nope"}`},
		{"GET", "/images/localhost:5000/team/app:1/history", "200", ``},
		{"GET", "/distribution/localhost:5000/team/app:1/json", "200", ``},
		{"GET", "/distribution/nope/json", "404", `{"message":"No such image: nope"}`},
		{"DELETE", "/images/nope", "404", `{"message":"No such image: nope"}`},
		{"DELETE", "/images/app:latest", "200", `[{"Untagged":"app:latest"}]`},
	} {
		resp, body := api.call(t, tc.method, tc.path, nil, nil)
		if itoa(uint64(resp.StatusCode)) != tc.status || (tc.body != "" && strings.TrimSpace(string(body)) != tc.body) {
			t.Errorf("%s %s: %d %s; want %s %s", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.body)
		}
	}
	im, _ := images.Get(t.Context(), "localhost:5000/team/app:1")
	if strings.Join(im.RepoTags, ",") != "localhost:5000/team/app:1" {
		t.Errorf("tags after tag and untag: %v", im.RepoTags)
	}
}

func lastLine(body []byte) string {
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	return lines[len(lines)-1]
}

// `docker login` asks the daemon to check the credentials: good ones are
// "Login Succeeded", bad ones the registry's refusal with a 401.
func TestLogin(t *testing.T) {
	api := startSvcAPI(t, Config{Swarm: newServiceFake(), Containers: newCtrFake(), Images: &imageFake{}})
	out := api.mustDocker(t, "login", "-u", "fleet", "-p", "good", "registry.example:5000")
	if !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("docker login with good credentials: %q", out)
	}
	_, stderr, err := api.docker(t, "", "login", "-u", "fleet", "-p", "bad", "registry.example:5000")
	if err == nil || !strings.Contains(stderr, "failed with status: 401 Unauthorized") {
		t.Fatalf("docker login with bad credentials: %v %q", err, stderr)
	}
	resp, body := api.call(t, "POST", "/v1.50/auth", strings.NewReader(`{"username":"u","password":"bad"}`), nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST /auth with bad credentials = %d %s", resp.StatusCode, body)
	}
}
