package image

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
)

func TestWhiteoutsBecomeOverlayfsLayers(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, Options{})
	loadFile(t, s, imagetest.BusyboxArchive(t, t.TempDir(), "whiteout:1", imagetest.WithLayer(
		imagetest.Whiteout("etc/group"),
		imagetest.Opaque("usr"),
		imagetest.File("usr/new.txt", "new\n", 0o600),
		imagetest.Dir("data", 0o750),
		imagetest.OwnedFile("data/owned", "x", os.ModeSetuid|0o755, 1000, 1001),
		imagetest.Hardlink("data/link", "data/owned"),
		imagetest.Symlink("data/sym", "/etc/passwd"),
	)))
	dirs, err := s.LayerDirs(ctx, "whiteout:1")
	if err != nil || len(dirs) != 2 {
		t.Fatalf("LayerDirs = %v, %v", dirs, err)
	}
	lower, upper := dirs[0], dirs[1]

	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(upper, "etc/group"), &st); err != nil {
		t.Fatalf("whiteout device missing: %v", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("etc/group in upper layer: mode %o rdev %d, want char device 0:0", st.Mode, st.Rdev)
	}
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(upper, "usr"), "trusted.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("usr opaque xattr = %q, %v", buf[:n], err)
	}
	if err := unix.Lstat(filepath.Join(upper, "data/owned"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 1000 || st.Gid != 1001 || st.Mode&0o7777 != 0o4755 || st.Nlink != 2 {
		t.Errorf("data/owned: uid %d gid %d mode %o nlink %d; want 1000 1001 4755 2", st.Uid, st.Gid, st.Mode&0o7777, st.Nlink)
	}
	if target, err := os.Readlink(filepath.Join(upper, "data/sym")); err != nil || target != "/etc/passwd" {
		t.Errorf("data/sym -> %q, %v", target, err)
	}
	if fi, err := os.Stat(filepath.Join(upper, "data")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("data dir mode %v, %v", fi.Mode(), err)
	}

	// What a container would see: overlayfs with the upper layer over busybox.
	merged := t.TempDir()
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, "lowerdir="+upper+":"+lower); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	if _, err := os.Lstat(filepath.Join(merged, "etc/group")); !os.IsNotExist(err) {
		t.Errorf("deleted etc/group visible in rootfs: %v", err)
	}
	if _, err := os.Stat(filepath.Join(merged, "etc/passwd")); err != nil {
		t.Errorf("etc/passwd lost: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(merged, "usr/bin")); !os.IsNotExist(err) {
		t.Errorf("opaque usr still shows lower usr/bin: %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(merged, "usr/new.txt")); err != nil || string(data) != "new\n" {
		t.Errorf("usr/new.txt = %q, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(merged, "bin/sh")); err != nil {
		t.Errorf("bin/sh missing from merged rootfs: %v", err)
	}
}

type tarEntry struct {
	hdr     tar.Header
	content string
}

func layerTar(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.hdr
		hdr.Size = int64(len(e.content))
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.content))
	}
	tw.Close()
	return buf.Bytes()
}

func TestUnpackRejectsEscapes(t *testing.T) {
	outside := t.TempDir()
	cases := []struct {
		name    string
		entries []tarEntry
	}{
		{"dotdot", []tarEntry{{hdr: tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644}, content: "x"}}},
		{"nested dotdot", []tarEntry{{hdr: tar.Header{Name: "a/../../escape", Typeflag: tar.TypeReg, Mode: 0o644}, content: "x"}}},
		{"through absolute symlink", []tarEntry{
			{hdr: tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: outside}},
			{hdr: tar.Header{Name: "link/escape", Typeflag: tar.TypeReg, Mode: 0o644}, content: "x"},
		}},
		{"through relative symlink", []tarEntry{
			{hdr: tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "../../../../../../../../" + outside}},
			{hdr: tar.Header{Name: "link/escape", Typeflag: tar.TypeReg, Mode: 0o644}, content: "x"},
		}},
		{"hardlink outside", []tarEntry{{hdr: tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "../../../etc/passwd"}}}},
		{"hardlink through symlink", []tarEntry{
			{hdr: tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc"}},
			{hdr: tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "link/passwd"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "layer")
			os.Mkdir(dir, 0o755)
			err := unpackLayer(context.Background(), bytes.NewReader(layerTar(t, tc.entries...)), dir)
			if err == nil {
				t.Fatal("unpack succeeded, want refusal")
			}
			if _, err := os.Stat(filepath.Join(outside, "escape")); !os.IsNotExist(err) {
				t.Fatalf("file written outside the layer: %v", err)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape")); !os.IsNotExist(err) {
				t.Fatalf("file written outside the layer: %v", err)
			}
		})
	}
}

