package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Forwarder carries a follower's writes and read barriers to the leader. The
// control plane implements it over the control port; the leader's side calls
// Propose and ReadIndex.
type Forwarder interface {
	// Propose asks the leader at addr to propose an encoded batch, and returns
	// the index it was applied at. The batch's own refusal (out of sequence, a
	// name conflict, ...) comes back as the error it was, through ErrorCode and
	// ErrorFromCode.
	Propose(ctx context.Context, leader raft.ServerAddress, batch []byte) (uint64, error)
	// ReadIndex asks the leader at addr for an index every acknowledged write
	// is at or below.
	ReadIndex(ctx context.Context, leader raft.ServerAddress) (uint64, error)
}

// ErrNoLeader is returned when no manager leads the swarm (too few managers are
// reachable to elect one); Docker's words. It implements Unavailable() bool.
var ErrNoLeader error = unavailableError{msg: "The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online."}

// ErrLeaderUnreachable is what a Forwarder returns (wrapped) when it could not
// reach the leader at all, so the request was surely not delivered: the store
// waits for the next leader and tries again.
var ErrLeaderUnreachable = errors.New("the swarm leader cannot be reached")

// defaultLeaderWait is how long a write or a read barrier waits for a leader
// to be elected before giving up with ErrNoLeader: a failover takes about a
// second.
const defaultLeaderWait = 5 * time.Second

// leader waits (at most Config.LeaderWait, or ctx) until a leader is known and
// returns its address; "" with a nil error means this member leads.
func (s *Store) leader(ctx context.Context) (raft.ServerAddress, error) {
	deadline := time.NewTimer(s.cfg.LeaderWait)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.IsLeader() {
			return "", nil
		}
		if addr, id := s.raft.LeaderWithID(); addr != "" && string(id) != s.cfg.NodeID {
			return addr, nil
		}
		if s.raft.State() == raft.Shutdown {
			return "", ErrNoLeader
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-deadline.C:
			return "", ErrNoLeader
		case <-tick.C:
		}
	}
}

// Propose proposes a batch encoded by a follower's Update (the leader's side of
// Forwarder.Propose) and returns the index it was applied at.
func (s *Store) Propose(ctx context.Context, data []byte) (uint64, error) {
	if err := checkEntrySize(data); err != nil {
		return 0, err
	}
	if _, err := decodeBatch(data); err != nil {
		return 0, invalidError{msg: err.Error()}
	}
	return s.apply(ctx, data)
}

// ReadIndex is the leader's side of Forwarder.ReadIndex: once this member has
// confirmed it still leads, the index of the last entry its state has applied,
// which covers every write it acknowledged.
func (s *Store) ReadIndex(ctx context.Context) (uint64, error) {
	if !s.IsLeader() {
		return 0, ErrNotLeader
	}
	_, index := s.fsm.read()
	if err := s.raft.VerifyLeader().Error(); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	return index, nil
}

// Sync waits until this member's state holds every write the leader had
// acknowledged when Sync was called: reads after it are consistent. On the
// leader it returns at once.
func (s *Store) Sync(ctx context.Context) error {
	_, err := s.syncLeader(ctx)
	return err
}

// syncLeader is Sync that also returns the leader's address ("" when this
// member leads). A leader that cannot be reached, or that is no longer the
// leader, is waited out (at most LeaderWait) for the next one.
func (s *Store) syncLeader(ctx context.Context) (raft.ServerAddress, error) {
	deadline := time.Now().Add(s.cfg.LeaderWait)
	for {
		addr, err := s.leader(ctx)
		if err != nil || addr == "" {
			return addr, err
		}
		if s.cfg.Forward == nil {
			return "", ErrNotLeader
		}
		var index uint64
		err = s.whileLeads(ctx, addr, func(ctx context.Context) error {
			var err error
			index, err = s.cfg.Forward.ReadIndex(ctx, addr)
			return err
		})
		if err == nil {
			return addr, s.waitIndex(ctx, index)
		}
		if !errors.Is(err, ErrLeaderUnreachable) && !errors.Is(err, ErrNotLeader) && !errors.Is(err, errLeaderChanged) {
			return "", err
		}
		if time.Now().After(deadline) {
			return "", ErrNoLeader
		}
		if err := pause(ctx, 50*time.Millisecond); err != nil {
			return "", err
		}
	}
}

