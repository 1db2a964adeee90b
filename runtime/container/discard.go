package container

import (
	"errors"
	"os"

	"github.com/opencontainers/cgroups"
	cgmanager "github.com/opencontainers/cgroups/manager"
	"golang.org/x/sys/unix"
)

// discardRun removes what a run of the container may have left on the host
// when libcontainer's state cannot say: a daemon killed inside
// libcontainer.Create or Run leaves a state directory without its state file,
// and cgroups (in every hierarchy) that nothing else would ever remove. Any
// process in those cgroups is killed first. It is idempotent, and cheap when
// nothing is left.
func (m *Manager) discardRun(rec record) {
	path := m.cgroupConfig(rec).Path
	mgr, err := cgmanager.New(&cgroups.Cgroup{Path: path, Resources: &cgroups.Resources{}})
	if err != nil {
		m.log.Warn("open cgroups of a dead run", "id", rec.ID, "err", err)
	} else {
		if pids, err := mgr.GetAllPids(); err == nil {
			for _, pid := range pids {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
		// A frozen cgroup (a paused container) would hold its killed processes.
		_ = mgr.Freeze(cgroups.Thawed)
		if err := mgr.Destroy(); err != nil && !errors.Is(err, os.ErrNotExist) {
			m.log.Warn("remove cgroups of a dead run", "id", rec.ID, "err", err)
		}
	}
	if err := os.RemoveAll(m.stateDir(rec.ID)); err != nil {
		m.log.Warn("remove runtime state of a dead run", "id", rec.ID, "err", err)
	}
}
