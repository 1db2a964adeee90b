package engineapi

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/system"
)

func TestPingSwarmHeader(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *swarmFake) Swarm
		want  string
	}{
		{"no control plane", func(*swarmFake) Swarm { return nil }, "inactive"},
		{"not in a swarm", func(f *swarmFake) Swarm { return f }, "inactive"},
		{"manager", func(f *swarmFake) Swarm { f.activate("10.1.0.1"); return f }, "active/manager"},
		{"worker", func(f *swarmFake) Swarm {
			f.activate("10.1.0.2")
			f.manager = false
			return f
		}, "active/worker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := startSystemAPI(t, Config{Swarm: tt.setup(newSwarmFake("pingnode1", "ping-host"))})
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				status, body, h := api.do(t, method, "/_ping", "", "")
				if status != http.StatusOK {
					t.Fatalf("%s /_ping: status %d", method, status)
				}
				if method == http.MethodGet && body != "OK" {
					t.Errorf("GET /_ping body = %q, want OK", body)
				}
				if got := h.Get("Swarm"); got != tt.want {
					t.Errorf("%s /_ping Swarm header = %q, want %q", method, got, tt.want)
				}
				for k, want := range map[string]string{"Api-Version": APIVersion, "Ostype": "linux", "Docker-Experimental": "false", "Pragma": "no-cache"} {
					if got := h.Get(k); got != want {
						t.Errorf("%s /_ping header %s = %q, want %q", method, k, got, want)
					}
				}
				if !strings.Contains(h.Get("Cache-Control"), "no-cache") {
					t.Errorf("Cache-Control = %q, want no-cache", h.Get("Cache-Control"))
				}
			}
		})
	}
}

func TestVersionWithDockerCLI(t *testing.T) {
	api := startSystemAPI(t, Config{Version: "0.3.1"})
	out, errOut, err := api.docker(t, "version", "--format", "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}/{{.Server.Arch}} {{.Server.Platform.Name}}")
	if err != nil {
		t.Fatalf("docker version: %v\n%s", err, errOut)
	}
	want := "0.3.1 " + APIVersion + " " + MinAPIVersion + " linux/" + runtime.GOARCH + " shoal"
	if strings.TrimSpace(out) != want {
		t.Errorf("docker version printed %q, want %q", strings.TrimSpace(out), want)
	}
	out, errOut, err = api.docker(t, "version")
	if err != nil || errOut != "" {
		t.Fatalf("docker version: %v\nstderr: %s", err, errOut)
	}
	for _, want := range []string{"Server: shoal", "Engine:", "Version:          0.3.1", "API version:      " + APIVersion + " (minimum version " + MinAPIVersion + ")"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker version output lacks %q:\n%s", want, out)
		}
	}
}

func TestInfoCountsAndHost(t *testing.T) {
	ct := &systemContainersFake{list: []container.Summary{
		{ID: "a", State: container.StateRunning},
		{ID: "b", State: container.StateExited},
		{ID: "c", State: container.StatePaused},
		{ID: "d", State: container.StateRunning},
	}}
	root := t.TempDir()
	api := startSystemAPI(t, Config{Containers: ct, DataRoot: root, Version: "0.2.0"})
	status, body, _ := api.do(t, http.MethodGet, "/v1.50/info", "", "")
	if status != http.StatusOK {
		t.Fatalf("GET /info: %d %s", status, body)
	}
	var info system.Info
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		t.Fatalf("decode /info: %v", err)
	}
	host, _ := os.Hostname()
	checks := []struct {
		field     string
		got, want any
	}{
		{"Containers", info.Containers, 4},
		{"ContainersRunning", info.ContainersRunning, 2},
		{"ContainersPaused", info.ContainersPaused, 1},
		{"ContainersStopped", info.ContainersStopped, 1},
		{"Driver", info.Driver, "overlay2"},
		{"CgroupDriver", info.CgroupDriver, "cgroupfs"},
		{"OSType", info.OSType, "linux"},
		{"Name", info.Name, host},
		{"DockerRootDir", info.DockerRootDir, root},
		{"ServerVersion", info.ServerVersion, "0.2.0"},
		{"DefaultRuntime", info.DefaultRuntime, "runc"},
		{"NCPU", info.NCPU, runtime.NumCPU()},
		{"Swarm.LocalNodeState", string(info.Swarm.LocalNodeState), "inactive"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("/info %s = %v, want %v", c.field, c.got, c.want)
		}
	}
	if info.CgroupVersion != "1" && info.CgroupVersion != "2" {
		t.Errorf("CgroupVersion = %q, want 1 or 2", info.CgroupVersion)
	}
	if info.KernelVersion == "" || info.OperatingSystem == "" || info.MemTotal <= 0 || info.ID == "" {
		t.Errorf("host facts missing: kernel %q os %q mem %d id %q", info.KernelVersion, info.OperatingSystem, info.MemTotal, info.ID)
	}
	if _, ok := info.Runtimes["runc"]; !ok {
		t.Errorf("Runtimes = %v, want runc", info.Runtimes)
	}
}

