package container

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ctypes "github.com/moby/moby/api/types/container"
)

// A task container on the bridge inspects as dockerd's do: its endpoint is named
// "bridge" and carries address, prefix, gateway, MAC and IDs, the host config shows
// what the runtime applies, and older API clients find the address at the top of
// NetworkSettings.
func TestInspectShowsBridgeEndpointAndRuntimeDefaults(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	netID := strings.Repeat("ab", 32)
	id := run(t, m, CreateRequest{
		Config:    ctypes.Config{Cmd: []string{"sh", "-c", "i=0; while true; do sleep 1; done"}},
		IPAddress: "172.30.0.5/16", Gateway: "172.30.0.1", MacAddress: "02:42:ac:1e:00:05", NetworkID: netID,
	})
	ins, err := m.Inspect(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	ep := ins.NetworkSettings.Networks["bridge"]
	if ep == nil {
		t.Fatalf("endpoints %v, want one named bridge", ins.NetworkSettings.Networks)
	}
	if ep.IPAddress.String() != "172.30.0.5" || ep.IPPrefixLen != 16 || ep.Gateway.String() != "172.30.0.1" ||
		ep.MacAddress.String() != "02:42:ac:1e:00:05" || ep.NetworkID != netID || len(ep.EndpointID) != 64 {
		t.Fatalf("bridge endpoint %+v", ep)
	}
	hc := ins.HostConfig
	if hc.LogConfig.Type != "json-file" || hc.LogConfig.Config == nil || hc.NetworkMode != "default" ||
		hc.IpcMode != "private" || hc.CgroupnsMode != "host" || hc.ShmSize != 64<<20 || hc.Runtime != "runc" ||
		!slices.Equal(hc.MaskedPaths, defaultMaskedPaths) || !slices.Equal(hc.ReadonlyPaths, defaultReadonlyPaths) {
		t.Fatalf("host config defaults %+v", hc)
	}
	if ins.Driver != "overlay2" || ins.GraphDriver == nil || ins.GraphDriver.Name != "overlay2" ||
		ins.GraphDriver.Data["UpperDir"] != filepath.Join(env.root, id, "upper") ||
		ins.GraphDriver.Data["LowerDir"] != env.images.layer {
		t.Fatalf("driver %q graph driver %+v", ins.Driver, ins.GraphDriver)
	}
	raw, err := json.Marshal(WithLegacyNetworkFields(ins))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Mounts          []any
		HostConfig      struct{ PortBindings map[string]any }
		NetworkSettings struct {
			IPAddress, Gateway, MacAddress string
			IPPrefixLen                    int
			Ports                          map[string]any
			Networks                       map[string]any
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	ns := doc.NetworkSettings
	if ns.IPAddress != "172.30.0.5" || ns.IPPrefixLen != 16 || ns.Gateway != "172.30.0.1" || ns.MacAddress != "02:42:ac:1e:00:05" {
		t.Fatalf("top-level NetworkSettings in %s", raw)
	}
	if doc.Mounts == nil || doc.HostConfig.PortBindings == nil || ns.Ports == nil || ns.Networks["bridge"] == nil {
		t.Fatalf("null where dockerd sends an empty list or map: %s", raw)
	}

	list, err := m.List(ctxT(t), false)
	if err != nil || len(list) != 1 {
		t.Fatalf("list %v %v", list, err)
	}
	if _, ok := list[0].NetworkSettings.Networks["bridge"]; !ok {
		t.Fatalf("docker ps networks %v", list[0].NetworkSettings.Networks)
	}
	if want := "sh -c 'i=0; while true; do sleep 1; done'"; list[0].Command != want {
		t.Fatalf("docker ps command %q, want %q", list[0].Command, want)
	}
	if !slices.Equal(ins.Args, []string{"-c", "i=0; while true; do sleep 1; done"}) {
		t.Fatalf("inspect args %q", ins.Args)
	}

	var out bytes.Buffer
	code, err := m.Exec(ctxT(t), id, ExecConfig{Cmd: []string{"grep", " /dev/shm ", "/proc/mounts"}}, nil, &out, &out)
	if err != nil || code != 0 || !strings.Contains(out.String(), "size=65536k") {
		t.Fatalf("/dev/shm mount = %d %q %v, want 64m as ShmSize says", code, out.String(), err)
	}
}

// The container's processes hold their user's groups as dockerd sets them: the
// primary group too, then HostConfig.GroupAdd.
func TestSupplementaryGroups(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	for _, tc := range []struct {
		name     string
		groupAdd []string
		id       string
		status   string
	}{
		{"plain", nil, "uid=0(root) gid=0(root) groups=0(root)\n", "Groups:\t0 \n"},
		{"groupadd", []string{"app", "65534"}, "uid=0(root) gid=0(root) groups=0(root),1000(app),65534(nogroup)\n", "Groups:\t0 1000 65534 \n"},
		// A number the image's /etc/group does not name is held as it is (the
		// kernel keeps groups sorted).
		{"unnamed number", []string{"app", "777"}, "uid=0(root) gid=0(root) groups=0(root),777,1000(app)\n", "Groups:\t0 777 1000 \n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := run(t, m, CreateRequest{
				Config:     ctypes.Config{Cmd: []string{"sleep", "1000"}},
				HostConfig: ctypes.HostConfig{GroupAdd: tc.groupAdd},
			})
			var out bytes.Buffer
			if code, err := m.Exec(ctxT(t), id, ExecConfig{Cmd: []string{"id"}}, nil, &out, &out); err != nil || code != 0 || out.String() != tc.id {
				t.Fatalf("exec id = %d %q %v, want %q", code, out.String(), err, tc.id)
			}
			out.Reset()
			if code, err := m.Exec(ctxT(t), id, ExecConfig{Cmd: []string{"grep", "Groups:", "/proc/1/status"}}, nil, &out, &out); err != nil || code != 0 || out.String() != tc.status {
				t.Fatalf("init's groups = %d %q %v, want %q", code, out.String(), err, tc.status)
			}
		})
	}
}

