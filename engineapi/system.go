package engineapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"

	ctr "github.com/shoal-project/shoal/runtime/container"
	img "github.com/shoal-project/shoal/runtime/image"
)

// builderVersion is the Builder-Version the ping advertises: the classic builder, so
// clients do not try BuildKit sessions shoal does not serve.
const builderVersion = "1"

// registerSystemRoutes adds /_ping, /version, /info and /system/df.
func (s *Server) registerSystemRoutes(r gin.IRouter) {
	r.GET("/_ping", s.ping)
	r.HEAD("/_ping", s.ping)
	r.GET("/version", s.version)
	r.GET("/info", s.info)
	r.GET("/system/df", s.diskUsage)
	r.GET("/events", s.streamEvents)
}

// ping answers the client's version and feature probe. The docker CLI hides the swarm
// commands unless the Swarm header says active/manager.
func (s *Server) ping(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Docker-Experimental", "false")
	h.Set("Ostype", "linux")
	h.Set("Builder-Version", builderVersion)
	h.Set("Swarm", s.swarmStatus(c.Request.Context()))
	if c.Request.Method == http.MethodHead {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Content-Length", "0")
		c.Status(http.StatusOK)
		return
	}
	c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte("OK"))
}

// swarmStatus is the node's swarm membership as the ping's Swarm header spells it.
func (s *Server) swarmStatus(ctx context.Context) string {
	info := s.swarmInfo(ctx)
	if info.LocalNodeState != swarm.LocalNodeStateActive {
		return string(info.LocalNodeState)
	}
	if info.ControlAvailable {
		return "active/manager"
	}
	return "active/worker"
}

// swarmInfo is Swarm.Info, or an inactive node when there is no control plane.
func (s *Server) swarmInfo(ctx context.Context) swarm.Info {
	if s.cfg.Swarm == nil {
		return swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive}
	}
	info := s.cfg.Swarm.Info(ctx)
	if info.LocalNodeState == "" {
		info.LocalNodeState = swarm.LocalNodeStateInactive
	}
	if info.RemoteManagers == nil {
		info.RemoteManagers = []swarm.Peer{}
	}
	return info
}

// version answers `docker version`.
func (s *Server) version(c *gin.Context) {
	host := readHostFacts()
	details := map[string]string{
		"ApiVersion":    APIVersion,
		"MinAPIVersion": MinAPIVersion,
		"GitCommit":     buildCommit(),
		"GoVersion":     runtime.Version(),
		"Os":            runtime.GOOS,
		"Arch":          runtime.GOARCH,
		"KernelVersion": host.kernel,
		"BuildTime":     buildTime(),
		"Experimental":  "false",
	}
	c.JSON(http.StatusOK, system.VersionResponse{
		Platform: system.PlatformInfo{Name: "shoal"},
		Components: []system.ComponentVersion{
			{Name: "Engine", Version: s.cfg.Version, Details: details},
			// What runs the containers, in dockerd's words: runc (as a library,
			// no containerd) and docker-init (the shoal binary itself).
			{Name: "runc", Version: moduleVersion("github.com/opencontainers/runc"), Details: map[string]string{"GitCommit": moduleVersion("github.com/opencontainers/runc")}},
			{Name: "docker-init", Version: s.cfg.Version, Details: map[string]string{"GitCommit": buildCommit()}},
		},
		Version:       s.cfg.Version,
		APIVersion:    APIVersion,
		MinAPIVersion: MinAPIVersion,
		GitCommit:     buildCommit(),
		GoVersion:     runtime.Version(),
		Os:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		KernelVersion: host.kernel,
		BuildTime:     buildTime(),
	})
}

// info answers `docker info`.
func (s *Server) info(c *gin.Context) {
	info, err := s.systemInfo(c.Request.Context())
	if err != nil {
		writeError(c, err)
		return
	}
	if v := requestVersion(c); versionLess(v, "1.50") {
		legacy, err := legacyInfo(info, v)
		if err != nil {
			writeError(c, err)
			return
		}
		c.JSON(http.StatusOK, legacy)
		return
	}
	c.JSON(http.StatusOK, info)
}

// legacyInfo is info as a client of API version (below 1.50) reads it: with
// the fields later versions dropped, as Docker Engine writes them for it.
func legacyInfo(info system.Info, version string) (map[string]any, error) {
	data, err := json.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("encode info: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("encode info: %w", err)
	}
	// Clients before API 1.50 read these and, when the daemon sends no warnings,
	// warn about each false one. They ask whether bridged container traffic passes
	// iptables, which Docker's bridge networking needs; shoal's routed nftables
	// networking does not, so there is nothing to warn about.
	m["BridgeNfIptables"], m["BridgeNfIp6tables"] = true, true
	if versionLess(version, "1.49") {
		// Each commit's Expected, which API 1.49 dropped, is its ID.
		for _, k := range []string{"ContainerdCommit", "RuncCommit", "InitCommit"} {
			if commit, ok := m[k].(map[string]any); ok {
				commit["Expected"] = commit["ID"]
			}
		}
	}
	if reg, ok := m["RegistryConfig"].(map[string]any); ok && versionLess(version, "1.47") {
		// Dropped in API 1.47; dockerd 20.10 (API 1.41) writes them empty.
		reg["AllowNondistributableArtifactsCIDRs"] = []string{}
		reg["AllowNondistributableArtifactsHostnames"] = []string{}
	}
	return m, nil
}

