package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// Default Raft timings. They suit one voter or a LAN; wider deployments
// should raise them through Config.
const (
	DefaultHeartbeatTimeout   = 150 * time.Millisecond
	DefaultElectionTimeout    = 150 * time.Millisecond
	DefaultLeaderLeaseTimeout = 100 * time.Millisecond
	DefaultSnapshotThreshold  = 4096
	DefaultSnapshotInterval   = 2 * time.Minute
)

const (
	boltFile            = "raft.db"
	snapshotsKept       = 2
	defaultTrailingLogs = 1024
	defaultPropose      = 30 * time.Second
)

// Config configures a Store. Dir holds raft.db (the bolt log and stable
// store), snapshots/ and the wrapped data encryption key.
type Config struct {
	Dir    string
	NodeID string // Raft server ID, the swarm node ID
	// Transport carries Raft traffic; nil means an in-memory transport,
	// enough for a one-member cluster.
	Transport raft.Transport
	// Forward carries writes and read barriers to the leader when this member
	// follows; nil means a follower refuses writes with ErrNotLeader.
	Forward Forwarder
	// KEK is the 32-byte key-encryption key; nil means a key generated and
	// kept in Dir/kek (mode 0600) until autolock replaces it.
	KEK    []byte
	Logger *slog.Logger
	// Metrics is told how long writes take; nil is told nothing.
	Metrics Metrics

	// LeaderWait is how long a write waits for a leader to be elected before
	// it fails with ErrNoLeader; zero means 5 s (a failover takes about one).
	LeaderWait time.Duration

	// Raft timings; zero means the Default* value.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// SnapshotThreshold is the number of new entries that triggers a
	// snapshot; zero means DefaultSnapshotThreshold.
	SnapshotThreshold uint64
	// SnapshotInterval is how often Raft checks the threshold; zero means
	// DefaultSnapshotInterval.
	SnapshotInterval time.Duration
	// TrailingLogs is how many entries a snapshot leaves in the log, so that
	// slow followers catch up without a full snapshot; zero means 1024.
	TrailingLogs uint64
}

// Store is the replicated object store of one manager node.
type Store struct {
	cfg   Config
	log   *slog.Logger
	raft  *raft.Raft
	bolt  *raftboltdb.BoltStore
	logs  raft.LogStore
	snaps raft.SnapshotStore
	keys  *keyring
	trans raft.Transport
	fsm   *fsm
	feed  *feed

	nudge     chan struct{} // a committed write asks for a barrier (nudge.go)
	stopNudge chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// Open opens (or creates) the store in cfg.Dir and starts Raft. It does not
// bootstrap: a new store has no Raft state until Bootstrap (or a join).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.Dir == "" || cfg.NodeID == "" {
		return nil, invalidError{msg: "open store: Dir and NodeID are required"}
	}
	cfg = withDefaults(cfg)
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	keys, err := openKeyring(cfg.Dir, cfg.KEK)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s := &Store{cfg: cfg, log: cfg.Logger, feed: newFeed(), trans: cfg.Transport, keys: keys,
		nudge: make(chan struct{}, 1), stopNudge: make(chan struct{})}
	if s.trans == nil {
		_, s.trans = raft.NewInmemTransport("")
	}
	if err := s.start(); err != nil {
		s.feed.close()
		if s.bolt != nil {
			s.bolt.Close()
		}
		return nil, fmt.Errorf("open store: %w", err)
	}
	return s, nil
}

func withDefaults(cfg Config) Config {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HeartbeatTimeout == 0 {
		cfg.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if cfg.ElectionTimeout == 0 {
		cfg.ElectionTimeout = DefaultElectionTimeout
	}
	if cfg.LeaderLeaseTimeout == 0 {
		cfg.LeaderLeaseTimeout = DefaultLeaderLeaseTimeout
	}
	if cfg.SnapshotThreshold == 0 {
		cfg.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if cfg.LeaderWait == 0 {
		cfg.LeaderWait = defaultLeaderWait
	}
	if cfg.TrailingLogs == 0 {
		cfg.TrailingLogs = defaultTrailingLogs
	}
	if cfg.SnapshotInterval == 0 {
		cfg.SnapshotInterval = DefaultSnapshotInterval
	}
	return cfg
}

func (s *Store) start() error {
	var err error
	s.bolt, err = raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(s.cfg.Dir, boltFile),
		BoltOptions: &bbolt.Options{Timeout: time.Second},
	})
	if err != nil {
		return fmt.Errorf("open raft log: %w", err)
	}
	s.logs = &sealedLogStore{LogStore: s.bolt, keys: s.keys, log: s.log}
	hlog := newRaftLogger(s.log)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(s.cfg.Dir, snapshotsKept, hlog.Named("snapshots"))
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	s.snaps = &sealedSnapshotStore{SnapshotStore: snaps, keys: s.keys}
	if s.fsm, err = newFSM(s.log, s.feed); err != nil {
		return err
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(s.cfg.NodeID)
	rc.Logger = hlog
	rc.HeartbeatTimeout = s.cfg.HeartbeatTimeout
	rc.ElectionTimeout = s.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = s.cfg.LeaderLeaseTimeout
	rc.SnapshotThreshold = s.cfg.SnapshotThreshold
	rc.SnapshotInterval = s.cfg.SnapshotInterval
	rc.TrailingLogs = s.cfg.TrailingLogs
	if s.raft, err = raft.NewRaft(rc, s.fsm, s.logs, s.bolt, s.snaps, s.trans); err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	go s.runNudges(s.stopNudge)
	return nil
}

// Bootstrap makes this node the only voter of a new cluster (swarm init).
// It returns ErrHasState if this node already has Raft state.
func (s *Store) Bootstrap(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.HasState() {
		return ErrHasState
	}
	conf := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter,
		ID:       raft.ServerID(s.cfg.NodeID),
		Address:  s.trans.LocalAddr(),
	}}}
	if err := s.raft.BootstrapCluster(conf).Error(); err != nil {
		if errors.Is(err, raft.ErrCantBootstrap) {
			return ErrHasState
		}
		return fmt.Errorf("bootstrap cluster: %w", err)
	}
	return nil
}

