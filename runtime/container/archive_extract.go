package container

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
)

// ExtractOptions are the options of PUT /containers/{id}/archive.
type ExtractOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a non-directory
	// and the other way round.
	NoOverwriteDirNonDir bool
	// CopyUIDGID (docker cp -a) gives every entry the container's user
	// (Config.User) as owner when it has one. Otherwise entries keep the
	// archive's owners, as dockerd does.
	CopyUIDGID bool
}

// ExtractToDir unpacks the tar archive content into the directory dir of the
// container ref (PUT /containers/{id}/archive), following symlinks on the way
// to dir. Entries never leave dir's root: a name or hard link climbing out of
// dir is refused, and a symlink an entry goes through resolves inside the
// container. A read-only rootfs or mount is InvalidParameter, as with dockerd.
func (m *Manager) ExtractToDir(ctx context.Context, ref, dir string, content io.Reader, opts ExtractOptions) error {
	v, c, err := m.openView(ref, true)
	if err != nil {
		return err
	}
	defer v.close()
	abs, _, _ := containerPath(dir)
	h, err := v.open(abs, true)
	if errors.Is(err, os.ErrNotExist) {
		return fileNotFoundError(dir, ref)
	}
	if err != nil {
		return fmt.Errorf("look up %s in container %s: %w", dir, ref, err)
	}
	var st unix.Stat_t
	err = unix.Fstat(int(h.Fd()), &st)
	h.Close()
	if err != nil {
		return fmt.Errorf("stat %s in container %s: %w", dir, ref, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return errInvalidf("extraction point is not a directory")
	}
	resolved, err := v.resolve(abs)
	if err != nil {
		return fmt.Errorf("resolve %s in container %s: %w", dir, ref, err)
	}
	m.mu.Lock()
	rec := c.rec
	m.mu.Unlock()
	if err := checkWritable(rec, resolved); err != nil {
		return err
	}
	x := &extractor{opts: opts, uid: -1, gid: -1}
	if opts.CopyUIDGID && rec.Config.User != "" {
		if x.uid, x.gid, err = v.user(rec.Config.User); err != nil {
			return err
		}
	}
	root, sub, done, err := v.locate(resolved)
	if err != nil {
		return err
	}
	defer done()
	x.root, x.dest = root, sub
	if err := x.run(ctx, tar.NewReader(content)); err != nil {
		return fmt.Errorf("extract archive to %s in container %s: %w", dir, ref, err)
	}
	m.emit(c, "extract-to-dir", 0)
	return nil
}

// checkWritable refuses to write at p (resolved, in the container) when the
// mount holding it is read-only, or when no mount holds it and the rootfs is.
func checkWritable(rec record, p string) error {
	best := -1
	for i, mp := range rec.Mounts {
		d := path.Clean(mp.Destination)
		if (p == d || strings.HasPrefix(p, d+"/") || d == "/") && (best < 0 || len(d) > len(rec.Mounts[best].Destination)) {
			best = i
		}
	}
	if best >= 0 {
		if !rec.Mounts[best].RW {
			return errInvalidf("mounted volume is marked read-only")
		}
		return nil
	}
	if rec.HostConfig.ReadonlyRootfs {
		return errInvalidf("container rootfs is marked read-only")
	}
	return nil
}

// user resolves a Config.User spec with the container's own passwd and group files.
func (v *fsView) user(spec string) (uid, gid int, err error) {
	read := func(p string) io.Reader {
		h, err := v.open(p, true)
		if err != nil {
			return nil
		}
		defer h.Close()
		f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
		if err != nil {
			return nil
		}
		defer f.Close()
		data, _ := io.ReadAll(io.LimitReader(f, 4<<20))
		return strings.NewReader(string(data))
	}
	eu, err := user.GetExecUser(spec, &user.ExecUser{}, read("/etc/passwd"), read("/etc/group"))
	if err != nil {
		return 0, 0, errInvalidf("unable to find user %s: %v", spec, err)
	}
	return eu.Uid, eu.Gid, nil
}

// extractor unpacks one archive below dest of root. Every entry's parent is
// resolved (and created) inside root with pathrs; the entry itself is made
// relative to that parent's handle without following a final symlink.
type extractor struct {
	root     *os.File
	dest     string
	opts     ExtractOptions
	uid, gid int // owner of every entry; -1 keeps the archive's
	dirs     []*tar.Header
}

func (x *extractor) run(ctx context.Context, tr *tar.Reader) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return invalidError{msg: "read archive: " + err.Error()}
		}
		if err := x.entry(tr, hdr); err != nil {
			return err
		}
	}
	// Directory times last: creating their entries changed them.
	for i := len(x.dirs) - 1; i >= 0; i-- {
		hdr := x.dirs[i]
		parent, err := pathrs.OpenatInRoot(x.root, path.Dir(hdr.Name))
		if err != nil {
			continue
		}
		_ = setTimes(int(parent.Fd()), path.Base(hdr.Name), hdr)
		parent.Close()
	}
	return nil
}

