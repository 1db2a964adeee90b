package engineapi

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	ctr "github.com/shoal-project/shoal/runtime/container"
	img "github.com/shoal-project/shoal/runtime/image"
)

// ctrFake is the node's containers: fixed summaries and log lines, and an exec that
// understands a few commands (hostname, cat, fail, sleep).
type ctrFake struct {
	mu       sync.Mutex
	list     []container.Summary
	tty      map[string]bool
	logs     map[string][]ctr.LogEntry
	hostname string

	stopped   []string
	stopAfter *time.Duration
	killed    map[string]syscall.Signal
	execs     []ctr.ExecConfig
	logOpts   ctr.LogOptions

	psArgs     string
	statsCalls int
	// stopAfterStats, when > 0, makes a running container exit after that many
	// samples of its stats.
	stopAfterStats int

	// files is every container's filesystem for docker cp: absolute path ->
	// content, directories implied by the paths below them.
	files map[string]string
}

func newCtrFake(list ...container.Summary) *ctrFake {
	return &ctrFake{list: list, tty: map[string]bool{}, logs: map[string][]ctr.LogEntry{},
		hostname: "web-host", killed: map[string]syscall.Signal{},
		files: map[string]string{"/etc/hostname": "web-host\n", "/etc/os-release": "ID=busybox\n", "/tmp/.keep": ""}}
}

func (f *ctrFake) findLocked(ref string) (container.Summary, error) {
	for _, c := range f.list {
		if c.ID == ref || (len(ref) >= 3 && strings.HasPrefix(c.ID, ref)) {
			return c, nil
		}
		for _, n := range c.Names {
			if n == ref || n == "/"+ref {
				return c, nil
			}
		}
	}
	return container.Summary{}, &svcFakeErr{notFound: true, msg: "No such container: " + ref}
}

func (f *ctrFake) List(context.Context, bool) ([]container.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]container.Summary(nil), f.list...), nil
}

func (f *ctrFake) Inspect(_ context.Context, ref string) (container.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.findLocked(ref)
	if err != nil {
		return container.InspectResponse{}, err
	}
	running := c.State == container.StateRunning
	return container.InspectResponse{
		ID: c.ID, Name: c.Names[0], Image: c.ImageID, Created: time.Unix(c.Created, 0).UTC().Format(time.RFC3339Nano),
		State:  &container.State{Status: c.State, Running: running},
		Config: &container.Config{Image: c.Image, Labels: c.Labels, Tty: f.tty[c.ID], Hostname: f.hostname},
	}, nil
}