func TestUnpackDevicesAndReplacement(t *testing.T) {
	dir := t.TempDir()
	data := layerTar(t,
		tarEntry{hdr: tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}},
		tarEntry{hdr: tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}},
		tarEntry{hdr: tar.Header{Name: "dev/loop9", Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: 7, Devminor: 9, Gid: 6}},
		tarEntry{hdr: tar.Header{Name: "run/fifo", Typeflag: tar.TypeFifo, Mode: 0o600}},
		tarEntry{hdr: tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644}, content: "old"},
		tarEntry{hdr: tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o600}, content: "new"},
	)
	if err := unpackLayer(context.Background(), bytes.NewReader(data), dir); err != nil {
		t.Fatalf("unpack: %v", err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dir, "dev/null"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR ||
		unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 || st.Mode&0o777 != 0o666 {
		t.Errorf("dev/null: mode %o rdev %d:%d err %v", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev), err)
	}
	if err := unix.Lstat(filepath.Join(dir, "dev/loop9"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Gid != 6 {
		t.Errorf("dev/loop9: mode %o gid %d err %v", st.Mode, st.Gid, err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "run/fifo")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("run/fifo: %v %v", fi, err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(data) != "new" {
		t.Errorf("f = %q, %v; a later entry must replace an earlier one", data, err)
	}
}

func TestLoadRejectsCorruptLayer(t *testing.T) {
	s := openStore(t, Options{})
	archive := imagetest.BusyboxArchive(t, t.TempDir(), "corrupt:1")
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	// Flip a byte inside the busybox binary of the layer.
	i := bytes.Index(data, []byte("BusyBox v"))
	if i < 0 {
		t.Fatal("busybox version string not found in archive")
	}
	data[i] = 'b'
	if _, err := s.Load(context.Background(), bytes.NewReader(data)); err == nil {
		t.Fatal("Load of corrupted layer succeeded")
	}
	if list, _ := s.List(context.Background()); len(list) != 0 {
		t.Errorf("corrupt image stored: %d images", len(list))
	}
	entries, _ := os.ReadDir(filepath.Join(s.root, "layers"))
	if len(entries) != 0 {
		t.Errorf("corrupt layer left in store: %d directories", len(entries))
	}
}

// A load that fails at a later layer removes the layers it unpacked before, unless
// an image uses them.
func TestFailedLoadLeavesNoLayers(t *testing.T) {
	for _, baseStored := range []bool{false, true} {
		s := openStore(t, Options{})
		if baseStored {
			loadFile(t, s, imagetest.BusyboxArchive(t, t.TempDir(), "base:1"))
		}
		archive := imagetest.BusyboxArchive(t, t.TempDir(), "corrupt:2",
			imagetest.WithLayer(imagetest.File("marker", "corrupt me", 0o644)))
		data, err := os.ReadFile(archive)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(data, []byte("corrupt me"))
		if i < 0 {
			t.Fatal("marker not found in archive")
		}
		data[i] = 'C'
		if _, err := s.Load(context.Background(), bytes.NewReader(data)); err == nil {
			t.Fatal("Load of corrupted layer succeeded")
		}
		want := 0
		if baseStored {
			want = 1
		}
		if entries, _ := os.ReadDir(filepath.Join(s.root, "layers")); len(entries) != want {
			t.Errorf("base stored %v: %d layer directories left, want %d", baseStored, len(entries), want)
		}
	}
}