// forward proposes an encoded batch through the leader at addr, again through
// the next leader while the leader cannot be reached (the batch was surely not
// delivered), and waits until this member has applied it.
func (s *Store) forward(ctx context.Context, addr raft.ServerAddress, data []byte) (uint64, error) {
	deadline := time.Now().Add(s.cfg.LeaderWait)
	for {
		index, err := s.proposeTo(ctx, addr, data)
		if err == nil {
			return index, s.waitIndex(ctx, index)
		}
		if !errors.Is(err, ErrLeaderUnreachable) {
			return 0, err
		}
		if time.Now().After(deadline) {
			return 0, ErrNoLeader
		}
		if err := pause(ctx, 50*time.Millisecond); err != nil {
			return 0, err
		}
		if addr, err = s.leader(ctx); err != nil {
			return 0, err
		}
		if addr == "" {
			return s.apply(ctx, data) // this member leads now
		}
	}
}

// errLeaderChanged is a forwarded write whose leader was replaced while it
// waited for the answer (the leader froze, or was cut off).
var errLeaderChanged error = unavailableError{msg: "the swarm's leader changed during the write, which may or may not have been applied: read the object again and retry"}

// proposeTo forwards a batch to the leader at addr, giving up as soon as this
// member sees another leader: a leader that froze or was cut off holds the
// request without answering, and its successor is known in about a second.
func (s *Store) proposeTo(ctx context.Context, addr raft.ServerAddress, data []byte) (uint64, error) {
	var index uint64
	err := s.whileLeads(ctx, addr, func(ctx context.Context) error {
		var err error
		index, err = s.cfg.Forward.Propose(ctx, addr, data)
		return err
	})
	return index, err
}

// whileLeads runs call, cancelling it (and answering errLeaderChanged) when
// this member sees a leader other than addr.
func (s *Store) whileLeads(ctx context.Context, addr raft.ServerAddress, call func(context.Context) error) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	moved := make(chan struct{})
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-cctx.Done():
				return
			case <-tick.C:
				if now, _ := s.raft.LeaderWithID(); now != "" && now != addr {
					close(moved)
					cancel()
					return
				}
			}
		}
	}()
	err := call(cctx)
	if err != nil {
		select {
		case <-moved:
			return errLeaderChanged
		default:
		}
	}
	return err
}

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// waitIndex waits until the state machine has applied index.
func (s *Store) waitIndex(ctx context.Context, index uint64) error {
	if _, cur := s.fsm.read(); cur >= index {
		return nil
	}
	ch := s.fsm.notify(index)
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for entry %d to be applied: %w", index, ctx.Err())
	}
}

// Error codes carry the store's errors across a forwarded write.
const (
	codeOutOfSequence = "out_of_sequence"
	codeNotFound      = "not_found"
	codeConflict      = "conflict"
	codeInvalid       = "invalid"
	codeUnavailable   = "unavailable"
	codeNotLeader     = "not_leader"
)

// ErrorCode names the kind of a store error, for sending it to a follower.
func ErrorCode(err error) string {
	var (
		nf interface{ NotFound() bool }
		cf interface{ Conflict() bool }
		iv interface{ InvalidParameter() bool }
		un interface{ Unavailable() bool }
	)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrOutOfSequence):
		return codeOutOfSequence
	case errors.Is(err, ErrNotLeader):
		return codeNotLeader
	case errors.As(err, &nf) && nf.NotFound():
		return codeNotFound
	case errors.As(err, &cf) && cf.Conflict():
		return codeConflict
	case errors.As(err, &iv) && iv.InvalidParameter():
		return codeInvalid
	case errors.As(err, &un) && un.Unavailable():
		return codeUnavailable
	}
	return ""
}

// ErrorFromCode rebuilds an error ErrorCode named, with the leader's message.
func ErrorFromCode(code, msg string) error {
	switch code {
	case codeOutOfSequence:
		return ErrOutOfSequence
	case codeNotLeader:
		return ErrNotLeader
	case codeNotFound:
		return notFoundMessage{msg: msg}
	case codeConflict:
		return conflictError{msg: msg}
	case codeInvalid:
		return invalidError{msg: msg}
	case codeUnavailable:
		return unavailableError{msg: msg}
	}
	return errors.New(msg)
}

// notFoundMessage is a not-found error known only by its message (one that
// came from the leader).
type notFoundMessage struct{ msg string }

func (e notFoundMessage) Error() string  { return e.msg }
func (e notFoundMessage) NotFound() bool { return true }

// MaxEntrySize bounds one write (one Raft entry). The largest legitimate ones
// (a service update with its previous spec and registry credentials, a round of
// the orchestrator or the scheduler) stay under 2 MiB; Raft replicates entries
// whole and every member keeps them until a snapshot, so one much larger would
// cost every manager. Entries already in a log are never refused: only new
// proposals are checked.
const MaxEntrySize = 4 << 20

func checkEntrySize(data []byte) error {
	if len(data) > MaxEntrySize {
		return invalidError{msg: fmt.Sprintf("the change is too large to store: %d bytes, more than the limit of %d bytes (4 MiB) per change", len(data), MaxEntrySize)}
	}
	return nil
}
