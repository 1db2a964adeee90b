package container

import (
	"os"

	// The device rules of the cgroup manager; without it every start fails.
	_ "github.com/opencontainers/cgroups/devices"
	"github.com/opencontainers/runc/libcontainer"
	// The C constructor that joins namespaces before the Go runtime starts.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// RunInit completes a container's setup when this binary was re-executed by
// libcontainer as "<self> init"; it never returns then. Otherwise it returns at
// once. main must call it before anything else.
func RunInit() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		libcontainer.Init()
	}
}
