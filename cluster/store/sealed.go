package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

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
	sealer *sealer
}

func logAAD(index uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte("shoal log v1 "), index)
}

// StoreLog stores one entry.
func (s *sealedLogStore) StoreLog(l *raft.Log) error {
	return s.StoreLogs([]*raft.Log{l})
}

// StoreLogs encrypts copies of the entries: Raft keeps using the originals.
func (s *sealedLogStore) StoreLogs(logs []*raft.Log) error {
	sealed := make([]*raft.Log, len(logs))
	for i, l := range logs {
		c := *l
		c.Data = s.sealer.seal(l.Data, logAAD(l.Index))
		sealed[i] = &c
	}
	return s.LogStore.StoreLogs(sealed)
}

// GetLog reads and decrypts one entry.
func (s *sealedLogStore) GetLog(index uint64, l *raft.Log) error {
	if err := s.LogStore.GetLog(index, l); err != nil {
		return err
	}
	plain, err := s.sealer.open(l.Data, logAAD(index))
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
	sealer *sealer
}

// Create returns a sink that buffers the snapshot and seals it on Close.
func (s *sealedSnapshotStore) Create(version raft.SnapshotVersion, index, term uint64,
	conf raft.Configuration, confIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.SnapshotStore.Create(version, index, term, conf, confIndex, trans)
	if err != nil {
		return nil, err
	}
	return &sealedSink{SnapshotSink: sink, sealer: s.sealer}, nil
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
	plain, err := s.sealer.open(sealed, aadSnapshot)
	if err != nil {
		return nil, nil, fmt.Errorf("open snapshot %s: %w", id, err)
	}
	m := *meta
	m.Size = int64(len(plain))
	return &m, io.NopCloser(bytes.NewReader(plain)), nil
}

type sealedSink struct {
	raft.SnapshotSink
	sealer *sealer
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
	if _, err := s.SnapshotSink.Write(s.sealer.seal(s.buf.Bytes(), aadSnapshot)); err != nil {
		s.SnapshotSink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return s.SnapshotSink.Close()
}
