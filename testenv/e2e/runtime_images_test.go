package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/api/types/image"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
	"github.com/shoal-project/shoal/testenv"
)

// nodeRegistry starts Debian's docker-registry inside the node's network
// namespace on addr (e.g. "127.0.0.1:5000"), where the node's daemon can reach
// it, and waits until it answers. It is stopped when the test ends.
func nodeRegistry(t *testing.T, n *testenv.Node, addr string, opts ...imagetest.RegistryOption) {
	t.Helper()
	dir := t.TempDir()
	cfg := imagetest.RegistryConfig(t, dir, addr, opts...)
	logFile, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := n.Command(ctx, imagetest.RegistryBinary, "serve", cfg)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start registry in node %s: %v", n.Name, err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		logFile.Close()
	})
	client := &http.Client{Transport: &http.Transport{DialContext: n.DialContext}, Timeout: time.Second}
	testenv.WaitFor(t, 30*time.Second, "registry in node "+n.Name, func() (bool, string) {
		resp, err := client.Get("http://" + addr + "/v2/")
		if err != nil {
			log, _ := os.ReadFile(logFile.Name())
			return false, err.Error() + "\n" + string(log)
		}
		resp.Body.Close()
		// A registry that wants credentials answers 401: it is up all the same.
		return resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized, resp.Status
	})
}

// pushToNode uploads img to ref on a registry inside the node's namespace.
func pushToNode(t *testing.T, n *testenv.Node, img v1.Image, ref string) {
	t.Helper()
	pushToNodeAs(t, n, img, ref, authn.Anonymous)
}

