package main

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Docker makes a few paths outside its roots, on the host: containerd's shims
// put their sockets in /run/containerd/s (named by a hash of containerd's
// address and the container), and dockerd makes /var/run/docker/plugins. A shim
// that is killed leaves its socket behind.
var hostDirs = []string{"/run/containerd/s", "/run/containerd", "/var/run/docker/plugins", "/var/run/docker"}

const shimSocketDir = "/run/containerd/s"

// hostState is what was there before the run.
type hostState struct {
	existed map[string]bool
	sockets map[string]bool
}

func snapshotHost() hostState {
	h := hostState{existed: map[string]bool{}, sockets: map[string]bool{}}
	for _, d := range hostDirs {
		if _, err := os.Stat(d); err == nil {
			h.existed[d] = true
		}
	}
	entries, _ := os.ReadDir(shimSocketDir)
	for _, e := range entries {
		h.sockets[e.Name()] = true
	}
	return h
}

// restore removes the shim sockets that appeared during the run and that no
// process serves any more (a connection to them is refused), then the
// directories the run made, if they are empty.
func (h hostState) restore() {
	entries, _ := os.ReadDir(shimSocketDir)
	for _, e := range entries {
		if h.sockets[e.Name()] || e.Type()&os.ModeSocket == 0 {
			continue
		}
		path := filepath.Join(shimSocketDir, e.Name())
		conn, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			conn.Close()
			continue
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			_ = os.Remove(path)
		}
	}
	for _, d := range hostDirs {
		if !h.existed[d] {
			_ = syscall.Rmdir(d)
		}
	}
}