func TestInfoWithDockerCLI(t *testing.T) {
	sw := newSwarmFake("infonode0123456789abcdefg", "info-host")
	api := startSystemAPI(t, Config{Swarm: sw, Containers: &systemContainersFake{}})

	out, errOut, err := api.docker(t, "info")
	if err != nil || errOut != "" {
		t.Fatalf("docker info before init: %v\nstderr: %s", err, errOut)
	}
	if !strings.Contains(out, "Swarm: inactive") {
		t.Errorf("docker info before init lacks 'Swarm: inactive':\n%s", out)
	}

	sw.activate("10.9.0.1")
	out, errOut, err = api.docker(t, "info")
	if err != nil || errOut != "" {
		t.Fatalf("docker info after init: %v\nstderr: %s", err, errOut)
	}
	for _, want := range []string{
		"Swarm: active",
		"NodeID: infonode0123456789abcdefg",
		"Is Manager: true",
		"ClusterID: clusterid0123456789abcdefg",
		"Managers: 1",
		"Node Address: 10.9.0.1",
		"10.9.0.1:2377",
		"Storage Driver: overlay2",
		"Cgroup Driver: cgroupfs",
		"Default Runtime: runc",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("docker info after init lacks %q:\n%s", want, out)
		}
	}
}

func TestEngineIDStable(t *testing.T) {
	a, b := engineID("h1", "/var/lib/shoal"), engineID("h1", "/var/lib/shoal")
	if a != b || a == engineID("h2", "/var/lib/shoal") {
		t.Fatalf("engine ID not stable per host and root: %s %s", a, b)
	}
	if len(a) != 36 || strings.Count(a, "-") != 4 {
		t.Errorf("engine ID %q is not UUID-shaped", a)
	}
}

func TestReadOSRelease(t *testing.T) {
	path := t.TempDir() + "/os-release"
	data := "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	name, version := readOSRelease(path)
	if name != "Debian GNU/Linux 12 (bookworm)" || version != "12" {
		t.Errorf("readOSRelease = %q, %q", name, version)
	}
	if name, _ := readOSRelease(path + ".missing"); name != "Linux" {
		t.Errorf("missing os-release gives %q, want Linux", name)
	}
}

func TestSystemDFWithDockerCLI(t *testing.T) {
	ct := &systemContainersFake{list: []container.Summary{{ID: "a1", Names: []string{"/web.1.x"}, State: container.StateRunning}}}
	api := startSystemAPI(t, Config{Containers: ct})
	out, errOut, err := api.docker(t, "system", "df")
	if err != nil {
		t.Fatalf("docker system df: %v\n%s", err, errOut)
	}
	if !regexp.MustCompile(`(?m)^Containers\s+1\s+1\s`).MatchString(out) || !regexp.MustCompile(`(?m)^Images\s+0\s+0\s`).MatchString(out) {
		t.Errorf("docker system df printed:\n%s", out)
	}
}