// systemInfo gathers what `docker info` shows.
func (s *Server) systemInfo(ctx context.Context) (system.Info, error) {
	host := readHostFacts()
	info := system.Info{
		ID:                 engineID(host.hostname, s.cfg.DataRoot),
		Driver:             "overlay2",
		DriverStatus:       [][2]string{{"Backing Filesystem", backingFilesystem(s.cfg.DataRoot)}, {"Supports d_type", "true"}},
		Plugins:            system.PluginsInfo{Volume: []string{"local"}, Network: []string{"bridge", "overlay", "host", "null"}, Log: []string{"json-file"}},
		MemoryLimit:        true,
		SwapLimit:          true,
		CPUCfsPeriod:       true,
		CPUCfsQuota:        true,
		CPUShares:          true,
		CPUSet:             true,
		PidsLimit:          true,
		IPv4Forwarding:     true,
		OomKillDisable:     host.cgroupVersion == "1",
		NFd:                countOpenFiles(),
		NGoroutines:        runtime.NumGoroutine(),
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		LoggingDriver:      "json-file",
		CgroupDriver:       "cgroupfs",
		CgroupVersion:      host.cgroupVersion,
		NEventsListener:    s.events.listeners(),
		KernelVersion:      host.kernel,
		OperatingSystem:    host.osName,
		OSVersion:          host.osVersion,
		OSType:             runtime.GOOS,
		Architecture:       host.machine,
		IndexServerAddress: "https://index.docker.io/v1/",
		NCPU:               runtime.NumCPU(),
		MemTotal:           host.memTotal,
		DockerRootDir:      s.cfg.DataRoot,
		HTTPProxy:          os.Getenv("HTTP_PROXY"),
		HTTPSProxy:         os.Getenv("HTTPS_PROXY"),
		NoProxy:            os.Getenv("NO_PROXY"),
		Name:               host.hostname,
		Labels:             engineLabels(*s.labels.Load()),
		ServerVersion:      s.cfg.Version,
		Runtimes:           map[string]system.RuntimeWithStatus{"runc": {Runtime: system.Runtime{Path: "runc"}}},
		DefaultRuntime:     "runc",
		Swarm:              s.swarmInfo(ctx),
		LiveRestoreEnabled: true,
		RegistryConfig:     s.registryConfig(),
		Isolation:          "",
		InitBinary:         "docker-init", // the shoal binary itself, bound into containers started with --init
		RuncCommit:         system.Commit{ID: moduleVersion("github.com/opencontainers/runc")},
		// The seccomp filter task containers get by default, if compiled in.
		SecurityOptions: securityOptions(),
		CDISpecDirs:     []string{},
		Warnings:        []string{},
	}
	info.Warnings = append(info.Warnings, info.Swarm.Warnings...)
	if err := s.countContainers(ctx, &info); err != nil {
		return info, err
	}
	if s.cfg.Images != nil {
		imgs, err := s.cfg.Images.List(ctx)
		if err != nil {
			return info, fmt.Errorf("list images: %w", err)
		}
		info.Images = len(imgs)
	}
	return info, nil
}

// securityOptions is /info's SecurityOptions: the filter task containers get
// by default, in dockerd's words.
func securityOptions() []string {
	if ctr.SeccompEnabled() {
		return []string{"name=seccomp,profile=builtin"}
	}
	return []string{}
}

// countContainers fills the container counts of info.
func (s *Server) countContainers(ctx context.Context, info *system.Info) error {
	if s.cfg.Containers == nil {
		return nil
	}
	list, err := s.cfg.Containers.List(ctx, true)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	info.Containers = len(list)
	for _, c := range list {
		switch c.State {
		case container.StateRunning, container.StateRestarting:
			info.ContainersRunning++
		case container.StatePaused:
			info.ContainersPaused++
		default:
			info.ContainersStopped++
		}
	}
	return nil
}

