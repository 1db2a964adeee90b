package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// File is a file a container gets in memory only (a swarm secret or config):
// it is written to a tmpfs of the container's own, never to disk, and bound
// read-only at Path in the container. Its data is never recorded: the record
// (config.json) keeps only where it goes and with which owner and mode.
type File struct {
	Path string // absolute, in the container
	Data []byte
	UID  int
	GID  int
	Mode os.FileMode
}

// fileMount is what the record keeps of a File: no data.
type fileMount struct {
	Path string
	Name string // the file's name on the container's tmpfs
	UID  int
	GID  int
	Mode os.FileMode
}

// filesDir is where a container's tmpfs of files is mounted on the host: in its
// directory, as a mount point that holds nothing on disk.
func filesDir(dir string) string { return filepath.Join(dir, "files") }

// pageSize is what each file takes of the tmpfs at least.
const pageSize = 4096

// mountFiles mounts a tmpfs at filesDir(dir), sized for files, and writes them
// there with their owners and modes. It returns what the record keeps of them.
// On error nothing stays mounted.
func mountFiles(dir string, files []File) (_ []fileMount, err error) {
	if len(files) == 0 {
		return nil, nil
	}
	for _, f := range files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) == "/" {
			return nil, errInvalidf("secret or config target %q: must be an absolute path to a file", f.Path)
		}
	}
	mnt := filesDir(dir)
	if err := os.Mkdir(mnt, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create files mount point: %w", err)
	}
	size := pageSize * (len(files) + 4)
	for _, f := range files {
		size += (len(f.Data) + pageSize - 1) / pageSize * pageSize
	}
	// nr_inodes bounds what the tmpfs can hold besides its size; mode 0700: only
	// root walks into it on the host (the container sees each file by its bind).
	opts := fmt.Sprintf("mode=0700,size=%d,nr_inodes=%d", size, len(files)+16)
	if err := unix.Mount("tmpfs", mnt, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return nil, fmt.Errorf("mount tmpfs for secrets and configs: %w", err)
	}
	defer func() {
		if err != nil {
			unmountFiles(dir)
		}
	}()
	out := make([]fileMount, 0, len(files))
	for i, f := range files {
		fm := fileMount{Path: path.Clean(f.Path), Name: strconv.Itoa(i), UID: f.UID, GID: f.GID, Mode: f.Mode.Perm()}
		if err := writeMemFile(filepath.Join(mnt, fm.Name), f.Data, fm); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.Path, err)
		}
		out = append(out, fm)
	}
	return out, nil
}

func writeMemFile(p string, data []byte, fm fileMount) error {
	fd, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := fd.Write(data); err != nil {
		fd.Close()
		return err
	}
	if err := fd.Chown(fm.UID, fm.GID); err != nil {
		fd.Close()
		return err
	}
	// After chown, which clears set-id bits.
	if err := fd.Chmod(fm.Mode); err != nil {
		fd.Close()
		return err
	}
	return fd.Close()
}

// filesMounted reports whether the container's tmpfs of files is there (it is
// gone after the machine restarted).
func filesMounted(dir string) bool {
	var fs unix.Statfs_t
	var st, parent unix.Stat_t
	if unix.Statfs(filesDir(dir), &fs) != nil || unix.Stat(filesDir(dir), &st) != nil || unix.Stat(dir, &parent) != nil {
		return false
	}
	return fs.Type == unix.TMPFS_MAGIC && st.Dev != parent.Dev
}

// unmountFiles unmounts the container's tmpfs of files, which frees their
// memory: the files are gone.
func unmountFiles(dir string) {
	mnt := filesDir(dir)
	for range 4 { // stacked mounts, if a crash left any
		if unix.Unmount(mnt, unix.MNT_DETACH) != nil {
			break
		}
	}
	_ = os.Remove(mnt)
}

// RestoreFiles gives a stopped container its in-memory files again, for a new
// start of the same container: they went when it stopped. They must go to the
// paths the container was created with.
func (m *Manager) RestoreFiles(ctx context.Context, ref string, files []File) error {
	c, err := m.lookup(ref)
	if err != nil {
		return err
	}
	c.ops.Lock()
	defer c.ops.Unlock()
	m.mu.Lock()
	running, removed, recorded := c.run != nil, c.removed, slices.Clone(c.rec.Files)
	m.mu.Unlock()
	switch {
	case removed:
		return errNoSuchContainer(ref)
	case running:
		return errConflictf("container %s is running: its files are in place", ref)
	}
	want := make([]string, len(recorded))
	for i, f := range recorded {
		want[i] = f.Path
	}
	got := make([]string, len(files))
	for i, f := range files {
		got[i] = path.Clean(f.Path)
	}
	if !slices.Equal(want, got) {
		return errInvalidf("restore files of container %s: they go to %q, not %q", ref, want, got)
	}
	unmountFiles(c.dir)
	mounted, err := mountFiles(c.dir, files)
	if err != nil {
		return fmt.Errorf("restore files of container %s: %w", ref, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c.rec.Files = mounted
	return m.persistLocked(c)
}