func (f *ctrFake) Logs(ctx context.Context, ref string, opts ctr.LogOptions) (<-chan ctr.LogEntry, error) {
	f.mu.Lock()
	c, err := f.findLocked(ref)
	entries := append([]ctr.LogEntry(nil), f.logs[c.ID]...)
	f.logOpts = opts
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	ch := make(chan ctr.LogEntry)
	go func() {
		defer close(ch)
		for _, e := range entries {
			select {
			case ch <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

func (f *ctrFake) Exec(ctx context.Context, ref string, cfg ctr.ExecConfig, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	f.mu.Lock()
	_, err := f.findLocked(ref)
	f.execs = append(f.execs, cfg)
	host := f.hostname
	f.mu.Unlock()
	if err != nil {
		return -1, err
	}
	switch cfg.Cmd[0] {
	case "hostname":
		_, _ = fmt.Fprintln(stdout, host)
		return 0, nil
	case "cat":
		if stdin == nil {
			return 0, nil
		}
		// Line by line, so that each line reaches the client as it comes.
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			if _, err := fmt.Fprintln(stdout, sc.Text()); err != nil {
				return 1, nil
			}
		}
		return 0, nil
	case "fail":
		_, _ = io.WriteString(stdout, "partial output\n")
		_, _ = io.WriteString(stderr, "something broke\n")
		return 3, nil
	case "sleep":
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
		}
		return 0, nil
	}
	return 126, fmt.Errorf("exec failed: exec: %q: executable file not found in $PATH", cfg.Cmd[0])
}

func (f *ctrFake) Stop(_ context.Context, ref string, timeout *time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.findLocked(ref)
	if err != nil {
		return err
	}
	f.stopped = append(f.stopped, c.ID)
	f.stopAfter = timeout
	return nil
}

func (f *ctrFake) Kill(_ context.Context, ref string, sig syscall.Signal) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.findLocked(ref)
	if err != nil {
		return err
	}
	f.killed[c.ID] = sig
	return nil
}

func (f *ctrFake) Subscribe(context.Context) <-chan ctr.Event { return make(chan ctr.Event) }

// Top lists two processes of a running container; ps args "bogus" fail as ps does.
func (f *ctrFake) Top(_ context.Context, ref, psArgs string) (container.TopResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.findLocked(ref)
	if err != nil {
		return container.TopResponse{}, err
	}
	f.psArgs = psArgs
	if c.State != container.StateRunning {
		return container.TopResponse{}, &svcFakeErr{clash: true, msg: "container " + c.ID + " is not running"}
	}
	if psArgs == "bogus" {
		return container.TopResponse{}, fmt.Errorf("ps: error: garbage option")
	}
	return container.TopResponse{
		Titles:    []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"},
		Processes: [][]string{{"root", "4242", "4200", "0", "10:00", "?", "00:00:00", "sleep 1000"}},
	}, nil
}

// Stats gives samples whose counters grow by a fixed step per call: 0.5 s of CPU
// time and 1 s of host CPU time (two CPUs), 1 KiB received, 2 KiB sent.
func (f *ctrFake) Stats(_ context.Context, ref string) (container.StatsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.findLocked(ref)
	if err != nil {
		return container.StatsResponse{}, err
	}
	if c.State != container.StateRunning {
		return container.StatsResponse{}, &svcFakeErr{clash: true, msg: "container " + c.ID + " is not running"}
	}
	f.statsCalls++
	n := uint64(f.statsCalls)
	if f.stopAfterStats > 0 && f.statsCalls >= f.stopAfterStats {
		for i := range f.list {
			if f.list[i].ID == c.ID {
				f.list[i].State = container.StateExited
			}
		}
	}
	return container.StatsResponse{
		ID: c.ID, Name: c.Names[0], OSType: "linux", Read: time.Now(),
		CPUStats: container.CPUStats{
			CPUUsage:    container.CPUUsage{TotalUsage: n * 5e8, PercpuUsage: []uint64{n * 25e7, n * 25e7}},
			SystemUsage: n * 1e9, OnlineCPUs: 2,
		},
		MemoryStats: container.MemoryStats{Usage: 20 << 20, Limit: 64 << 20,
			Stats: map[string]uint64{"total_inactive_file": 4 << 20}},
		PidsStats: container.PidsStats{Current: 2},
		Networks:  map[string]container.NetworkStats{"eth0": {RxBytes: n * 1024, TxBytes: n * 2048}},
		BlkioStats: container.BlkioStats{IoServiceBytesRecursive: []container.BlkioStatEntry{
			{Major: 8, Minor: 0, Op: "Read", Value: 4096}, {Major: 8, Minor: 0, Op: "Write", Value: 8192},
		}},
	}, nil
}

// imageFake is an image store in memory. Load reads an "archive" that is a list of
// references, one per line; Pull knows every reference but those starting with
// "nosuch", and fails half-way for those starting with "broken".
type imageFake struct {
	mu      sync.Mutex
	images  []img.Image
	seq     int
	removed []string
	auth    *registry.AuthConfig
}

func (f *imageFake) addImage(tags ...string) img.Image {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	created := time.Date(2026, 9, f.seq, 8, 0, 0, 0, time.UTC)
	im := img.Image{
		ID:       fmt.Sprintf("sha256:%02d%s", f.seq, strings.Repeat("ab", 31)),
		RepoTags: tags, Created: created, Size: int64(1000 * f.seq),
		DiffIDs: []string{"sha256:layer"}, LayerSizes: []int64{int64(1000 * f.seq)},
		Config: dockerspec.DockerOCIImage{
			Image: ocispec.Image{Created: &created, Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"},
				History: []ocispec.History{{Created: &created, CreatedBy: "ADD rootfs /"}, {Created: &created, CreatedBy: "CMD sh", EmptyLayer: true}}},
			Config: dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{Cmd: []string{"sh"}, Labels: map[string]string{"seq": fmt.Sprint(f.seq)}}},
		},
	}
	f.images = append(f.images, im)
	return im
}

func familiarTag(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.FamiliarString(reference.TagNameOnly(named))
}

func (f *imageFake) findLocked(ref string) (int, error) {
	want := familiarTag(ref)
	for i, im := range f.images {
		if im.ID == ref || strings.HasPrefix(im.ID, "sha256:"+ref) || strings.HasPrefix(im.ID, ref) && strings.HasPrefix(ref, "sha256:") {
			return i, nil
		}
		for _, t := range im.RepoTags {
			if t == want {
				return i, nil
			}
		}
	}
	return 0, &svcFakeErr{notFound: true, msg: "No such image: " + ref}
}

func (f *imageFake) Load(_ context.Context, r io.Reader) ([]string, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var refs []string
	for _, line := range strings.Fields(string(data)) {
		if line == "garbage" {
			return refs, fmt.Errorf("unrecognized image archive: no manifest.json or index.json")
		}
		im := f.addImage(familiarTag(line))
		refs = append(refs, im.RepoTags[0])
	}
	return refs, nil
}