// diskUsage answers `docker system df`: the images with the number of containers
// using each and the bytes they share, the containers with the size of what they
// wrote, and the volumes.
func (s *Server) diskUsage(c *gin.Context) {
	ctx := c.Request.Context()
	resp := struct {
		LayersSize int64
		Images     []image.Summary
		Containers []container.Summary
		Volumes    []any
		BuildCache []any
	}{Images: []image.Summary{}, Containers: []container.Summary{}, Volumes: []any{}, BuildCache: []any{}}
	users := map[string]int{} // image ID -> containers using it
	if s.cfg.Containers != nil {
		list, err := s.cfg.Containers.List(ctx, true)
		if err != nil {
			writeError(c, fmt.Errorf("list containers: %w", err))
			return
		}
		for i := range list {
			users[list[i].ImageID]++
			// A container removed since the list is skipped, not an error.
			if rw, rootFs, err := s.cfg.Containers.Size(ctx, list[i].ID); err == nil {
				list[i].SizeRw, list[i].SizeRootFs = rw, rootFs
			}
		}
		resp.Containers = list
	}
	if s.cfg.Images != nil {
		imgs, err := s.cfg.Images.List(ctx)
		if err != nil {
			writeError(c, fmt.Errorf("list images: %w", err))
			return
		}
		resp.LayersSize, resp.Images = img.DiskUsage(imgs, users)
	}
	vols, err := s.volumeUsage(ctx)
	if err != nil {
		writeError(c, err)
		return
	}
	for _, v := range vols {
		resp.Volumes = append(resp.Volumes, v)
	}
	if versionLess(requestVersion(c), "1.44") {
		c.JSON(http.StatusOK, struct {
			LayersSize int64
			Images     []legacyImageSummary
			Containers []container.Summary
			Volumes    []any
			BuildCache []any
		}{resp.LayersSize, legacyImageSummaries(resp.Images), resp.Containers, resp.Volumes, resp.BuildCache})
		return
	}
	c.JSON(http.StatusOK, resp)
}

// hostFacts are the properties of the machine `docker info` and `docker version` show.
type hostFacts struct {
	hostname      string
	kernel        string
	machine       string
	osName        string
	osVersion     string
	cgroupVersion string
	memTotal      int64
}

// readHostFacts reads them from uname, /etc/os-release, /proc/meminfo and the cgroup
// mount; what cannot be read is left empty.
func readHostFacts() hostFacts {
	var h hostFacts
	h.hostname, _ = os.Hostname()
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		h.kernel = unix.ByteSliceToString(u.Release[:])
		h.machine = unix.ByteSliceToString(u.Machine[:])
	}
	if h.machine == "" {
		h.machine = runtime.GOARCH
	}
	h.osName, h.osVersion = readOSRelease("/etc/os-release")
	h.cgroupVersion = detectCgroupVersion("/sys/fs/cgroup")
	h.memTotal = readMemTotal("/proc/meminfo")
	return h
}

// readOSRelease returns PRETTY_NAME and VERSION_ID of an os-release file.
func readOSRelease(path string) (name, version string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "Linux", ""
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, `"'`)
		}
		switch k {
		case "PRETTY_NAME":
			name = v
		case "VERSION_ID":
			version = v
		}
	}
	if name == "" {
		name = "Linux"
	}
	return name, version
}

// detectCgroupVersion is "2" when the unified hierarchy is mounted at root, else "1".
func detectCgroupVersion(root string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "2"
	}
	return "1"
}

// backingFilesystem names the filesystem under dir as Docker's storage drivers do.
func backingFilesystem(dir string) string {
	var st unix.Statfs_t
	if dir == "" || unix.Statfs(dir, &st) != nil {
		return "<unknown>"
	}
	// Type is 32 bits on arm, where btrfs's magic reads as a negative number.
	switch uint32(st.Type) {
	case unix.EXT4_SUPER_MAGIC:
		return "extfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return "<unknown>"
}

// readMemTotal returns MemTotal of a meminfo file in bytes.
func readMemTotal(path string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, "MemTotal:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0
		}
		return kb * 1024
	}
	return 0
}

// countOpenFiles is the number of file descriptors this process holds.
func countOpenFiles() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(entries)
}

// engineID is a stable identifier for this engine, derived from what makes it unique
// on the machine, in the UUID form Docker uses.
func engineID(hostname, dataRoot string) string {
	sum := sha256.Sum256([]byte("shoal-engine\x00" + hostname + "\x00" + dataRoot))
	b := sum[:16]
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// buildCommit is the VCS revision the binary was built from, when Go recorded it.
func buildCommit() string {
	return buildSetting("vcs.revision")
}

// buildTime is the commit time of that revision, when Go recorded it.
func buildTime() string {
	return buildSetting("vcs.time")
}

// moduleVersion is the version of a module linked into the binary, "" if unknown.
func moduleVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, m := range bi.Deps {
		if m.Path == path {
			return m.Version
		}
	}
	return ""
}

func buildSetting(key string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, kv := range bi.Settings {
		if kv.Key == key {
			return kv.Value
		}
	}
	return ""
}

// SetLabels replaces the daemon's labels that `docker info` shows, as SIGHUP
// reloads them.
func (s *Server) SetLabels(labels map[string]string) {
	labels = maps.Clone(labels)
	s.labels.Store(&labels)
}

func (s *Server) registryConfig() *registry.ServiceConfig {
	if s.cfg.Registry == nil {
		return nil
	}
	return s.cfg.Registry()
}

// engineLabels are the daemon's labels as `docker info` lists them, sorted.
func engineLabels(m map[string]string) []string {
	out := []string{}
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
