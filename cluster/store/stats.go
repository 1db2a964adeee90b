package store

import (
	"os"
	"path/filepath"
	"time"
)

// Metrics is told how long the store's writes take. Config.Metrics nil is told
// nothing.
type Metrics interface {
	// Committed is told, for each write this member proposed as leader, how
	// long it took from the proposal until the leader had applied it.
	Committed(elapsed time.Duration)
}

// RaftStats is the member's Raft state at one moment.
type RaftStats struct {
	// Leader is whether this member leads.
	Leader bool
	// LastIndex, CommitIndex and AppliedIndex are the last entry in the log,
	// the last known committed and the last applied to the store.
	LastIndex, CommitIndex, AppliedIndex uint64
	// LogEntries is how many entries the log keeps (a snapshot trims it).
	LogEntries uint64
	// DBBytes is the size of the log's file on disk.
	DBBytes int64
}

// Stats reads the member's Raft state, for metrics.
func (s *Store) Stats() RaftStats {
	st := RaftStats{
		Leader:       s.IsLeader(),
		LastIndex:    s.raft.LastIndex(),
		CommitIndex:  s.raft.CommitIndex(),
		AppliedIndex: s.raft.AppliedIndex(),
	}
	first, errFirst := s.logs.FirstIndex()
	last, errLast := s.logs.LastIndex()
	if errFirst == nil && errLast == nil && last >= first && last > 0 {
		st.LogEntries = last - first + 1
	}
	if fi, err := os.Stat(filepath.Join(s.cfg.Dir, boltFile)); err == nil {
		st.DBBytes = fi.Size()
	}
	return st
}

// observeCommit tells the configured Metrics of a write's commit.
func (s *Store) observeCommit(start time.Time) {
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.Committed(time.Since(start))
	}
}