// inside joins name below dest, refusing a name that climbs out of it.
func (x *extractor) inside(name string) (string, error) {
	rel := path.Clean(name)
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", errInvalidf("archive entry %q is outside of %q", name, x.dest)
	}
	return path.Join(x.dest, rel), nil
}

func (x *extractor) entry(r io.Reader, hdr *tar.Header) error {
	target, err := x.inside(hdr.Name)
	if err != nil {
		return err
	}
	if target == x.dest || target == "/" {
		return nil // the destination itself exists already
	}
	parent, err := pathrs.MkdirAllHandle(x.root, path.Dir(target), 0o755)
	if err != nil {
		return fmt.Errorf("create parent of %s: %w", hdr.Name, err)
	}
	defer parent.Close()
	pfd, base := int(parent.Fd()), path.Base(target)
	if err := x.replace(pfd, base, hdr); err != nil {
		return err
	}
	perm := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create directory %s: %w", hdr.Name, err)
		}
	case tar.TypeReg, tar.TypeRegA:
		if err := writeFileAt(pfd, base, r); err != nil {
			return fmt.Errorf("create %s: %w", hdr.Name, err)
		}
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return fmt.Errorf("create link %s: %w", hdr.Name, err)
		}
	case tar.TypeLink:
		return x.hardLink(pfd, base, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(pfd, base, mode|0o600, int(dev)); err != nil {
			return fmt.Errorf("create %s: %w", hdr.Name, err)
		}
	default:
		return nil // pax headers are read by tar.Reader; other types have no file
	}
	uid, gid := hdr.Uid, hdr.Gid
	if x.uid >= 0 {
		uid, gid = x.uid, x.gid
	}
	if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown %s: %w", hdr.Name, err)
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if err := chmodAt(pfd, base, perm); err != nil {
			return fmt.Errorf("chmod %s: %w", hdr.Name, err)
		}
	}
	if hdr.Typeflag == tar.TypeDir {
		dh := *hdr
		dh.Name = target
		x.dirs = append(x.dirs, &dh)
		return nil
	}
	return setTimes(pfd, base, hdr)
}

// replace removes what is at base unless it is a directory the entry is too;
// with NoOverwriteDirNonDir a directory and a non-directory never replace each other.
func (x *extractor) replace(pfd int, base string, hdr *tar.Header) error {
	var cur unix.Stat_t
	if err := unix.Fstatat(pfd, base, &cur, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil // nothing there
	}
	curDir, newDir := cur.Mode&unix.S_IFMT == unix.S_IFDIR, hdr.Typeflag == tar.TypeDir
	if x.opts.NoOverwriteDirNonDir && curDir && !newDir {
		return errInvalidf("cannot overwrite directory %q with non-directory %q", path.Join(x.dest, base), hdr.Name)
	}
	if x.opts.NoOverwriteDirNonDir && !curDir && newDir {
		return errInvalidf("cannot overwrite non-directory %q with directory %q", path.Join(x.dest, base), hdr.Name)
	}
	if curDir && newDir {
		return nil
	}
	if err := removeAllAt(pfd, base); err != nil {
		return fmt.Errorf("replace %s: %w", hdr.Name, err)
	}
	return nil
}

// hardLink links base to the entry's link target, which must lie below dest.
func (x *extractor) hardLink(pfd int, base string, hdr *tar.Header) error {
	target, err := x.inside(hdr.Linkname)
	if err != nil {
		return errInvalidf("invalid hardlink %q -> %q", hdr.Name, hdr.Linkname)
	}
	tparent, err := pathrs.OpenatInRoot(x.root, path.Dir(target))
	if err != nil {
		return fmt.Errorf("hard link %s: %w", hdr.Name, err)
	}
	defer tparent.Close()
	if err := unix.Linkat(int(tparent.Fd()), path.Base(target), pfd, base, 0); err != nil {
		return fmt.Errorf("hard link %s: %w", hdr.Name, err)
	}
	return nil
}

// writeFileAt creates base in the directory pfd (never through a symlink) with r's bytes.
func writeFileAt(pfd int, base string, r io.Reader) error {
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), base)
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// chmodAt sets the mode of base in pfd without following a symlink there
// (fchmodat2; before Linux 6.6 directories and files are opened for it).
func chmodAt(pfd int, base string, perm uint32) error {
	err := unix.Fchmodat(pfd, base, perm, unix.AT_SYMLINK_NOFOLLOW)
	if !errors.Is(err, unix.EOPNOTSUPP) {
		return err
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil // a device or fifo keeps its creation mode
	}
	defer unix.Close(fd)
	return unix.Fchmod(fd, perm)
}

// setTimes sets base's access and modification times without following a symlink.
func setTimes(pfd int, base string, hdr *tar.Header) error {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	return unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// removeAllAt removes base in the directory dirfd and, for a directory, all
// below it, never following a symlink.
func removeAllAt(dirfd int, base string) error {
	err := unix.Unlinkat(dirfd, base, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) {
		return err
	}
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), base)
	names, err := d.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = removeAllAt(fd, n); err != nil {
				break
			}
		}
	}
	d.Close()
	if err != nil {
		return err
	}
	return unix.Unlinkat(dirfd, base, unix.AT_REMOVEDIR)
}