// docker ps -s: the bytes the container wrote, and those plus its image's.
func TestSizeCountsWrittenFilesAndImage(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	id := run(t, m, CreateRequest{Config: ctypes.Config{Cmd: []string{"sh", "-c", "head -c 12345 /dev/zero > /root/blob; ln /root/blob /root/again; exec sleep 1000"}}})
	upper := filepath.Join(env.root, id, "upper", "root", "again")
	eventually(t, 10*time.Second, "the file written", func() bool { _, err := os.Stat(upper); return err == nil })
	rw, rootFs, err := m.Size(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if rw < 12345 || rw > 12345+4096 {
		t.Fatalf("SizeRw %d, want the 12345 bytes written (a hard link once)", rw)
	}
	bin, err := os.Stat(filepath.Join(env.images.layer, "bin", "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	if rootFs < rw+bin.Size() {
		t.Fatalf("SizeRootFs %d, want at least SizeRw %d + busybox %d", rootFs, rw, bin.Size())
	}
	if _, _, err := m.Size(ctxT(t), "nope"); !isErrType[interface{ NotFound() bool }](err) {
		t.Fatalf("size of a missing container: %v", err)
	}
}

func TestCommandLineQuotesArgumentsWithSpaces(t *testing.T) {
	for _, tc := range []struct {
		path string
		args []string
		want string
	}{
		{"httpd", []string{"-f", "-p", "80"}, "httpd -f -p 80"},
		{"sh", []string{"-c", "echo a b"}, "sh -c 'echo a b'"},
		{"sleep", nil, "sleep"},
	} {
		if got := commandLine(record{Path: tc.path, Args: tc.args}); got != tc.want {
			t.Errorf("commandLine(%q %q) = %q, want %q", tc.path, tc.args, got, tc.want)
		}
	}
}
