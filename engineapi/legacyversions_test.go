package engineapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/registry"

	img "github.com/shoal-project/shoal/runtime/image"
)

// A client of API 1.41 (the docker CLI 20.10) reads /info with the fields
// later versions dropped, as dockerd 20.10 writes them: each commit's
// Expected (its ID) and the registry's non-distributable artifact lists;
// a client of 1.51 reads neither.
func TestInfoForOlderAPIVersions(t *testing.T) {
	api := startSystemAPI(t, Config{DataRoot: t.TempDir(), Version: "0.2.0", Registry: func() *registry.ServiceConfig { return &registry.ServiceConfig{} }})
	get := func(path string) map[string]any {
		status, body, _ := api.do(t, http.MethodGet, path, "", "")
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("decode %s: %v", path, err)
		}
		return m
	}
	old := get("/v1.41/info")
	for _, k := range []string{"ContainerdCommit", "RuncCommit", "InitCommit"} {
		commit, _ := old[k].(map[string]any)
		if _, ok := commit["Expected"]; !ok || commit["Expected"] != commit["ID"] {
			t.Errorf("API 1.41: %s = %v, want Expected equal to ID", k, commit)
		}
	}
	reg, _ := old["RegistryConfig"].(map[string]any)
	for _, k := range []string{"AllowNondistributableArtifactsCIDRs", "AllowNondistributableArtifactsHostnames"} {
		if list, ok := reg[k].([]any); !ok || len(list) != 0 {
			t.Errorf("API 1.41: RegistryConfig.%s = %v, want []", k, reg[k])
		}
	}
	if old["BridgeNfIptables"] != true {
		t.Errorf("API 1.41: BridgeNfIptables = %v, want true", old["BridgeNfIptables"])
	}
	now := get("/v1.51/info")
	if commit, _ := now["RuncCommit"].(map[string]any); commit["Expected"] != nil {
		t.Errorf("API 1.51: RuncCommit = %v, want no Expected", commit)
	}
	if reg, _ := now["RegistryConfig"].(map[string]any); reg["AllowNondistributableArtifactsCIDRs"] != nil {
		t.Errorf("API 1.51: RegistryConfig = %v, want no AllowNondistributableArtifactsCIDRs", reg)
	}
	if _, ok := now["BridgeNfIptables"]; ok {
		t.Errorf("API 1.51: BridgeNfIptables is there")
	}
}

// Clients before API 1.44 read an image's VirtualSize (its Size), in the
// image list and in system df; from 1.44 on it is gone.
func TestImageVirtualSizeBeforeAPI144(t *testing.T) {
	busybox := img.Image{
		ID: "sha256:" + strings.Repeat("a0", 32), RepoTags: []string{"busybox:latest"},
		DiffIDs: []string{"sha256:" + strings.Repeat("1", 64)}, LayerSizes: []int64{1984241}, Size: 1984241,
	}
	api := startSystemAPI(t, Config{Images: &imageFake{images: []img.Image{busybox}}})
	images := func(path string) []map[string]any {
		status, body, _ := api.do(t, http.MethodGet, path, "", "")
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		var list []map[string]any
		if strings.Contains(path, "/system/df") {
			var df struct{ Images []map[string]any }
			if err := json.Unmarshal([]byte(body), &df); err != nil {
				t.Fatalf("decode %s: %v", path, err)
			}
			list = df.Images
		} else if err := json.Unmarshal([]byte(body), &list); err != nil {
			t.Fatalf("decode %s: %v", path, err)
		}
		if len(list) != 1 {
			t.Fatalf("GET %s: %d images, want 1: %s", path, len(list), body)
		}
		return list
	}
	for _, path := range []string{"/v1.41/images/json", "/v1.43/images/json", "/v1.41/system/df"} {
		im := images(path)[0]
		if im["VirtualSize"] != float64(busybox.Size) || im["Size"] != float64(busybox.Size) {
			t.Errorf("GET %s: VirtualSize %v, Size %v, want both %d", path, im["VirtualSize"], im["Size"], busybox.Size)
		}
	}
	for _, path := range []string{"/v1.44/images/json", "/v1.51/system/df"} {
		if im := images(path)[0]; im["VirtualSize"] != nil {
			t.Errorf("GET %s: VirtualSize %v, want none", path, im["VirtualSize"])
		}
	}
}
