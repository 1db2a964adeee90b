package container

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestMain(m *testing.M) {
	RunInit() // the test binary is re-executed as "<self> init" for every container
	if os.Getenv("SHOAL_TEST_DAEMON") != "" {
		os.Exit(runTestDaemon())
	}
	os.Exit(m.Run())
}

// fakeImages is an ImageSource with one busybox image, "busybox".
type fakeImages struct {
	layer string
	cfg   dockerspec.DockerOCIImageConfig
	arch  string // the image's architecture (GOARCH names); "" for none
}

func (f *fakeImages) ImageConfig(ctx context.Context, ref string) (string, dockerspec.DockerOCIImage, error) {
	if ref != "busybox" && ref != "busybox:latest" {
		return "", dockerspec.DockerOCIImage{}, notFoundError{msg: "No such image: " + ref}
	}
	img := dockerspec.DockerOCIImage{Config: f.cfg}
	img.Architecture, img.OS = f.arch, "linux"
	return "sha256:" + strings.Repeat("b", 64), img, nil
}

func (f *fakeImages) LayerDirs(ctx context.Context, id string) ([]string, error) {
	return []string{f.layer}, nil
}

// busyboxRootfs builds a rootfs from the host's static busybox.
func busyboxRootfs(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil { // as in a real image
		t.Fatal(err)
	}
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/app"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox-static is needed: %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet != "busybox" {
			_ = os.Symlink("busybox", filepath.Join(root, "bin", applet))
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

type testEnv struct {
	t      testing.TB
	root   string
	state  string
	images *fakeImages
	cgroup string
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	dir := t.TempDir()
	env := &testEnv{
		t: t, root: filepath.Join(dir, "containers"), state: filepath.Join(dir, "runc"),
		images: &fakeImages{layer: busyboxRootfs(t), cfg: dockerspec.DockerOCIImageConfig{
			ImageConfig: ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}},
		}},
		cgroup: "shoaltest-" + newID()[:8],
	}
	t.Cleanup(func() {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + env.cgroup)
		more, _ := filepath.Glob("/sys/fs/cgroup/" + env.cgroup)
		for _, d := range append(dirs, more...) {
			_ = os.Remove(d)
		}
	})
	return env
}

// open starts a Manager on the env's dirs; at cleanup every container is removed.
func (e *testEnv) open() *Manager {
	e.t.Helper()
	m, err := New(context.Background(), Config{
		Root: e.root, StateRoot: e.state, Images: e.images, CgroupParent: e.cgroup,
		Logger: slog.New(slog.NewTextHandler(testWriter{e.t}, nil)),
	})
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	e.t.Cleanup(func() { _ = m.Close() })
	return m
}

// cleanupContainers force-removes every container at the end of the test.
func cleanupContainers(t testing.TB, m *Manager) {
	t.Cleanup(func() {
		list, _ := m.List(context.Background(), true)
		for _, s := range list {
			if err := m.Remove(context.Background(), s.ID, true); err != nil {
				t.Errorf("cleanup remove %s: %v", s.ID, err)
			}
		}
	})
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// run creates and starts a container and returns its ID.
func run(t testing.TB, m *Manager, req CreateRequest) string {
	t.Helper()
	if req.Config.Image == "" {
		req.Config.Image = "busybox"
	}
	id, err := m.Create(ctxT(t), req)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := m.Start(ctxT(t), id); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return id
}

func waitExit(t *testing.T, m *Manager, id string) Exit {
	t.Helper()
	ch, err := m.Wait(ctxT(t), id)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	select {
	case e := <-ch:
		return e
	case <-time.After(30 * time.Second):
		t.Fatalf("container %s did not exit", id)
	}
	return Exit{}
}

// logText returns everything in the container's log (both streams).
func logText(t *testing.T, m *Manager, id string, opts LogOptions) (string, []LogEntry) {
	t.Helper()
	if opts.Tail == 0 {
		opts.Tail = -1
	}
	ch, err := m.Logs(ctxT(t), id, opts)
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	var b strings.Builder
	var entries []LogEntry
	for e := range ch {
		b.Write(e.Line)
		entries = append(entries, e)
	}
	return b.String(), entries
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isErrType[T any](err error) bool {
	var target T
	return errors.As(err, &target)
}
