package engineapi

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/volume"
)

func startVolumeAPI(t *testing.T, vols *volumeFake) *svcAPI {
	t.Helper()
	return startSvcAPI(t, Config{Swarm: newServiceFake(), Containers: newCtrFake(), Images: &imageFake{}, Volumes: vols})
}

func TestVolumeCreateInspectRemove(t *testing.T) {
	vols := newVolumeFake()
	vols.add("busy", nil, 0, "c1", "c2")
	api := startVolumeAPI(t, vols)

	resp, body := api.call(t, "POST", "/v1.51/volumes/create", strings.NewReader(`{"Name":"v1","Labels":{"a":"b"}}`),
		map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var v volume.Volume
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	if v.Name != "v1" || v.Driver != "local" || v.Scope != "local" || v.Labels["a"] != "b" ||
		v.Mountpoint != "/var/lib/shoal/volumes/v1" || v.CreatedAt != "2026-10-01T12:01:00Z" || v.Options == nil {
		t.Fatalf("created %s", body)
	}
	resp, body = api.call(t, "GET", "/v1.51/volumes/v1", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"Labels":{"a":"b"}`) || strings.Contains(string(body), "UsageData") {
		t.Fatalf("inspect: %d %s", resp.StatusCode, body)
	}

	tests := []struct {
		name, method, path, body string
		status                   int
		message                  string
	}{
		{"unknown driver", "POST", "/volumes/create", `{"Name":"x1","Driver":"nfs"}`, 404, `create x1: error looking up volume plugin nfs: plugin "nfs" not found`},
		{"driver options", "POST", "/volumes/create", `{"Name":"x2","DriverOpts":{"type":"tmpfs"}}`, 400, "create x2: invalid option(s)"},
		{"cluster volume", "POST", "/volumes/create", `{"Name":"x3","ClusterVolumeSpec":{}}`, 400, "cluster volumes are not supported: shoal has no CSI volume plugins"},
		{"inspect unknown", "GET", "/volumes/nope", "", 404, "get nope: no such volume"},
		{"remove unknown", "DELETE", "/volumes/nope", "", 404, "get nope: no such volume"},
		{"force remove unknown", "DELETE", "/volumes/nope?force=1", "", 204, ""},
		{"remove in use", "DELETE", "/volumes/busy?force=1", "", 409, "remove busy: volume is in use - [c1, c2]"},
		{"remove", "DELETE", "/volumes/v1", "", 204, ""},
		{"removed", "GET", "/volumes/v1", "", 404, "get v1: no such volume"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdr map[string]string
			if tc.body != "" {
				hdr = map[string]string{"Content-Type": "application/json"}
			}
			resp, body := api.call(t, tc.method, "/v1.51"+tc.path, strings.NewReader(tc.body), hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.message != "" && strings.TrimSpace(string(body)) != `{"message":`+jsonString(tc.message)+`}` {
				t.Fatalf("body %s, want message %q", body, tc.message)
			}
		})
	}
}

func TestVolumeListFilters(t *testing.T) {
	vols := newVolumeFake()
	vols.add("web-data", map[string]string{"tier": "web"}, 10, "c1")
	vols.add("db-data", map[string]string{"tier": "db"}, 20)
	vols.add("cache", nil, 30)
	api := startVolumeAPI(t, vols)
	tests := []struct {
		name, filters string
		status        int
		want          string // names, or the error message
	}{
		{"all", ``, 200, "cache db-data web-data"},
		{"dangling", `{"dangling":{"true":true}}`, 200, "cache db-data"},
		{"in use", `{"dangling":{"0":true}}`, 200, "web-data"},
		{"name is a regexp anywhere in the name", `{"name":{"-da":true}}`, 200, "db-data web-data"},
		{"name anchored", `{"name":{"^c":true}}`, 200, "cache"},
		{"label key", `{"label":{"tier":true}}`, 200, "db-data web-data"},
		{"label value", `{"label":{"tier=db":true}}`, 200, "db-data"},
		{"driver local", `{"driver":{"local":true}}`, 200, "cache db-data web-data"},
		{"driver other", `{"driver":{"nfs":true}}`, 200, ""},
		{"legacy filter form", `{"name":["cache"]}`, 200, "cache"},
		{"bad dangling", `{"dangling":{"maybe":true}}`, 400, "Invalid filter 'dangling=maybe'"},
		{"unknown filter", `{"size":{"1":true}}`, 400, "invalid filter 'size'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := api.call(t, "GET", "/v1.51/volumes?filters="+url.QueryEscape(tc.filters), nil, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if tc.status != 200 {
				if strings.TrimSpace(string(body)) != `{"message":`+jsonString(tc.want)+`}` {
					t.Fatalf("body %s, want %q", body, tc.want)
				}
				return
			}
			var list volume.ListResponse
			if err := json.Unmarshal(body, &list); err != nil {
				t.Fatal(err)
			}
			if list.Warnings == nil || !strings.Contains(string(body), `"Warnings":[]`) {
				t.Fatalf("Warnings not []: %s", body)
			}
			var names []string
			for _, v := range list.Volumes {
				names = append(names, v.Name)
			}
			if got := strings.Join(names, " "); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestVolumePrune(t *testing.T) {
	anon := map[string]string{"com.docker.volume.anonymous": ""}
	tests := []struct {
		name, version, filters string
		status                 int
		want                   string // deleted names and bytes, or the error message
	}{
		{"anonymous only by default", "1.51", ``, 200, "[aaaa bbbb] 3"},
		{"all", "1.51", `{"all":{"true":true}}`, 200, "[aaaa bbbb named] 7"},
		{"all before 1.42", "1.41", ``, 200, "[aaaa bbbb named] 7"},
		{"all=false before 1.42", "1.41", `{"all":{"false":true}}`, 200, "[aaaa bbbb] 3"},
		{"label", "1.51", `{"all":{"1":true},"label":{"keep":true}}`, 200, "[named] 4"},
		{"label!", "1.51", `{"label!":{"keep":true}}`, 200, "[aaaa bbbb] 3"},
		{"label! excludes", "1.51", `{"all":{"1":true},"label!":{"keep":true}}`, 200, "[aaaa bbbb] 3"},
		{"bad all", "1.51", `{"all":{"yes please":true}}`, 400, `invalid filter 'all': strconv.ParseBool: parsing "yes please": invalid syntax`},
		{"dangling is not a prune filter", "1.51", `{"dangling":{"true":true}}`, 400, "invalid filter 'dangling'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vols := newVolumeFake()
			vols.add("aaaa", anon, 1)
			vols.add("bbbb", anon, 2)
			vols.add("used", anon, 8, "c1")
			vols.add("named", map[string]string{"keep": "x"}, 4)
			api := startVolumeAPI(t, vols)
			resp, body := api.call(t, "POST", "/v"+tc.version+"/volumes/prune?filters="+url.QueryEscape(tc.filters), nil, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if tc.status != 200 {
				if strings.TrimSpace(string(body)) != `{"message":`+jsonString(tc.want)+`}` {
					t.Fatalf("body %s, want %q", body, tc.want)
				}
				return
			}
			var rep volume.PruneReport
			if err := json.Unmarshal(body, &rep); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join([]string{"[" + strings.Join(rep.VolumesDeleted, " ") + "]", jsonNumber(rep.SpaceReclaimed)}, " "); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func jsonNumber(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestVolumesWithDockerCLI(t *testing.T) {
	vols := newVolumeFake()
	vols.add("busy", nil, 2048, "c1")
	api := startVolumeAPI(t, vols)

	if out := api.mustDocker(t, "volume", "create", "v1", "--label", "a=b"); out != "v1\n" {
		t.Fatalf("volume create: %q", out)
	}
	if out := api.mustDocker(t, "volume", "ls"); out != "DRIVER    VOLUME NAME\nlocal     busy\nlocal     v1\n" {
		t.Fatalf("volume ls:\n%s", out)
	}
	if out := api.mustDocker(t, "volume", "ls", "-q", "--filter", "dangling=true"); out != "v1\n" {
		t.Fatalf("volume ls dangling: %q", out)
	}
	if out := api.mustDocker(t, "volume", "inspect", "--format", "{{.Name}} {{.Driver}} {{.Labels}} {{.Scope}}", "v1"); out != "v1 local map[a:b] local\n" {
		t.Fatalf("volume inspect: %q", out)
	}
	_, errOut, err := api.docker(t, "", "volume", "rm", "busy")
	if err == nil || !strings.Contains(errOut, "Error response from daemon: remove busy: volume is in use - [c1]") {
		t.Fatalf("volume rm in use: %v %q", err, errOut)
	}
	_, errOut, err = api.docker(t, "", "volume", "inspect", "ghost")
	if err == nil || !strings.Contains(errOut, "get ghost: no such volume") {
		t.Fatalf("volume inspect unknown: %v %q", err, errOut)
	}
	if out := api.mustDocker(t, "volume", "create"); len(strings.TrimSpace(out)) != 64 {
		t.Fatalf("anonymous volume create: %q", out)
	}
	out := api.mustDocker(t, "volume", "prune", "-f")
	if !strings.Contains(out, "Deleted Volumes:\n") || strings.Contains(out, "v1") || !strings.Contains(out, "Total reclaimed space: 0B") {
		t.Fatalf("volume prune: %q", out)
	}
	if out := api.mustDocker(t, "system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}} {{.Size}}"); !strings.Contains(out, "Local Volumes 2 1 2.048kB") {
		t.Fatalf("system df: %q", out)
	}
	if out := api.mustDocker(t, "volume", "rm", "v1"); out != "v1\n" {
		t.Fatalf("volume rm: %q", out)
	}
}
