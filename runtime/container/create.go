package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// CreateRequest describes a container to create.
type CreateRequest struct {
	// Name is unique on the node; Docker's rules [a-zA-Z0-9][a-zA-Z0-9_.-]+.
	// Empty means a generated name.
	Name string
	// Config is the container's portable configuration; the image's config
	// fills what it leaves unset.
	Config ctypes.Config
	// HostConfig is the node-specific configuration (mounts, resources, ...).
	HostConfig ctypes.HostConfig
	// NetNSPath is a network namespace to join; "" means a new one with only lo.
	NetNSPath string
	// IPAddress is the container's address on its bridge, with the bridge's prefix
	// length ("172.30.0.5/16") or without; for /etc/hosts and inspect.
	IPAddress string
	// Gateway is the bridge's address, the container's default route (inspect).
	Gateway string
	// MacAddress is the MAC of the container's interface (inspect).
	MacAddress string
	// NetworkID is the 64-hex ID inspect shows for the bridge network.
	NetworkID string
	// Files are given to the container in memory only (secrets, configs).
	Files []File
	// Networks are the container's endpoints on networks other than the
	// bridge (a task's overlay networks), for inspect and /etc/hosts.
	Networks []NetworkEndpoint
}

// NetworkEndpoint is a container's interface on a named network.
type NetworkEndpoint struct {
	// Name and ID are the network's.
	Name, NetworkID string
	// Address is the container's, with the network's prefix length.
	Address netip.Prefix
	Gateway netip.Addr `json:",omitzero"`
	MAC     string     `json:",omitempty"`
	Aliases []string   `json:",omitempty"`
}

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Create records a new container from req, merging in the image's config the way
// dockerd does, and prepares its directory (overlay dirs, hostname, hosts,
// resolv.conf). It returns the 64-hex ID; the container is "created".
func (m *Manager) Create(ctx context.Context, req CreateRequest) (string, error) {
	if err := validateCreate(req); err != nil {
		return "", err
	}
	if req.HostConfig.Init != nil && *req.HostConfig.Init && m.cfg.InitBinary == "" {
		return "", errInvalidf("HostConfig.Init: this runtime has no init binary configured")
	}
	imageID, img, err := m.cfg.Images.ImageConfig(ctx, req.Config.Image)
	if err != nil {
		return "", fmt.Errorf("create container: %w", err)
	}
	lower, err := m.cfg.Images.LayerDirs(ctx, imageID)
	if err != nil {
		return "", fmt.Errorf("create container from %s: layers: %w", req.Config.Image, err)
	}
	if len(lower) == 0 {
		return "", fmt.Errorf("create container from %s: image has no layers", req.Config.Image)
	}
	cfg := mergeImageConfig(req.Config, img.Config)
	argv := append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
	if len(argv) == 0 {
		return "", errInvalidf("no command specified")
	}
	id := newID()
	if cfg.Hostname == "" {
		cfg.Hostname = defaultHostname(id, req.HostConfig.NetworkMode)
	}
	name := strings.TrimPrefix(req.Name, "/")
	if name == "" {
		name = "shoal_" + id[:12]
	}
	rec := record{
		ID: id, Name: name, Created: now(), Config: cfg, HostConfig: req.HostConfig,
		ImageID: imageID, ImageArchitecture: img.Architecture, Path: argv[0], Args: argv[1:], NetNSPath: req.NetNSPath,
		Gateway: req.Gateway, MacAddress: req.MacAddress, NetworkID: req.NetworkID, Networks: req.Networks,
		LowerDirs: lower,
		State:     runState{Status: statusCreated},
	}
	rec.IPAddress, rec.IPPrefixLen = splitAddress(req.IPAddress)
	rec.HostConfig.Mounts = append([]mount.Mount(nil), req.HostConfig.Mounts...)
	for i, mnt := range rec.HostConfig.Mounts {
		if mnt.Type == mount.TypeVolume && mnt.Source == "" {
			rec.HostConfig.Mounts[i].Source = newID() // anonymous volume, named once
		}
	}
	if rec.Mounts, err = m.resolveMounts(rec); err != nil {
		return "", err
	}
	c := &container{dir: filepath.Join(m.cfg.Root, id), rec: rec}

	m.mu.Lock()
	if other, taken := m.byName[name]; taken {
		m.mu.Unlock()
		return "", errConflictf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, other)
	}
	m.byName[name] = id // reserve while preparing
	m.mu.Unlock()

	err = m.prepareDir(c)
	if err == nil {
		c.rec.Files, err = mountFiles(c.dir, req.Files)
	}
	if err != nil {
		os.RemoveAll(c.dir)
		m.mu.Lock()
		delete(m.byName, name)
		m.mu.Unlock()
		return "", fmt.Errorf("create container %s: %w", name, err)
	}
	m.mu.Lock()
	err = m.persistLocked(c)
	if err == nil {
		m.byID[id] = c
	} else {
		delete(m.byName, name)
	}
	m.mu.Unlock()
	if err != nil {
		unmountFiles(c.dir)
		os.RemoveAll(c.dir)
		return "", err
	}
	if err := m.logs.add(c); err != nil {
		m.log.Warn("tail container output", "id", id, "err", err)
	}
	m.emit(c, "create", 0)
	return id, nil
}

