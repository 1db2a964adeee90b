package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	opaqueWhiteout = ".wh..wh..opq"
)

// unpackLayer applies one layer tar stream to dir, an empty directory, in the form
// overlayfs expects of a lowerdir: a whiteout ".wh.<name>" becomes a 0:0 character
// device <name>, and ".wh..wh..opq" marks its directory opaque. Ownership, modes,
// times, xattrs, symlinks, hardlinks and device nodes are kept. Entries that would
// land outside dir, directly or through a symlink, are refused.
func unpackLayer(ctx context.Context, r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	type dirTimes struct {
		path         string
		atime, mtime time.Time
	}
	var dirs []dirTimes
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read layer tar: %w", err)
		}
		rel, err := entryPath(hdr.Name)
		if err != nil {
			return err
		}
		if rel == "." {
			if hdr.Typeflag == tar.TypeDir {
				if err := applyMetadata(dir, hdr); err != nil {
					return err
				}
				dirs = append(dirs, dirTimes{dir, hdr.AccessTime, hdr.ModTime})
			}
			continue
		}
		parent, base := path.Split(rel)
		if err := ensureParents(dir, parent); err != nil {
			return fmt.Errorf("unpack %s: %w", hdr.Name, err)
		}
		target := filepath.Join(dir, rel)

		if strings.HasPrefix(base, whiteoutPrefix) {
			if err := applyWhiteout(filepath.Join(dir, parent), base); err != nil {
				return fmt.Errorf("unpack %s: %w", hdr.Name, err)
			}
			continue
		}

		if err := writeEntry(tr, hdr, dir, target); err != nil {
			return fmt.Errorf("unpack %s: %w", hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeLink {
			continue // a hardlink shares its target's metadata
		}
		if err := applyMetadata(target, hdr); err != nil {
			return fmt.Errorf("unpack %s: %w", hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeDir {
			dirs = append(dirs, dirTimes{target, hdr.AccessTime, hdr.ModTime})
		}
	}
	// Directory times last: creating their children changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if err := setTimes(d.path, d.atime, d.mtime); err != nil {
			return err
		}
	}
	return nil
}

// applyWhiteout turns the whiteout file base in directory parent into its overlayfs
// form: an opaque marker on parent, or a 0:0 character device hiding one name.
func applyWhiteout(parent, base string) error {
	switch {
	case base == opaqueWhiteout:
		if err := unix.Lsetxattr(parent, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
			return fmt.Errorf("mark directory opaque: %w", err)
		}
		return nil
	case strings.HasPrefix(base, whiteoutMeta):
		return nil // other aufs metadata has no overlayfs meaning
	}
	victim := filepath.Join(parent, strings.TrimPrefix(base, whiteoutPrefix))
	if err := replaceWith(victim, false); err != nil {
		return err
	}
	if err := unix.Mknod(victim, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("create whiteout device: %w", err)
	}
	return nil
}

// entryPath cleans a tar entry name into a path relative to the layer root,
// refusing names that climb out of it. A leading "/" is dropped, as tar does.
func entryPath(name string) (string, error) {
	cleaned := path.Clean(strings.TrimLeft(name, "/"))
	if cleaned == ".." || strings.HasPrefix(cleaned, "../") {
		return "", fmt.Errorf("unpack layer: entry %q escapes the layer directory", name)
	}
	if cleaned == "" {
		return ".", nil
	}
	return cleaned, nil
}

// ensureParents creates the missing directories of rel under root and refuses to go
// through a symlink, which could point anywhere on the host.
func ensureParents(root, rel string) error {
	cur := root
	for _, part := range strings.Split(strings.Trim(rel, "/"), "/") {
		if part == "" {
			continue
		}
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(cur, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("path goes through symlink %s", strings.TrimPrefix(cur, root))
		case !fi.IsDir():
			return fmt.Errorf("%s is not a directory", strings.TrimPrefix(cur, root))
		}
	}
	return nil
}

// replaceWith clears the way for a new entry at target. An existing directory is
// kept when the new entry is a directory too, so that its contents merge.
func replaceWith(target string, keepDir bool) error {
	fi, err := os.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if keepDir && fi.IsDir() {
		return nil
	}
	return os.RemoveAll(target)
}

// writeEntry creates the file system object a tar header describes.
func writeEntry(tr *tar.Reader, hdr *tar.Header, root, target string) error {
	if err := replaceWith(target, hdr.Typeflag == tar.TypeDir); err != nil {
		return err
	}
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	case tar.TypeReg, tar.TypeGNUSparse:
		f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	case tar.TypeSymlink:
		return os.Symlink(hdr.Linkname, target)
	case tar.TypeLink:
		rel, err := entryPath(hdr.Linkname)
		if err != nil || rel == "." {
			return fmt.Errorf("hardlink target %q is outside the layer", hdr.Linkname)
		}
		parent, _ := path.Split(rel)
		if err := ensureParents(root, parent); err != nil {
			return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
		}
		return os.Link(filepath.Join(root, rel), target)
	case tar.TypeChar:
		return unix.Mknod(target, unix.S_IFCHR|mode, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))))
	case tar.TypeBlock:
		return unix.Mknod(target, unix.S_IFBLK|mode, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))))
	case tar.TypeFifo:
		return unix.Mkfifo(target, mode)
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	return nil
}

// applyMetadata sets owner, mode, xattrs and times from hdr on target.
func applyMetadata(target string, hdr *tar.Header) error {
	if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	for key, value := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(key, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if err := unix.Lsetxattr(target, name, []byte(value), 0); err != nil &&
			!errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	if hdr.Typeflag == tar.TypeSymlink {
		return setTimes(target, hdr.AccessTime, hdr.ModTime)
	}
	// After chown, which clears setuid and setgid bits.
	if err := os.Chmod(target, tarMode(hdr)); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		return nil // set once the directory's children are written
	}
	return setTimes(target, hdr.AccessTime, hdr.ModTime)
}

// tarMode converts a tar mode (permission bits plus setuid/setgid/sticky) into an
// os.FileMode for Chmod.
func tarMode(hdr *tar.Header) os.FileMode {
	m := os.FileMode(hdr.Mode & 0o777)
	if hdr.Mode&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if hdr.Mode&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if hdr.Mode&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m
}

// setTimes sets atime and mtime without following a symlink.
func setTimes(target string, atime, mtime time.Time) error {
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	if atime.IsZero() {
		atime = mtime
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %s: %w", target, err)
	}
	return nil
}