// HasState reports whether this store has Raft state, that is whether this
// node is part of a swarm.
func (s *Store) HasState() bool {
	ok, err := raft.HasExistingState(s.logs, s.bolt, s.snaps)
	if err != nil {
		s.log.Warn("store: read raft state", "err", err)
	}
	return ok
}

// IsLeader reports whether this node is the Raft leader now.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// WaitLeader blocks until this node is the leader and every entry committed
// before its election has been applied, or until ctx is done.
func (s *Store) WaitLeader(ctx context.Context) error {
	ch := make(chan raft.Observation, 1)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.RaftState, raft.LeaderObservation:
			return true
		}
		return false
	})
	s.raft.RegisterObserver(obs)
	defer s.raft.DeregisterObserver(obs)
	for {
		if s.raft.State() == raft.Shutdown {
			return fmt.Errorf("wait for leadership: %w", raft.ErrRaftShutdown)
		}
		if s.IsLeader() {
			err := s.raft.Barrier(proposeTimeout(ctx)).Error()
			if err == nil {
				return nil
			}
			if !isLeadershipError(err) || errors.Is(err, raft.ErrRaftShutdown) {
				return fmt.Errorf("wait for leadership: %w", err)
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for leadership: %w", ctx.Err())
		}
	}
}

// WaitApplied blocks until every command the log held when it was called has
// been applied to the state (after a restart: once a leader has committed them),
// or until ctx is done. It is meant for start-up, so that readers do not see an
// empty swarm while the log is replayed.
//
// Raft's AppliedIndex counts entries handed to the FSM goroutine, not entries it
// has applied, so the wait is on the FSM's own index: that of the last command
// in the log (noop and configuration entries never reach the FSM).
func (s *Store) WaitApplied(ctx context.Context) error {
	target, err := s.lastCommand()
	if err != nil {
		return fmt.Errorf("wait for the log to be applied: %w", err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, index := s.fsm.read(); index >= target {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the log to be applied: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// lastCommand is the index of the last command entry in the log, or zero when
// the log holds none beyond what the restored snapshot covers.
func (s *Store) lastCommand() (uint64, error) {
	first, err := s.bolt.FirstIndex()
	if err != nil {
		return 0, fmt.Errorf("read the first log index: %w", err)
	}
	_, covered := s.fsm.read()
	for i := s.raft.LastIndex(); i >= first && i > covered && i > 0; i-- {
		var l raft.Log
		if err := s.bolt.GetLog(i, &l); err != nil {
			return 0, fmt.Errorf("read log entry %d: %w", i, err)
		}
		if l.Type == raft.LogCommand {
			return i, nil
		}
	}
	return 0, nil
}

// Close stops Raft and every watch; the state stays in Dir.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		close(s.stopNudge)
		if err := s.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("stop raft: %w", err))
		}
		s.feed.close()
		if c, ok := s.trans.(raft.WithClose); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close raft transport: %w", err))
			}
		}
		if err := s.bolt.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft log: %w", err))
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Destroy closes the store and removes all its state (swarm leave --force).
func (s *Store) Destroy() error {
	if err := s.Close(); err != nil {
		s.log.Warn("store: close before destroy", "err", err)
	}
	if err := os.RemoveAll(s.cfg.Dir); err != nil {
		return fmt.Errorf("remove store: %w", err)
	}
	return nil
}

func isLeadershipError(err error) bool {
	return errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
		errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrRaftShutdown)
}

// proposeTimeout bounds how long Raft may take to accept a proposal.
func proposeTimeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return defaultPropose
}

// recoverCluster makes the store in cfg.Dir a one-voter cluster of itself.
func recoverCluster(cfg Config, self raft.ServerAddress) error {
	keys, err := openKeyring(cfg.Dir, cfg.KEK)
	if err != nil {
		return fmt.Errorf("recover cluster: %w", err)
	}
	s := &Store{cfg: cfg, log: cfg.Logger, feed: newFeed()}
	defer s.feed.close()
	s.bolt, err = raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(cfg.Dir, boltFile),
		BoltOptions: &bbolt.Options{Timeout: time.Second},
	})
	if err != nil {
		return fmt.Errorf("recover cluster: open raft log: %w", err)
	}
	defer s.bolt.Close()
	logs := &sealedLogStore{LogStore: s.bolt, keys: keys, log: s.log}
	hlog := newRaftLogger(s.log)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, snapshotsKept, hlog.Named("snapshots"))
	if err != nil {
		return fmt.Errorf("recover cluster: open snapshot store: %w", err)
	}
	fsm, err := newFSM(s.log, s.feed)
	if err != nil {
		return err
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = hlog
	_, trans := raft.NewInmemTransport(self)
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(cfg.NodeID), Address: self}}}
	if err := raft.RecoverCluster(rc, fsm, logs, s.bolt, &sealedSnapshotStore{SnapshotStore: snaps, keys: keys}, trans, conf); err != nil {
		return fmt.Errorf("recover cluster: %w", err)
	}
	return nil
}

// NetworkTransport carries Raft traffic over stream (the control port's Raft
// protocol), logging through log.
func NetworkTransport(stream raft.StreamLayer, log *slog.Logger) raft.Transport {
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  newRaftLogger(log).Named("net"),
	})
}
