package container

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/moby/api/types/mount"
	"github.com/opencontainers/runc/libcontainer/system"
	"golang.org/x/sys/unix"
)

// A container's files as docker cp reaches them (the archive API).
//
// A running container is reached through /proc/<pid>/root: its own mount
// namespace, so its volumes, binds, tmpfs mounts and host files are seen exactly
// as its processes see them. A stopped container's overlay is mounted at
// <dir>/rootfs for the time of the copy (read-only unless writing), under the
// container's ops lock so that it cannot start meanwhile; its recorded volume
// and bind mounts and its host files (hostname, hosts, resolv.conf) are found by
// the path's resolved prefix.
//
// Every lookup goes through pathrs (openat2 RESOLVE_IN_ROOT, or its emulation):
// symlinks and ".." resolve inside the root they start from, so no path, link
// or archive entry reaches the host's files.

// fsView is one opened container filesystem.
type fsView struct {
	rootPath string   // host path of the root, for lexical resolution only
	root     *os.File // O_PATH handle of the container's root
	// mounts are the destinations a stopped container's overlay does not hold,
	// longest first; empty for a running container.
	mounts  []viewMount
	release func()
}

// viewMount is a host file or directory shown at dest in a stopped container.
type viewMount struct {
	dest, source string
}

// openView opens the filesystem of the container ref; write mounts a stopped
// container's overlay read-write. Close it with close.
func (m *Manager) openView(ref string, write bool) (*fsView, *container, error) {
	c, err := m.lookup(ref)
	if err != nil {
		return nil, nil, err
	}
	c.ops.Lock()
	m.mu.Lock()
	run, rec, removed := c.run, c.rec, c.removed
	m.mu.Unlock()
	if removed {
		c.ops.Unlock()
		return nil, nil, errNoSuchContainer(ref)
	}
	if run != nil {
		defer c.ops.Unlock()
		v, err := runningView(rec)
		return v, c, err
	}
	v, err := stoppedView(c.dir, rec, write)
	if err != nil {
		c.ops.Unlock()
		return nil, nil, err
	}
	inner := v.release
	v.release = func() {
		inner()
		c.ops.Unlock()
	}
	return v, c, nil
}

// runningView opens the root of the running container's init process, checking
// that the pid is still that process (pid and start time), so that a recycled
// pid can never lend its root.
func runningView(rec record) (*fsView, error) {
	pid := rec.State.Pid
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, errConflictf("container %s is not running", rec.Name)
	}
	defer unix.Close(pidfd)
	rootPath := "/proc/" + strconv.Itoa(pid) + "/root"
	root, err := os.OpenFile(rootPath, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open root of container %s: %w", rec.Name, err)
	}
	st, err := system.Stat(pid)
	alive := unix.PidfdSendSignal(pidfd, 0, nil, 0) == nil
	if err != nil || !alive || (rec.State.PidStart != 0 && st.StartTime != rec.State.PidStart) {
		root.Close()
		return nil, errConflictf("container %s is not running", rec.Name)
	}
	return &fsView{rootPath: rootPath, root: root, release: func() { root.Close() }}, nil
}

// stoppedView mounts the stopped container's overlay for the copy. The caller
// holds the container's ops lock.
func stoppedView(dir string, rec record, write bool) (*fsView, error) {
	rootPath := dir + "/rootfs"
	rev := make([]string, len(rec.LowerDirs))
	for i, l := range rec.LowerDirs {
		rev[len(rec.LowerDirs)-1-i] = l
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(rev, ":"), dir+"/upper", dir+"/work")
	var flags uintptr
	if !write {
		flags = unix.MS_RDONLY
	}
	unmountRootfs(dir)
	if err := unix.Mount("overlay", rootPath, "overlay", flags, opts); err != nil {
		return nil, fmt.Errorf("mount rootfs of stopped container %s: %w", rec.Name, err)
	}
	root, err := os.OpenFile(rootPath, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		unmountRootfs(dir)
		return nil, fmt.Errorf("open rootfs of container %s: %w", rec.Name, err)
	}
	v := &fsView{rootPath: rootPath, root: root, release: func() {
		root.Close()
		unmountRootfs(dir)
	}}
	taken := map[string]bool{}
	for _, mp := range rec.Mounts {
		if mp.Type == mount.TypeTmpfs {
			continue // its content died with the container
		}
		v.mounts = append(v.mounts, viewMount{dest: path.Clean(mp.Destination), source: mp.Source})
		taken[path.Clean(mp.Destination)] = true
	}
	for _, f := range []string{"hostname", "hosts", "resolv.conf"} {
		if !taken["/etc/"+f] {
			v.mounts = append(v.mounts, viewMount{dest: "/etc/" + f, source: dir + "/" + f})
		}
	}
	slices.SortStableFunc(v.mounts, func(a, b viewMount) int { return len(b.dest) - len(a.dest) })
	return v, nil
}

func (v *fsView) close() { v.release() }

// resolve is p (absolute, clean) with every symlink followed inside the
// container's root: the in-container path p really names. It only computes a
// name; every access still goes through a handle resolved in the root.
func (v *fsView) resolve(p string) (string, error) {
	joined, err := securejoin.SecureJoin(v.rootPath, p)
	if err != nil {
		return "", err
	}
	return path.Clean("/" + strings.TrimPrefix(joined, v.rootPath)), nil
}

// locate returns the root handle p (absolute, clean, already resolved up to its
// last element) lives under and p's path below it: the container's root, or the
// source of a stopped container's mount. done closes what locate opened.
func (v *fsView) locate(p string) (root *os.File, sub string, done func(), err error) {
	for _, mt := range v.mounts {
		if p != mt.dest && !strings.HasPrefix(p, mt.dest+"/") {
			continue
		}
		h, err := os.OpenFile(mt.source, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, "", nil, fmt.Errorf("open mount source of %s: %w", mt.dest, err)
		}
		return h, "/" + strings.TrimPrefix(strings.TrimPrefix(p, mt.dest), "/"), func() { h.Close() }, nil
	}
	return v.root, p, func() {}, nil
}

// open returns an O_PATH handle of the container path p (absolute, clean).
// follow resolves a final symlink; otherwise the handle is the link itself.
func (v *fsView) open(p string, follow bool) (*os.File, error) {
	if len(v.mounts) > 0 {
		// Which mount holds p depends on the symlinks on the way to it.
		resolved, err := v.resolve(p)
		if !follow {
			var parent string
			parent, err = v.resolve(path.Dir(p))
			resolved = path.Join(parent, path.Base(p))
		}
		if err != nil {
			return nil, err
		}
		p = resolved
	}
	root, sub, done, err := v.locate(p)
	if err != nil {
		return nil, err
	}
	defer done()
	if sub == "/" {
		fd, err := unix.FcntlInt(root.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("duplicate handle of %s: %w", p, err)
		}
		return os.NewFile(uintptr(fd), p), nil
	}
	if follow {
		return pathrs.OpenatInRoot(root, sub)
	}
	dir, err := pathrs.OpenatInRoot(root, path.Dir(sub))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	fd, err := unix.Openat(int(dir.Fd()), path.Base(sub), unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// fileNotFoundError is dockerd's answer for a path the container does not have.
func fileNotFoundError(p, ref string) error {
	return notFoundError{msg: fmt.Sprintf("Could not find the file %s in container %s", p, ref)}
}