func (f *imageFake) Pull(_ context.Context, ref string, auth *registry.AuthConfig, progress func(jsonstream.Message)) (img.Image, error) {
	f.mu.Lock()
	f.auth = auth
	f.mu.Unlock()
	if strings.HasPrefix(ref, "nosuch") {
		return img.Image{}, &svcFakeErr{notFound: true, msg: "pull access denied for nosuch, repository does not exist or may require 'docker login'"}
	}
	named, _ := reference.ParseNormalizedNamed(ref)
	tag := "latest"
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	}
	progress(jsonstream.Message{Status: "Pulling from " + reference.Path(named), ID: tag})
	progress(jsonstream.Message{Status: "Pulling fs layer", ID: "layer0000001"})
	if strings.HasPrefix(ref, "broken") {
		return img.Image{}, fmt.Errorf("read layer layer0000001: unexpected EOF")
	}
	progress(jsonstream.Message{Status: "Pull complete", ID: "layer0000001"})
	im := f.addImage(ref)
	progress(jsonstream.Message{Status: "Digest: sha256:" + strings.Repeat("cd", 32)})
	progress(jsonstream.Message{Status: "Status: Downloaded newer image for " + ref})
	return im, nil
}

func (f *imageFake) Get(_ context.Context, ref string) (img.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.findLocked(ref)
	if err != nil {
		return img.Image{}, err
	}
	return f.images[i], nil
}

func (f *imageFake) List(context.Context) ([]img.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]img.Image(nil), f.images...), nil
}

func (f *imageFake) Tag(_ context.Context, ref, newRef string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.findLocked(ref)
	if err != nil {
		return err
	}
	f.images[i].RepoTags = append(f.images[i].RepoTags, newRef)
	return nil
}

func (f *imageFake) Remove(_ context.Context, ref string, force bool) ([]image.DeleteResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.findLocked(ref)
	if err != nil {
		return nil, err
	}
	f.removed = append(f.removed, ref)
	im := &f.images[i]
	want := familiarTag(ref)
	var out []image.DeleteResponse
	kept := im.RepoTags[:0]
	for _, t := range im.RepoTags {
		if t == want {
			out = append(out, image.DeleteResponse{Untagged: t})
			continue
		}
		kept = append(kept, t)
	}
	im.RepoTags = kept
	if len(kept) == 0 {
		out = append(out, image.DeleteResponse{Deleted: im.ID})
		f.images = append(f.images[:i], f.images[i+1:]...)
	}
	return out, nil
}

func (f *imageFake) Login(_ context.Context, auth *registry.AuthConfig) error {
	if auth.Password != "good" {
		return unauthorizedFake{}
	}
	return nil
}

type unauthorizedFake struct{}

func (unauthorizedFake) Error() string {
	return "login attempt to http://registry/v2/ failed with status: 401 Unauthorized"
}
func (unauthorizedFake) Unauthorized() bool { return true }

func (f *imageFake) Distribution(_ context.Context, ref string, _ *registry.AuthConfig) (registry.DistributionInspect, error) {
	if _, err := f.Get(context.Background(), ref); err != nil {
		return registry.DistributionInspect{}, err
	}
	return registry.DistributionInspect{
		Descriptor: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.Digest("sha256:" + strings.Repeat("cd", 32)), Size: 527},
		Platforms:  []ocispec.Platform{{Architecture: "amd64", OS: "linux"}},
	}, nil
}

// Pause marks a running container paused, as the runtime does, with its errors.
func (f *ctrFake) Pause(_ context.Context, ref string) error {
	return f.setPaused(ref, true)
}

// Unpause marks a paused container running again.
func (f *ctrFake) Unpause(_ context.Context, ref string) error {
	return f.setPaused(ref, false)
}

func (f *ctrFake) setPaused(ref string, pause bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.findLocked(ref)
	if err != nil {
		return err
	}
	from, to, msg := container.StateRunning, container.StatePaused, "Container %s is not running"
	if !pause {
		from, to, msg = container.StatePaused, container.StateRunning, "Container %s is not paused"
	}
	if pause && c.State == container.StatePaused {
		msg = "Container %s is already paused"
	}
	if c.State != from {
		return &svcFakeErr{clash: true, msg: fmt.Sprintf(msg, c.ID)}
	}
	for i := range f.list {
		if f.list[i].ID == c.ID {
			f.list[i].State = to
		}
	}
	return nil
}

// Prune removes the containers that are neither running nor paused.
func (f *ctrFake) Prune(_ context.Context, opts ctr.PruneOptions) (container.PruneReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rep := container.PruneReport{ContainersDeleted: []string{}}
	kept := f.list[:0]
	for _, c := range f.list {
		stopped := c.State != container.StateRunning && c.State != container.StatePaused
		if stopped && (opts.Until.IsZero() || time.Unix(c.Created, 0).Before(opts.Until)) &&
			(opts.Match == nil || opts.Match(c.Labels)) {
			rep.ContainersDeleted = append(rep.ContainersDeleted, c.ID)
			rep.SpaceReclaimed += 100
			continue
		}
		kept = append(kept, c)
	}
	f.list = kept
	return rep, nil
}

