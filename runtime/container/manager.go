package container

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/runc/libcontainer"
)

// Config configures a [Manager]. It is built by main.go.
type Config struct {
	// Root holds one persistent directory per container: <Root>/<id>/.
	Root string
	// StateRoot holds libcontainer state (e.g. /run/shoal/runc); it survives
	// daemon restarts, not reboots.
	StateRoot string
	// Images resolves image references and their layers.
	Images ImageSource
	// Volumes creates and finds the named volumes containers mount; nil keeps
	// them as bare directories under <Root>/../volumes/<name>.
	Volumes VolumeStore
	// InitArgs is how libcontainer re-execs this binary to set up a container.
	// libcontainer v1.5.2 always runs a sealed copy of /proc/self/exe with the
	// argument "init", so only the default []string{"/proc/self/exe", "init"} is
	// honoured; the binary must call [RunInit] when started that way.
	InitArgs []string
	// InitBinary is the host path of the init bound into containers that ask for
	// one (HostConfig.Init) as /sbin/docker-init; "" refuses such containers.
	InitBinary string
	// CgroupParent is the cgroupfs parent of every container cgroup; default "shoal".
	CgroupParent string
	// Logger receives the manager's logs; default slog.Default().
	Logger *slog.Logger
}

// ImageSource is what the manager needs of the image store.
type ImageSource interface {
	// ImageConfig returns the image ID and its configuration (run configuration
	// and platform) for ref; NotFound "No such image: ref".
	ImageConfig(ctx context.Context, ref string) (id string, img dockerspec.DockerOCIImage, err error)
	// LayerDirs returns unpacked layer dirs, lowest first (overlay lowerdirs).
	LayerDirs(ctx context.Context, id string) ([]string, error)
}

// Manager runs the containers of this node. It is safe for concurrent use.
type Manager struct {
	cfg    Config
	log    *slog.Logger
	events *eventHub
	logs   *tailer
	exits  *childExits

	mu     sync.Mutex // guards byID, byName and every container's mutable fields
	byID   map[string]*container
	byName map[string]string // name without "/" -> id

	ctx       context.Context // cancelled by Close; owns every goroutine
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New opens the containers under cfg.Root, re-adopts those still running (live
// restore) and marks the others exited.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Root == "" || cfg.StateRoot == "" {
		return nil, errors.New("container manager: Root and StateRoot are required")
	}
	if cfg.Images == nil {
		return nil, errors.New("container manager: Images is required")
	}
	if len(cfg.InitArgs) == 0 {
		cfg.InitArgs = []string{"/proc/self/exe", "init"}
	}
	if cfg.InitArgs[0] != "/proc/self/exe" || len(cfg.InitArgs) != 2 || cfg.InitArgs[1] != "init" {
		return nil, errInvalidf("container manager: InitArgs %q unsupported: libcontainer always re-execs /proc/self/exe init", cfg.InitArgs)
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "shoal"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for _, d := range []string{cfg.Root, cfg.StateRoot} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	mctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		cfg:    cfg,
		log:    cfg.Logger,
		byID:   map[string]*container{},
		byName: map[string]string{},
		ctx:    mctx,
		cancel: cancel,
	}
	m.events = newEventHub(m.log)
	t, err := newTailer(m.log)
	if err != nil {
		cancel()
		return nil, err
	}
	m.logs = t
	m.exits = newChildExits()
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		t.run()
	}()
	go func() {
		defer m.wg.Done()
		m.exits.run(mctx)
	}()
	if err := m.load(ctx); err != nil {
		_ = m.Close()
		return nil, err
	}
	return m, nil
}

// Close stops the manager's goroutines. Running containers keep running and are
// re-adopted by the next [New] on the same directories.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.cancel()
		m.closeErr = m.logs.close()
		m.wg.Wait()
	})
	return m.closeErr
}

// load reads every container directory under Root.
func (m *Manager) load(ctx context.Context) error {
	entries, err := os.ReadDir(m.cfg.Root)
	if err != nil {
		return fmt.Errorf("list containers in %s: %w", m.cfg.Root, err)
	}
	for _, e := range entries {
		if !e.IsDir() || !isFullID(e.Name()) {
			continue
		}
		dir := filepath.Join(m.cfg.Root, e.Name())
		rec, err := readRecord(dir)
		if errors.Is(err, os.ErrNotExist) {
			// Create or Remove was cut short: config.json is written first
			// and removed last.
			m.log.Info("discard incomplete container dir", "dir", dir)
			unmountRootfs(dir)
			unmountFiles(dir)
			_ = os.RemoveAll(dir)
			continue
		}
		if err != nil {
			m.log.Warn("skip unreadable container", "dir", dir, "err", err)
			continue
		}
		c := &container{dir: dir, rec: rec}
		m.mu.Lock()
		m.byID[rec.ID] = c
		m.byName[rec.Name] = rec.ID
		m.mu.Unlock()
		if err := m.logs.add(c); err != nil {
			m.log.Warn("tail container output", "id", rec.ID, "err", err)
		}
		if rec.State.Status != statusRunning {
			m.recoverUnrecordedRun(c)
		}
		if c.rec.State.Status == statusRunning {
			m.restore(ctx, c)
		}
	}
	return nil
}

// lookup resolves a full ID, a unique ID prefix or a name (with or without "/").
func (m *Manager) lookup(ref string) (*container, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lookupLocked(ref)
}

func (m *Manager) lookupLocked(ref string) (*container, error) {
	if ref == "" {
		return nil, errNoSuchContainer(ref)
	}
	if c, ok := m.byID[ref]; ok {
		return c, nil
	}
	if id, ok := m.byName[strings.TrimPrefix(ref, "/")]; ok {
		return m.byID[id], nil
	}
	var found *container
	for id, c := range m.byID {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, invalidError{msg: fmt.Sprintf("multiple IDs found with provided prefix: %s", ref)}
			}
			found = c
		}
	}
	if found == nil {
		return nil, errNoSuchContainer(ref)
	}
	return found, nil
}

func (m *Manager) stateDir(id string) string { return filepath.Join(m.cfg.StateRoot, id) }

// loadLibcontainer opens the libcontainer state of a running container.
func (m *Manager) loadLibcontainer(id string) (*libcontainer.Container, error) {
	lc, err := libcontainer.Load(m.cfg.StateRoot, id)
	if err != nil {
		return nil, fmt.Errorf("load runtime state of %s: %w", id, err)
	}
	return lc, nil
}

func now() time.Time { return time.Now().UTC() }
