package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/renameio/v2"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runc/libcontainer"
)

const (
	statusCreated = ctypes.StateCreated
	statusRunning = ctypes.StateRunning
	statusExited  = ctypes.StateExited
)

// record is what config.json holds: everything needed to start, inspect and
// re-adopt a container.
type record struct {
	ID         string
	Name       string // without the leading "/"
	Created    time.Time
	Config     ctypes.Config
	HostConfig ctypes.HostConfig
	ImageID    string
	// ImageArchitecture is the image's (GOARCH names): a 32-bit image on a 64-bit
	// node needs its compat system calls let through the seccomp filter.
	ImageArchitecture string `json:",omitempty"`
	Path              string
	Args              []string
	NetNSPath         string `json:",omitempty"`
	IPAddress         string `json:",omitempty"` // the address alone: /etc/hosts uses it
	IPPrefixLen       int    `json:",omitempty"`
	Gateway           string `json:",omitempty"`
	MacAddress        string `json:",omitempty"`
	NetworkID         string `json:",omitempty"`
	// Networks are its endpoints on networks other than the bridge.
	Networks  []NetworkEndpoint `json:",omitempty"`
	LowerDirs []string
	Mounts    []mountPoint // resolved Binds, Mounts and Tmpfs
	// Files are the container's in-memory files (secrets, configs): where they
	// go, never their data, which is only on the container's tmpfs.
	Files []fileMount `json:",omitempty"`
	State runState
}

// runState is the observed state of a container.
type runState struct {
	Status       ctypes.ContainerState
	Pid          int
	PidStart     uint64 `json:",omitempty"` // start time of Pid in clock ticks (from /proc/<pid>/stat)
	ExitCode     int
	OOMKilled    bool
	Error        string `json:",omitempty"`
	StartedAt    time.Time
	FinishedAt   time.Time
	RestartCount int
	Health       *ctypes.Health `json:",omitempty"`
}

// container is the in-memory handle of one container. Fields other than dir and
// ops are guarded by Manager.mu.
type container struct {
	dir string
	ops sync.Mutex // serializes start, stop and remove

	rec     record
	run     *running // nil when not running
	waiters []chan Exit
	removed bool
	stopped bool // a stop or kill was requested during the current run

	log *logState // guarded by the tailer's mutex
}

// running is what exists only while the container runs.
type running struct {
	lc   *libcontainer.Container
	done chan struct{} // closed when the run has ended and state is persisted
}

func (c *container) lastExit() Exit {
	var err error
	if c.rec.State.Error != "" {
		err = fmt.Errorf("%s", c.rec.State.Error)
	}
	return Exit{Code: c.rec.State.ExitCode, OOMKilled: c.rec.State.OOMKilled, Err: err, At: c.rec.State.FinishedAt}
}

func readRecord(dir string) (record, error) {
	var rec record
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return rec, fmt.Errorf("read container record: %w", err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("decode container record %s: %w", dir, err)
	}
	return rec, nil
}

// writeFileAtomic replaces path with data so that a crash leaves either the old
// or the new content.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	return renameio.WriteFile(path, data, perm)
}

// persistLocked writes c's record; callers hold Manager.mu.
func (m *Manager) persistLocked(c *container) error {
	b, err := json.Marshal(c.rec)
	if err != nil {
		return fmt.Errorf("encode container %s: %w", c.rec.ID, err)
	}
	if err := writeFileAtomic(filepath.Join(c.dir, "config.json"), b, 0o600); err != nil {
		return fmt.Errorf("persist container %s: %w", c.rec.ID, err)
	}
	return nil
}
