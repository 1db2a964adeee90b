package image

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/vbatts/tar-split/tar/storage"
)

// tarSplitFile, next to a layer's diff directory, holds the tar-split metadata of
// the layer's tar (gzip-compressed JSON packets, as moby's layer store keeps them):
// every header and padding byte, and the name, size and CRC-64 of each file payload.
// With the regular files of the diff directory it rebuilds the tar byte for byte
// (see reassemble.go). Layers unpacked by earlier versions have none and cannot be
// served to peers.
const tarSplitFile = "tar-split.json.gz"

// tarSplitRecorder records the tar-split metadata of a layer while it is unpacked.
// It is the storage.Packer and storage.FilePutter that asm.NewInputTarStreamWithDone
// feeds. It never fails the unpack: a layer whose tar the unpacked directory cannot
// reproduce is still a good layer for containers, only not one to serve, so the
// first reason found is kept and the metadata is dropped at finish.
//
// The reasons it knows: two entries for one path (the directory keeps only the
// last one), a whiteout with a payload (unpacking drops it), and an entry whose
// header announces a payload the tar does not carry (a hard link or directory
// with a size: reassembly would copy a file where the tar had nothing). Anything
// subtler (a file a later entry of the same layer deletes) fails the digest
// check when the layer is served.
type tarSplitRecorder struct {
	file   *os.File
	zw     *gzip.Writer
	packer storage.Packer
	putter storage.FilePutter

	seen    map[string]bool // cleaned paths of the entries so far
	lastPut int64           // payload bytes the putter read for the current entry
	err     error           // why the metadata cannot be kept; recording stops
}

// newTarSplitRecorder creates the metadata file at path.
func newTarSplitRecorder(path string) (*tarSplitRecorder, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("record tar-split metadata: %w", err)
	}
	zw := gzip.NewWriter(f)
	return &tarSplitRecorder{
		file:   f,
		zw:     zw,
		packer: storage.NewJSONPacker(zw),
		putter: storage.NewDiscardFilePutter(),
		seen:   map[string]bool{},
	}, nil
}

// Put checksums one payload on its way through (storage.FilePutter).
func (r *tarSplitRecorder) Put(name string, in io.Reader) (int64, []byte, error) {
	n, sum, err := r.putter.Put(name, in)
	r.lastPut = n
	return n, sum, err
}

// AddEntry records one packet (storage.Packer). It reports no error to tar-split,
// which would abort the unpack.
func (r *tarSplitRecorder) AddEntry(e storage.Entry) (int, error) {
	if r.err != nil {
		return 0, nil
	}
	if e.Type == storage.FileType {
		put := r.lastPut
		r.lastPut = 0
		if err := r.check(e, put); err != nil {
			r.err = err
			return 0, nil
		}
	}
	pos, err := r.packer.AddEntry(e)
	if err != nil {
		r.err = err
	}
	return pos, nil
}

// check refuses an entry the unpacked directory cannot give back; put is how many
// payload bytes the tar carried for it.
func (r *tarSplitRecorder) check(e storage.Entry, put int64) error {
	name := e.GetName()
	rel, err := entryPath(name)
	if err != nil {
		return err // unpacking refuses it too
	}
	if r.seen[rel] {
		return fmt.Errorf("entry %q: a second entry for the same path", name)
	}
	r.seen[rel] = true
	if e.Size == 0 {
		return nil
	}
	if put != e.Size {
		return fmt.Errorf("entry %q: header says %d payload bytes, the tar has %d", name, e.Size, put)
	}
	if strings.HasPrefix(path.Base(rel), whiteoutPrefix) {
		return fmt.Errorf("entry %q: a whiteout with a payload", name)
	}
	return nil
}

// finish completes the metadata file. It returns nil when the file holds the whole
// layer; otherwise it removes the file and says why (the layer stays usable).
func (r *tarSplitRecorder) finish() error {
	err := r.err
	if cerr := r.zw.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if cerr := r.file.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		os.Remove(r.file.Name())
	}
	return err
}

// discard removes the metadata file of an unpack that failed.
func (r *tarSplitRecorder) discard() {
	r.zw.Close()
	r.file.Close()
	os.Remove(r.file.Name())
}