// pushToNodeAs is pushToNode with credentials.
func pushToNodeAs(t *testing.T, n *testenv.Node, img v1.Image, ref string, auth authn.Authenticator) {
	t.Helper()
	tag, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr := &http.Transport{DialContext: n.DialContext}
	if err := remote.Write(tag, img, remote.WithContext(ctx), remote.WithTransport(tr), remote.WithAuth(auth)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// docker load (docker-save and OCI archives), images, tag, image inspect and
// image rm behave as with Docker Engine.
func TestRuntimeImagesLocal(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "images")
	oci := imagetest.BusyboxOCIArchive(t, t.TempDir(), "oci/box:1", imagetest.WithCmd("echo", "from-oci"))
	if out := n.MustDocker("load", "-i", oci); !strings.Contains(out, "Loaded image: oci/box:1") {
		t.Fatalf("docker load of an OCI archive said %q", out)
	}
	if out := n.MustDocker("images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, "busybox:latest") || !strings.Contains(out, "oci/box:1") {
		t.Fatalf("docker images = %q", out)
	}
	n.MustDocker("tag", "busybox", "mybox:v1")
	var img image.InspectResponse
	inspect(t, n, "image", "mybox:v1", &img)
	if !contains(img.RepoTags, "busybox:latest") || !contains(img.RepoTags, "mybox:v1") || !strings.HasPrefix(img.ID, "sha256:") || img.Os != "linux" {
		t.Fatalf("image inspect mybox:v1 = tags %v id %q os %q", img.RepoTags, img.ID, img.Os)
	}
	ids := n.MustDocker("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	if !strings.Contains(ids, "mybox:v1 "+img.ID) || !strings.Contains(ids, "busybox:latest "+img.ID) {
		t.Fatalf("docker images after tag = %q", ids)
	}
	if out := n.MustDocker("image", "rm", "mybox:v1"); strings.TrimSpace(out) != "Untagged: mybox:v1" {
		t.Fatalf("image rm mybox:v1 = %q", out)
	}
	if out := n.MustDocker("images", "--format", "{{.Repository}}:{{.Tag}}"); strings.Contains(out, "mybox") || !strings.Contains(out, "busybox:latest") {
		t.Fatalf("docker images after rm = %q", out)
	}
	if out, err := n.Docker("image", "rm", "nope"); err == nil || !strings.Contains(out, "No such image: nope:latest") {
		t.Fatalf("image rm nope: %v %q", err, out)
	}
	if out, err := n.Docker("image", "inspect", "nope"); err == nil || !strings.Contains(out, "No such image: nope") {
		t.Fatalf("image inspect nope: %v %q", err, out)
	}
	// An image a task container uses cannot be removed without --force.
	n.MustDocker("service", "create", "-d", "--name", "user", "--stop-grace-period", "1s", "oci/box:1", "sleep", "300")
	taskContainer(t, n, "user")
	n.MustDocker("tag", "busybox", "mybox:v2")
	if out, err := n.Docker("image", "rm", img.ID); err == nil || !strings.Contains(out, "image is referenced in multiple repositories") {
		t.Fatalf("image rm by ID of an image with two tags: %v %q", err, out)
	}
	if out, err := n.Docker("image", "rm", "oci/box:1"); err == nil || !strings.Contains(out, `conflict: unable to remove repository reference "oci/box:1" (must force) - container `) {
		t.Fatalf("image rm of an image in use: %v %q", err, out)
	}

	// A service whose image is nowhere is rejected with Docker's message.
	n.MustDocker("service", "create", "-d", "--no-resolve-image", "--name", "ghost", "nosuch:1", "true")
	row := waitTaskError(t, n, "ghost", "No such image: nosuch:1")
	if !strings.HasPrefix(row.CurrentState, "Rejected") {
		t.Fatalf("ghost task = %+v", row)
	}
}

// Images come from a registry inside the node's namespace: docker pull with
// --insecure-registry, a service whose image is only in the registry, and a
// docker.io name through --registry-mirror.
func TestRuntimeImagesRegistry(t *testing.T) {
	t.Parallel()
	const addr = "127.0.0.1:5000"
	n := testenv.StartNode(t, "registry", testenv.Options{Args: []string{
		"--insecure-registry", addr, "--registry-mirror", "http://" + addr,
	}})
	n.MustDocker("swarm", "init", "--advertise-addr", "127.0.0.1")
	nodeRegistry(t, n, addr)
	pushToNode(t, n, imagetest.BusyboxImage(t, imagetest.WithCmd("sleep", "300")), addr+"/team/app:1")
	pushToNode(t, n, imagetest.BusyboxImage(t, imagetest.WithCmd("sleep", "301")), addr+"/team/svc:1")
	pushToNode(t, n, imagetest.BusyboxImage(t, imagetest.WithCmd("sleep", "302")), addr+"/library/mirrored:1")

	out := n.MustDocker("pull", addr+"/team/app:1")
	if !strings.Contains(out, "Status: Downloaded newer image for "+addr+"/team/app:1") || !strings.Contains(out, "Digest: sha256:") {
		t.Fatalf("docker pull said:\n%s", out)
	}
	if out := n.MustDocker("pull", addr+"/team/app:1"); !strings.Contains(out, "Status: Image is up to date for "+addr+"/team/app:1") {
		t.Fatalf("second docker pull said:\n%s", out)
	}
	var img image.InspectResponse
	inspect(t, n, "image", addr+"/team/app:1", &img)
	if len(img.RepoDigests) != 1 || !strings.HasPrefix(img.RepoDigests[0], addr+"/team/app@sha256:") {
		t.Fatalf("RepoDigests = %v", img.RepoDigests)
	}

	// The orchestrator pulls what the service needs.
	n.MustDocker("service", "create", "-d", "--name", "fromreg", "--stop-grace-period", "1s", addr+"/team/svc:1")
	c := taskContainer(t, n, "fromreg")
	if got := mustExec(t, n, c, "cat /proc/1/cmdline | tr '\\0' ' '"); got != "sleep 301" {
		t.Fatalf("task from the registry runs %q", got)
	}
	// As on Docker's swarm nodes, an image pulled by digest for a task has no tag.
	if out := n.MustDocker("images", "--digests", "--format", "{{.Repository}} {{.Digest}}"); !strings.Contains(out, addr+"/team/svc sha256:") {
		t.Fatalf("docker images after the service pulled = %q", out)
	}

	// A docker.io name is fetched from the mirror.
	if out := n.MustDocker("pull", "mirrored:1"); !strings.Contains(out, "docker.io/library/mirrored:1") {
		t.Fatalf("docker pull through the mirror said:\n%s", out)
	}
	if out := n.MustDocker("images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, "mirrored:1") {
		t.Fatalf("docker images after the mirror pull = %q", out)
	}
	if out, err := n.Docker("pull", addr+"/team/missing:1"); err == nil || strings.TrimSpace(out) != "Error response from daemon: manifest for "+addr+"/team/missing:1 not found: manifest unknown: manifest unknown" {
		t.Fatalf("pull of a missing image: %v %q", err, out)
	}
}
