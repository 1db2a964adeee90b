package e2e

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	units "github.com/docker/go-units"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
)

// A task container inspects, lists and sizes as dockerd's do: its bridge endpoint
// with address, prefix and gateway (also where scripts read the address at the top
// of NetworkSettings), docker ps's NETWORKS and quoted COMMAND, the root user's
// groups, the image's size as its files' and docker system df's counts.
func TestRuntimeInspect(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "inspect")
	n.MustDocker("service", "create", "-d", "--name", "pi", "--stop-grace-period", "1s",
		"busybox", "httpd", "-f", "-p", "80")
	n.MustDocker("service", "create", "-d", "--name", "pub", "--stop-grace-period", "1s", "-p", "18093:80",
		"busybox", "httpd", "-f", "-p", "80")
	n.MustDocker("service", "create", "-d", "--name", "loop", "--stop-grace-period", "1s",
		"busybox", "sh", "-c", "i=0; while true; do sleep 1; done")
	c := taskContainer(t, n, "pi")
	loop := taskContainer(t, n, "loop")

	// The bridge endpoint, as the container itself sees its interface and route.
	ipPrefix := strings.Fields(mustExec(t, n, c, "ip -o -4 addr show eth0"))
	gateway := strings.Fields(mustExec(t, n, c, "ip route show default"))
	if len(ipPrefix) < 4 || len(gateway) < 3 {
		t.Fatalf("container's address %q and route %q", ipPrefix, gateway)
	}
	addr, bits, _ := strings.Cut(ipPrefix[3], "/")
	got := strings.TrimSpace(n.MustDocker("inspect", "-f",
		`{{.NetworkSettings.Networks.bridge.IPAddress}} {{.NetworkSettings.Networks.bridge.IPPrefixLen}} {{.NetworkSettings.Networks.bridge.Gateway}} {{.HostConfig.NetworkMode}} {{.HostConfig.ShmSize}} {{.HostConfig.LogConfig.Type}} {{.GraphDriver.Name}}`, c))
	if want := addr + " " + bits + " " + gateway[2] + " default 67108864 json-file overlay2"; got != want {
		t.Errorf("docker inspect bridge endpoint and defaults = %q, want %q", got, want)
	}
	if got := strings.TrimSpace(n.MustDocker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", c)); got != addr {
		t.Errorf("docker inspect -f {{.NetworkSettings.IPAddress}} = %q, want the bridge endpoint's %q", got, addr)
	}

	// docker ps: the network's name, and dockerd's quoting of an argument with spaces.
	ps := strings.TrimSpace(n.MustDocker("ps", "--no-trunc", "--filter", "name="+c, "--format", "{{.Networks}} {{.Command}}"))
	if ps != `bridge "httpd -f -p 80"` {
		t.Errorf("docker ps networks and command = %q", ps)
	}
	// A task on an overlay network (here ingress, for its published port) lists
	// that network, not the bridge it leaves the swarm through, as dockerd
	// leaves out docker_gwbridge.
	pub := taskContainer(t, n, "pub")
	if ps := strings.TrimSpace(n.MustDocker("ps", "--filter", "name="+pub, "--format", "{{.Networks}}")); ps != "ingress" {
		t.Errorf("docker ps networks of a task on ingress = %q", ps)
	}
	ps = strings.TrimSpace(n.MustDocker("ps", "--no-trunc", "--filter", "name="+loop, "--format", "{{.Command}}"))
	if ps != `"sh -c 'i=0; while true; do sleep 1; done'"` {
		t.Errorf("docker ps command = %q", ps)
	}

	// The root user holds its group as a supplementary group, as on Docker.
	if id := mustExec(t, n, c, "id"); id != "uid=0(root) gid=0(root) groups=0(root)" {
		t.Errorf("docker exec id = %q", id)
	}
	if g := mustExec(t, n, c, "grep Groups: /proc/1/status"); strings.Join(strings.Fields(g), " ") != "Groups: 0" {
		t.Errorf("init's groups = %q", g)
	}

	// The image's size is its files' (busybox, the symlinks to it, passwd, group).
	want := busyboxFilesSize(t)
	if got := strings.TrimSpace(n.MustDocker("image", "inspect", "-f", "{{.Size}}", "busybox")); got != strconv.FormatInt(want, 10) {
		t.Errorf("image inspect Size = %s, want %d", got, want)
	}
	if got := strings.TrimSpace(n.MustDocker("images", "--format", "{{.Size}}", "busybox")); got != units.HumanSizeWithPrecision(float64(want), 3) {
		t.Errorf("docker images SIZE = %q, want %q", got, units.HumanSizeWithPrecision(float64(want), 3))
	}

	// docker system df: the image is in use by the three tasks.
	df := n.MustDocker("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}} {{.Size}}")
	if !strings.Contains(df, "Images 1 1 "+units.HumanSize(float64(want))+"\n") || !strings.Contains(df, "Containers 3 3 ") {
		t.Errorf("docker system df = %q", df)
	}

	// Removing the image by name while tasks use it: dockerd's words.
	out, err := n.Docker("image", "rm", "busybox")
	if err == nil || !strings.Contains(out, `conflict: unable to remove repository reference "busybox" (must force) - container `) ||
		!strings.Contains(out, "is using its referenced image") {
		t.Errorf("docker image rm busybox: err %v output %q", err, out)
	}
}

// busyboxFilesSize is the size dockerd gives the test busybox image: the
// busybox-static binary, its applets' symlinks ("busybox", 7 bytes each), passwd
// and group as imagetest writes them.
func busyboxFilesSize(t *testing.T) int64 {
	t.Helper()
	bin, err := os.Stat(imagetest.BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command(imagetest.BusyboxPath, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	size := bin.Size() + int64(len("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")+
		len("root:x:0:\nnogroup:x:65534:\n"))
	for _, a := range strings.Fields(string(list)) {
		if a != "busybox" {
			size += int64(len("busybox"))
		}
	}
	return size
}
