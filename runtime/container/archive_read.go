package container

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	ctypes "github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// StatPath describes the path p of the container ref as docker cp sees it (HEAD
// /containers/{id}/archive): a final symlink is described, not followed, and its
// LinkTarget is where it leads inside the container. A path the container does
// not have is NotFound "Could not find the file p in container ref".
func (m *Manager) StatPath(ctx context.Context, ref, p string) (ctypes.PathStat, error) {
	v, _, err := m.openView(ref, false)
	if err != nil {
		return ctypes.PathStat{}, err
	}
	defer v.close()
	h, st, err := v.lookup(ref, p)
	if err != nil {
		return ctypes.PathStat{}, err
	}
	h.Close()
	return st, nil
}

// ArchivePath returns a tar archive of the path p of the container ref and its
// description (GET /containers/{id}/archive). The archive's top entry is named
// by p's base name, or "." when p ends in "/." (the directory's contents); a
// final symlink is archived as the link. The caller must close the archive; a
// stopped container cannot start until it is closed.
func (m *Manager) ArchivePath(ctx context.Context, ref, p string) (io.ReadCloser, ctypes.PathStat, error) {
	v, c, err := m.openView(ref, false)
	if err != nil {
		return nil, ctypes.PathStat{}, err
	}
	h, st, err := v.lookup(ref, p)
	if err != nil {
		v.close()
		return nil, ctypes.PathStat{}, err
	}
	pr, pw := io.Pipe()
	// Owned by the reader: closing it fails the next write and ends the goroutine.
	go func() {
		defer v.close()
		defer h.Close()
		w := treeWriter{tw: tar.NewWriter(pw), links: map[[2]uint64]string{}}
		err := w.add(h, st.Name)
		if err == nil {
			err = w.tw.Close()
		}
		pw.CloseWithError(err)
	}()
	m.emit(c, "archive-path", 0)
	return pr, st, nil
}

// containerPath is the absolute clean form of p, whether its final symlink is
// followed (p ends in "/" or "/."), and the name dockerd gives it.
func containerPath(p string) (abs string, follow bool, name string) {
	abs = path.Clean("/" + p)
	contents := p == "." || strings.HasSuffix(p, "/.")
	follow = contents || strings.HasSuffix(p, "/")
	name = path.Base(abs)
	if contents {
		name = "."
	}
	return abs, follow, name
}

// lookup opens p (O_PATH) and describes it.
func (v *fsView) lookup(ref, p string) (*os.File, ctypes.PathStat, error) {
	abs, follow, name := containerPath(p)
	h, err := v.open(abs, follow)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ctypes.PathStat{}, fileNotFoundError(p, ref)
	}
	if err != nil {
		return nil, ctypes.PathStat{}, fmt.Errorf("look up %s in container %s: %w", p, ref, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		h.Close()
		return nil, ctypes.PathStat{}, fmt.Errorf("stat %s in container %s: %w", p, ref, err)
	}
	ps := ctypes.PathStat{Name: name, Size: st.Size, Mode: fileMode(st.Mode), Mtime: time.Unix(st.Mtim.Unix())}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		if ps.LinkTarget, err = v.resolve(abs); err != nil {
			h.Close()
			return nil, ctypes.PathStat{}, fmt.Errorf("resolve link %s in container %s: %w", p, ref, err)
		}
	}
	return h, ps, nil
}

// fileMode is the os.FileMode of a stat mode, as os.Lstat reports it.
func fileMode(mode uint32) os.FileMode {
	m := os.FileMode(mode & 0o777)
	switch mode & unix.S_IFMT {
	case unix.S_IFBLK:
		m |= os.ModeDevice
	case unix.S_IFCHR:
		m |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFDIR:
		m |= os.ModeDir
	case unix.S_IFIFO:
		m |= os.ModeNamedPipe
	case unix.S_IFLNK:
		m |= os.ModeSymlink
	case unix.S_IFSOCK:
		m |= os.ModeSocket
	}
	if mode&unix.S_ISGID != 0 {
		m |= os.ModeSetgid
	}
	if mode&unix.S_ISUID != 0 {
		m |= os.ModeSetuid
	}
	if mode&unix.S_ISVTX != 0 {
		m |= os.ModeSticky
	}
	return m
}

// treeWriter archives a tree reached through handles: each child is opened
// relative to its parent without following links, so the walk cannot leave the
// tree however the container changes it meanwhile.
type treeWriter struct {
	tw    *tar.Writer
	links map[[2]uint64]string // (dev, inode) of a file with several links -> its first name
}

// add archives the object h (an O_PATH handle) as name, and a directory's
// contents below it.
func (w *treeWriter) add(h *os.File, name string) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return fmt.Errorf("stat %s: %w", name, err)
	}
	mtime, _ := st.Mtim.Unix() // Timespec's fields are 32 bits on arm
	hdr := &tar.Header{
		Name: name, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
		ModTime: time.Unix(mtime, 0), Format: tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return w.addDir(h, hdr)
	case unix.S_IFREG:
		return w.addFile(h, hdr, &st)
	case unix.S_IFLNK:
		target, err := readlinkHandle(h)
		if err != nil {
			return fmt.Errorf("read link %s: %w", name, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // sockets have no archive form
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	return nil
}

func (w *treeWriter) addDir(h *os.File, hdr *tar.Header) error {
	hdr.Typeflag = tar.TypeDir
	if !strings.HasSuffix(hdr.Name, "/") {
		hdr.Name += "/"
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("archive %s: %w", hdr.Name, err)
	}
	d, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", hdr.Name, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("list directory %s: %w", hdr.Name, err)
	}
	slices.Sort(names)
	for _, n := range names {
		fd, err := unix.Openat(int(d.Fd()), n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			continue // removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("open %s%s: %w", hdr.Name, n, err)
		}
		child := os.NewFile(uintptr(fd), n)
		err = w.add(child, hdr.Name+n)
		child.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *treeWriter) addFile(h *os.File, hdr *tar.Header, st *unix.Stat_t) error {
	if st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := w.links[key]; ok {
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
			if err := w.tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("archive %s: %w", hdr.Name, err)
			}
			return nil
		}
		w.links[key] = hdr.Name
	}
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open %s: %w", hdr.Name, err)
	}
	defer f.Close()
	var now unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &now); err != nil {
		return fmt.Errorf("stat %s: %w", hdr.Name, err)
	}
	hdr.Typeflag, hdr.Size = tar.TypeReg, now.Size
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("archive %s: %w", hdr.Name, err)
	}
	if _, err := io.CopyN(w.tw, f, now.Size); err != nil {
		return fmt.Errorf("archive %s: %w", hdr.Name, err)
	}
	return nil
}

// readlinkHandle reads the target of the symlink h (an O_PATH|O_NOFOLLOW handle).
func readlinkHandle(h *os.File) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(int(h.Fd()), "", buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