// Prune removes the images opts selects, as the store does: untagged each
// tag, then deleted; each image frees its Size.
func (f *imageFake) Prune(_ context.Context, opts img.PruneOptions) (image.PruneReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rep := image.PruneReport{ImagesDeleted: []image.DeleteResponse{}}
	kept := f.images[:0]
	for _, im := range f.images {
		if (!opts.All && len(im.RepoTags) > 0) || (opts.InUse != nil && opts.InUse(im.ID)) ||
			(!opts.Until.IsZero() && !im.Created.Before(opts.Until)) ||
			(opts.Match != nil && !opts.Match(im.Config.Config.Labels)) {
			kept = append(kept, im)
			continue
		}
		for _, t := range im.RepoTags {
			rep.ImagesDeleted = append(rep.ImagesDeleted, image.DeleteResponse{Untagged: t})
		}
		rep.ImagesDeleted = append(rep.ImagesDeleted, image.DeleteResponse{Deleted: im.ID})
		rep.SpaceReclaimed += uint64(im.Size)
	}
	f.images = kept
	return rep, nil
}

// StatPath describes a file or an implied directory of the fake filesystem.
func (f *ctrFake) StatPath(_ context.Context, ref, p string) (container.PathStat, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.findLocked(ref); err != nil {
		return container.PathStat{}, err
	}
	return f.statLocked(ref, p)
}

func (f *ctrFake) statLocked(ref, p string) (container.PathStat, error) {
	abs := path.Clean("/" + p)
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if data, ok := f.files[abs]; ok {
		return container.PathStat{Name: path.Base(abs), Size: int64(len(data)), Mode: 0o644, Mtime: mtime}, nil
	}
	for name := range f.files {
		if abs == "/" || strings.HasPrefix(name, abs+"/") {
			return container.PathStat{Name: path.Base(abs), Size: 4096, Mode: os.ModeDir | 0o755, Mtime: mtime}, nil
		}
	}
	return container.PathStat{}, &svcFakeErr{notFound: true, msg: fmt.Sprintf("Could not find the file %s in container %s", p, ref)}
}

// ArchivePath archives a file, or a directory with everything below it.
func (f *ctrFake) ArchivePath(ctx context.Context, ref, p string) (io.ReadCloser, container.PathStat, error) {
	st, err := f.StatPath(ctx, ref, p)
	if err != nil {
		return nil, st, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	abs := path.Clean("/" + p)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if !st.Mode.IsDir() {
		data := f.files[abs]
		_ = tw.WriteHeader(&tar.Header{Name: st.Name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: st.Mtime})
		_, _ = io.WriteString(tw, data)
	} else {
		_ = tw.WriteHeader(&tar.Header{Name: st.Name + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: st.Mtime})
		names := slices.Sorted(maps.Keys(f.files))
		dirs := map[string]bool{}
		for _, name := range names {
			rel, ok := strings.CutPrefix(name, abs+"/")
			if !ok {
				continue
			}
			for d := path.Dir(rel); d != "." && !dirs[d]; d = path.Dir(d) {
				dirs[d] = true
				_ = tw.WriteHeader(&tar.Header{Name: st.Name + "/" + d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: st.Mtime})
			}
			_ = tw.WriteHeader(&tar.Header{Name: st.Name + "/" + rel, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.files[name])), ModTime: st.Mtime})
			_, _ = io.WriteString(tw, f.files[name])
		}
	}
	_ = tw.Close()
	return io.NopCloser(&b), st, nil
}

// ExtractToDir stores the archive's regular files below dir, which must be a directory.
func (f *ctrFake) ExtractToDir(_ context.Context, ref, dir string, content io.Reader, _ ctr.ExtractOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.findLocked(ref); err != nil {
		return err
	}
	st, err := f.statLocked(ref, dir)
	if err != nil {
		return err
	}
	if !st.Mode.IsDir() {
		return &svcFakeErr{invalid: true, msg: "extraction point is not a directory"}
	}
	tr := tar.NewReader(content)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &svcFakeErr{invalid: true, msg: err.Error()}
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		f.files[path.Join("/", dir, hdr.Name)] = string(data)
	}
}

// file returns what the fake filesystem holds at p.
func (f *ctrFake) file(p string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, ok := f.files[p]
	return data, ok
}

// Size: the fake records no file system, so it has no sizes to give.
func (f *ctrFake) Size(_ context.Context, id string) (int64, int64, error) {
	return 0, 0, notFoundError("No such container: " + id)
}
