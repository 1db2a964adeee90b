package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"

	"github.com/hashicorp/raft"
)

// Encryption at rest wraps Raft's stores rather than the FSM: every node has
// its own data key, and what Raft sends between nodes (entries, snapshots)
// must be readable by the receiver. The transport protects it in flight.

// sealedLogStore encrypts the Data of every log entry on its way into the
// wrapped store and decrypts it on the way out. The entry's index is
// authenticated with it, so entries cannot be moved around.
type sealedLogStore struct {
	raft.LogStore
	keys *keyring
	log  *slog.Logger
}

func logAAD(index uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte("shoal log v1 "), index)
}

// StoreLog stores one entry.
func (s *sealedLogStore) StoreLog(l *raft.Log) error {
	return s.StoreLogs([]*raft.Log{l})
}

// StoreLogs encrypts copies of the entries: Raft keeps using the originals.
// The data key cannot rotate between sealing and storing, so every entry past
// a rotation's RetireAfter is sealed with the new key.
func (s *sealedLogStore) StoreLogs(logs []*raft.Log) error {
	return s.keys.sealing(func(seal func(plain, aad []byte) []byte) error {
		sealed := make([]*raft.Log, len(logs))
		for i, l := range logs {
			c := *l
			c.Data = seal(l.Data, logAAD(l.Index))
			sealed[i] = &c
		}
		return s.LogStore.StoreLogs(sealed)
	})
}

// DeleteRange removes entries; when a compaction has removed the last entry a
// rotated-out data key could open, that key is forgotten.
func (s *sealedLogStore) DeleteRange(min, max uint64) error {
	if err := s.LogStore.DeleteRange(min, max); err != nil {
		return err
	}
	if s.keys.rotating() {
		first, err := s.LogStore.FirstIndex()
		if err == nil {
			err = s.keys.retire(first)
		}
		if err != nil && s.log != nil {
			s.log.Warn("store: retire the previous data encryption key", "err", err)
		}
	}
	return nil
}

// GetLog reads and decrypts one entry.
func (s *sealedLogStore) GetLog(index uint64, l *raft.Log) error {
	if err := s.LogStore.GetLog(index, l); err != nil {
		return err
	}
	plain, err := s.keys.open(l.Data, logAAD(index))
	if err != nil {
		return fmt.Errorf("read log entry %d: %w", index, err)
	}
	l.Data = plain
	return nil
}

// sealedSnapshotStore encrypts snapshots as a whole on their way into the
// wrapped store and decrypts them on the way out. A snapshot is held in
// memory twice while it is sealed or opened; that suits the object counts of
// a small swarm.
type sealedSnapshotStore struct {
	raft.SnapshotStore
	keys *keyring
}

// Create returns a sink that buffers the snapshot and seals it on Close.
func (s *sealedSnapshotStore) Create(version raft.SnapshotVersion, index, term uint64,
	conf raft.Configuration, confIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.SnapshotStore.Create(version, index, term, conf, confIndex, trans)
	if err != nil {
		return nil, err
	}
	return &sealedSink{SnapshotSink: sink, keys: s.keys}, nil
}

// Open decrypts a snapshot; the returned meta gives its plaintext size, which
// is what Raft sends to a follower.
func (s *sealedSnapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := s.SnapshotStore.Open(id)
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	sealed, err := io.ReadAll(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("read snapshot %s: %w", id, err)
	}
	plain, err := s.keys.open(sealed, aadSnapshot)
	if err != nil {
		return nil, nil, fmt.Errorf("open snapshot %s: %w", id, err)
	}
	m := *meta
	m.Size = int64(len(plain))
	return &m, io.NopCloser(bytes.NewReader(plain)), nil
}

type sealedSink struct {
	raft.SnapshotSink
	keys   *keyring
	buf    bytes.Buffer
	closed bool
}

func (s *sealedSink) Write(p []byte) (int, error) { return s.buf.Write(p) }

// Close seals the buffered snapshot, writes it and commits it. Closing again
// does nothing: raft's RecoverCluster closes the sink the FSM already closed.
func (s *sealedSink) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	data, sealed := s.keys.sealSnapshot(s.buf.Bytes())
	if _, err := s.SnapshotSink.Write(data); err != nil {
		s.SnapshotSink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	if err := s.SnapshotSink.Close(); err != nil {
		return err
	}
	sealed()
	return nil
}
