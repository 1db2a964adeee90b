package image

import (
	"context"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
)

// progressLog collects the progress messages of a pull.
type progressLog struct {
	mu   sync.Mutex
	msgs []jsonstream.Message
}

func (p *progressLog) add(m jsonstream.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, m)
}

func (p *progressLog) statuses() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, m := range p.msgs {
		out = append(out, m.Status)
	}
	return out
}

func TestPullFromInsecureRegistry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg := imagetest.Registry(t)
	img := imagetest.BusyboxImage(t, imagetest.WithLayer(imagetest.File("etc/motd", "pulled\n", 0o644)))
	manifestDigest := imagetest.Push(t, img, reg+"/team/busybox:1.0")
	cfgName, _ := img.ConfigName()

	s := openStore(t, Options{Insecure: []string{reg}})
	var progress progressLog
	got, err := s.Pull(ctx, reg+"/team/busybox:1.0", nil, progress.add)
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if got.ID != cfgName.String() {
		t.Errorf("pulled ID %s, want config digest %s", got.ID, cfgName)
	}
	if !slices.Equal(got.RepoTags, []string{reg + "/team/busybox:1.0"}) ||
		!slices.Equal(got.RepoDigests, []string{reg + "/team/busybox@" + manifestDigest.String()}) {
		t.Errorf("RepoTags %v RepoDigests %v", got.RepoTags, got.RepoDigests)
	}
	st := progress.statuses()
	for _, want := range []string{
		"Pulling from team/busybox", "Pulling fs layer", "Pull complete",
		"Digest: " + manifestDigest.String(),
		"Status: Downloaded newer image for " + reg + "/team/busybox:1.0",
	} {
		if !slices.Contains(st, want) {
			t.Errorf("progress lacks %q: %q", want, st)
		}
	}
	if n := countOf(st, "Pull complete"); n != 2 {
		t.Errorf("%d Pull complete events, want one per layer (2)", n)
	}
	dirs, err := s.LayerDirs(ctx, got.ID)
	if err != nil || len(dirs) != 2 {
		t.Fatalf("LayerDirs = %v, %v", dirs, err)
	}
	checkBusyboxRootfs(t, dirs)

	// Pulling again changes nothing and says so.
	var again progressLog
	if _, err := s.Pull(ctx, reg+"/team/busybox:1.0", nil, again.add); err != nil {
		t.Fatalf("second Pull: %v", err)
	}
	st = again.statuses()
	if !slices.Contains(st, "Status: Image is up to date for "+reg+"/team/busybox:1.0") || countOf(st, "Already exists") != 2 {
		t.Errorf("second pull progress: %q", st)
	}

	// Pull by digest, and Get by digest reference.
	if _, err := s.Pull(ctx, reg+"/team/busybox@"+manifestDigest.String(), nil, nil); err != nil {
		t.Fatalf("Pull by digest: %v", err)
	}
	if byDigest, err := s.Get(ctx, reg+"/team/busybox@"+manifestDigest.String()); err != nil || byDigest.ID != got.ID {
		t.Errorf("Get by digest = %s, %v", byDigest.ID, err)
	}

	_, err = s.Pull(ctx, reg+"/team/busybox:missing", nil, nil)
	if !hasClass(err, "notfound") {
		t.Errorf("Pull of missing tag: %v, want NotFound", err)
	}

	dist, err := s.Distribution(ctx, reg+"/team/busybox:1.0", nil)
	if err != nil {
		t.Fatalf("Distribution: %v", err)
	}
	if dist.Descriptor.Digest.String() != manifestDigest.String() || dist.Descriptor.Size == 0 ||
		!strings.Contains(dist.Descriptor.MediaType, "manifest") {
		t.Errorf("Distribution descriptor = %+v", dist.Descriptor)
	}
	if len(dist.Platforms) != 1 || dist.Platforms[0].OS != "linux" || dist.Platforms[0].Architecture != runtime.GOARCH {
		t.Errorf("Distribution platforms = %+v", dist.Platforms)
	}
}

func TestPullThroughMirror(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg := imagetest.Registry(t)
	img := imagetest.BusyboxImage(t, imagetest.WithCmd("echo", "mirror"))
	manifestDigest := imagetest.Push(t, img, reg+"/library/mirrortest:latest")

	// The first mirror is down: the pull falls through to the next one.
	s := openStore(t, Options{Mirrors: []string{"http://" + deadAddr(t), "http://" + reg}})
	var progress progressLog
	got, err := s.Pull(ctx, "mirrortest", nil, progress.add)
	if err != nil {
		t.Fatalf("Pull through mirror: %v", err)
	}
	if !slices.Equal(got.RepoTags, []string{"mirrortest:latest"}) ||
		!slices.Equal(got.RepoDigests, []string{"mirrortest@" + manifestDigest.String()}) {
		t.Errorf("RepoTags %v RepoDigests %v", got.RepoTags, got.RepoDigests)
	}
	if !slices.Contains(progress.statuses(), "Status: Downloaded newer image for mirrortest:latest") ||
		!slices.Contains(progress.statuses(), "Pulling from library/mirrortest") {
		t.Errorf("progress: %q", progress.statuses())
	}
	if byName, err := s.Get(ctx, "docker.io/library/mirrortest"); err != nil || byName.ID != got.ID {
		t.Errorf("Get docker.io name = %v, %v", byName.ID, err)
	}
	dist, err := s.Distribution(ctx, "mirrortest:latest", nil)
	if err != nil || dist.Descriptor.Digest.String() != manifestDigest.String() {
		t.Errorf("Distribution through mirror = %+v, %v", dist, err)
	}
}

func TestPullWithAuth(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg := imagetest.Registry(t, imagetest.WithBasicAuth("alice", "s3cret"))
	imagetest.PushAs(t, imagetest.BusyboxImage(t), reg+"/private/busybox:1", "alice", "s3cret")

	s := openStore(t, Options{Insecure: []string{reg}})
	if _, err := s.Pull(ctx, reg+"/private/busybox:1", nil, nil); !hasClass(err, "forbidden") {
		t.Errorf("anonymous Pull of private image: %v, want Forbidden", err)
	}
	bad := &registry.AuthConfig{Username: "alice", Password: "wrong"}
	if _, err := s.Pull(ctx, reg+"/private/busybox:1", bad, nil); !hasClass(err, "forbidden") {
		t.Errorf("Pull with wrong password: %v, want Forbidden", err)
	}
	good := &registry.AuthConfig{Username: "alice", Password: "s3cret", ServerAddress: reg}
	img, err := s.Pull(ctx, reg+"/private/busybox:1", good, nil)
	if err != nil {
		t.Fatalf("Pull with credentials: %v", err)
	}
	if !slices.Equal(img.RepoTags, []string{reg + "/private/busybox:1"}) {
		t.Errorf("RepoTags = %v", img.RepoTags)
	}
}

// deadAddr returns a 127.0.0.1 address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestDistributionUnreachableRegistry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dead := deadAddr(t)
	s := openStore(t, Options{Insecure: []string{dead}})
	start := time.Now()
	_, err := s.Distribution(ctx, dead+"/gone/busybox:1", nil)
	if !hasClass(err, "unavailable") {
		t.Fatalf("Distribution of unreachable registry: %v, want Unavailable", err)
	}
	if _, err := s.Pull(ctx, dead+"/gone/busybox:1", nil, nil); !hasClass(err, "unavailable") {
		t.Errorf("Pull from unreachable registry: %v, want Unavailable", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("unreachable registry took %v to report", d)
	}
}

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}
