package store

import (
	"time"

	"github.com/hashicorp/raft"
)

// Followers learn that an entry is committed only from the leader's next
// AppendEntries: the one that carries the next entry, or, once writes stop,
// the one hashicorp/raft sends after its CommitTimeout (50 ms, up to 100 with
// its jitter). A write forwarded by a follower returns once that follower has
// applied it, and a read there waits for what the leader had applied, so both
// paid those 50 to 100 ms: a `docker node update` through a follower took
// 108 ms against 24 ms through the leader. So after a write commits, the
// leader appends a barrier (an entry the state machine never sees), whose
// AppendEntries carries the commit index to the followers at once. Writes that
// commit while a barrier is in flight share the next one; a swarm of one
// manager sends none.

// barrierTimeout bounds how long a barrier may wait to be enqueued.
const barrierTimeout = time.Second

// nudgeFollowers asks for a barrier after a committed write; it never blocks.
func (s *Store) nudgeFollowers() {
	select {
	case s.nudge <- struct{}{}:
	default:
	}
}

// runNudges appends the barriers nudgeFollowers asks for, one at a time, until
// stop is closed.
func (s *Store) runNudges(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-s.nudge:
		}
		if !s.IsLeader() || !s.hasFollowers() {
			continue
		}
		if err := s.raft.Barrier(barrierTimeout).Error(); err != nil {
			s.log.Debug("store: barrier to carry the commit index to followers", "err", err)
		}
	}
}

// hasFollowers tells whether the Raft configuration has a member besides this one.
func (s *Store) hasFollowers() bool {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, srv := range f.Configuration().Servers {
		if srv.ID != raft.ServerID(s.cfg.NodeID) {
			return true
		}
	}
	return false
}
