package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/volume"

	"github.com/shoal-project/shoal/testenv"
)

// docker volume create/ls/inspect/rm/prune behave as with dockerd's local
// driver, and the volumes task containers mount are the same volumes.
func TestVolumes(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "vols")

	if out := n.MustDocker("volume", "create", "v1", "--label", "a=b"); out != "v1\n" {
		t.Fatalf("volume create: %q", out)
	}
	if out := n.MustDocker("volume", "ls"); out != "DRIVER    VOLUME NAME\nlocal     v1\n" {
		t.Fatalf("volume ls:\n%s", out)
	}
	var v1 volume.Volume
	inspect(t, n, "volume", "v1", &v1)
	if v1.Name != "v1" || v1.Driver != "local" || v1.Scope != "local" || v1.Labels["a"] != "b" ||
		v1.Mountpoint != filepath.Join(n.DataRoot, "volumes", "v1") {
		t.Fatalf("volume inspect v1: %+v", v1)
	}
	if created, err := time.Parse(time.RFC3339, v1.CreatedAt); err != nil || time.Since(created) > 5*time.Minute {
		t.Fatalf("CreatedAt %q: %v", v1.CreatedAt, err)
	}
	out, err := n.Docker("volume", "create", "--driver", "nfs", "x1")
	if err == nil || !strings.Contains(out, `Error response from daemon: create x1: error looking up volume plugin nfs: plugin "nfs" not found`) {
		t.Fatalf("volume create --driver nfs: %v %q", err, out)
	}

	// A task writes into a named volume (with a label) and an anonymous one.
	n.MustDocker("service", "create", "-d", "--name", "writer", "--stop-grace-period", "1s",
		"--mount", "type=volume,src=data,dst=/data,volume-label=app=writer",
		"--mount", "type=volume,dst=/scratch",
		"busybox", "sh", "-c", "echo hello > /data/greeting && echo x > /scratch/f && sleep 300")
	c := taskContainer(t, n, "writer")
	greeting := filepath.Join(n.DataRoot, "volumes", "data", "greeting")
	testenv.WaitFor(t, 30*time.Second, "the task's file in the volume", func() (bool, string) {
		b, _ := os.ReadFile(greeting)
		return string(b) == "hello\n", string(b)
	})
	names := lines(n.MustDocker("volume", "ls", "--format", "{{.Name}}"))
	if len(names) != 3 || !slices.Contains(names, "data") || !slices.Contains(names, "v1") {
		t.Fatalf("volume ls after the task started: %q", names)
	}
	var data volume.Volume
	inspect(t, n, "volume", "data", &data)
	if data.Labels["app"] != "writer" || data.CreatedAt == "" {
		t.Fatalf("volume inspect data: %+v", data)
	}
	if got := lines(n.MustDocker("volume", "ls", "-q", "--filter", "dangling=true")); !slices.Equal(got, []string{"v1"}) {
		t.Fatalf("dangling volumes: %q", got)
	}

	id := strings.TrimSpace(n.MustDocker("inspect", "--format", "{{.Id}}", c))
	out, err = n.Docker("volume", "rm", "data")
	if want := "Error response from daemon: remove data: volume is in use - [" + id + "]"; err == nil || !strings.Contains(out, want) {
		t.Fatalf("volume rm data while in use: %v\n%s\nwant %s", err, out, want)
	}

	n.MustDocker("service", "rm", "writer")
	testenv.WaitFor(t, 60*time.Second, "the task container removed", func() (bool, string) {
		out, err := n.Docker("ps", "-aq", "--filter", "label=com.docker.swarm.service.name=writer")
		return err == nil && strings.TrimSpace(out) == "", out
	})
	if out := n.MustDocker("volume", "rm", "data"); out != "data\n" {
		t.Fatalf("volume rm data: %q", out)
	}
	if _, err := os.Stat(greeting); !os.IsNotExist(err) {
		t.Fatalf("data of the removed volume is still there: %v", err)
	}

	// The task's anonymous volume went with its container, as under dockerd.
	if anon := lines(n.MustDocker("volume", "ls", "-q", "--filter", "name=^[0-9a-f]{64}$")); len(anon) != 0 {
		t.Fatalf("anonymous volumes after the task container's removal: %q", anon)
	}
	// prune removes unused anonymous volumes only; --all the named ones too.
	anon := strings.TrimSpace(n.MustDocker("volume", "create"))
	if len(anon) != 64 {
		t.Fatalf("volume create without a name printed %q", anon)
	}
	if out := n.MustDocker("volume", "prune", "-f"); out != "Deleted Volumes:\n"+anon+"\n\nTotal reclaimed space: 0B\n" {
		t.Fatalf("volume prune -f:\n%s", out)
	}
	if out := n.MustDocker("volume", "prune", "-af"); out != "Deleted Volumes:\nv1\n\nTotal reclaimed space: 0B\n" {
		t.Fatalf("volume prune -af:\n%s", out)
	}
	if out := n.MustDocker("volume", "ls", "-q"); out != "" {
		t.Fatalf("volumes left: %q", out)
	}
}