// splitAddress splits "172.30.0.5/16" into the address and the prefix length; a
// bare address has length 0.
func splitAddress(s string) (string, int) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr().String(), p.Bits()
	}
	return s, 0
}

func validateCreate(req CreateRequest) error {
	if req.Name != "" && !validName.MatchString(req.Name) {
		return errInvalidf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", req.Name)
	}
	if req.Config.Image == "" {
		return errInvalidf("no image specified")
	}
	if req.Config.Tty {
		return errInvalidf("a TTY for the container's main process is not supported by this runtime")
	}
	return checkSecurity(req.HostConfig)
}

// prepareDir creates the container directory with its overlay dirs, host files
// and empty raw output files.
func (m *Manager) prepareDir(c *container) error {
	if err := os.MkdirAll(c.dir, 0o711); err != nil {
		return err
	}
	// The overlay's root takes its mode from upper: it must be 0755 like an image root.
	for d, mode := range map[string]os.FileMode{"upper": 0o755, "work": 0o700, "rootfs": 0o755} {
		if err := os.Mkdir(filepath.Join(c.dir, d), mode); err != nil {
			return err
		}
		if err := os.Chmod(filepath.Join(c.dir, d), mode); err != nil {
			return err
		}
	}
	if err := writeHostFiles(c.dir, c.rec); err != nil {
		return err
	}
	for _, s := range []string{"stdout", "stderr"} {
		f, err := os.OpenFile(filepath.Join(c.dir, s), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		f.Close()
	}
	return nil
}

// mergeImageConfig fills what the request leaves unset from the image.
func mergeImageConfig(req ctypes.Config, img dockerspec.DockerOCIImageConfig) ctypes.Config {
	out := req
	if out.User == "" {
		out.User = img.User
	}
	if len(out.Entrypoint) == 0 {
		if len(out.Cmd) == 0 {
			out.Cmd = img.Cmd
		}
		if out.Entrypoint == nil {
			out.Entrypoint = img.Entrypoint
		}
	}
	out.Env = mergeEnv(img.Env, req.Env)
	if out.WorkingDir == "" {
		out.WorkingDir = img.WorkingDir
	}
	if out.StopSignal == "" {
		out.StopSignal = img.StopSignal
	}
	if len(img.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range img.Labels {
			labels[k] = v
		}
		for k, v := range req.Labels {
			labels[k] = v
		}
		out.Labels = labels
	}
	out.Healthcheck = mergeHealthcheck(req.Healthcheck, img.Healthcheck)
	return out
}

func mergeHealthcheck(req, img *dockerspec.HealthcheckConfig) *dockerspec.HealthcheckConfig {
	if req == nil {
		return img
	}
	if img == nil {
		return req
	}
	h := *req
	if len(h.Test) == 0 {
		h.Test = img.Test
	}
	if h.Interval == 0 {
		h.Interval = img.Interval
	}
	if h.Timeout == 0 {
		h.Timeout = img.Timeout
	}
	if h.StartPeriod == 0 {
		h.StartPeriod = img.StartPeriod
	}
	if h.Retries == 0 {
		h.Retries = img.Retries
	}
	return &h
}

// mergeEnv is the container's environment as dockerd makes it: the
// container's own variables first, as given, then the image's whose name the
// container does not set.
func mergeEnv(image, own []string) []string {
	if len(own) == 0 {
		return slices.Clone(image)
	}
	set := map[string]bool{}
	for _, kv := range own {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = true
	}
	out := slices.Clone(own)
	for _, kv := range image {
		if k, _, _ := strings.Cut(kv, "="); !set[k] {
			out = append(out, kv)
		}
	}
	return out
}

func newID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("read random bytes: %v", err))
	}
	return hex.EncodeToString(b)
}

func isFullID(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// defaultHostname is a container's hostname when none is given: the node's on
// the host network (as dockerd names them), otherwise its short ID.
func defaultHostname(id string, mode ctypes.NetworkMode) string {
	if mode.IsHost() {
		if h, err := os.Hostname(); err == nil && h != "" {
			return h
		}
	}
	return id[:12]
}
