package store

import (
	"context"
	"fmt"

	"github.com/hashicorp/raft"
)

// Addr returns the Raft address of this node on its transport.
func (s *Store) Addr() raft.ServerAddress { return s.trans.LocalAddr() }

// Leader returns the Raft server ID and address of the current leader, or
// empty values when there is none.
func (s *Store) Leader() (id string, addr raft.ServerAddress) {
	a, i := s.raft.LeaderWithID()
	return string(i), a
}

// AddVoter adds a manager to the cluster (swarm join as manager, or node
// promote). Only the leader can change the membership.
func (s *Store) AddVoter(ctx context.Context, id string, addr raft.ServerAddress) error {
	if !s.IsLeader() {
		return ErrNotLeader
	}
	if err := s.raft.AddVoter(raft.ServerID(id), addr, 0, proposeTimeout(ctx)).Error(); err != nil {
		return membershipError("add voter "+id, err)
	}
	return nil
}

// RemoveServer removes a member from the cluster (node demote or rm).
func (s *Store) RemoveServer(ctx context.Context, id string) error {
	if !s.IsLeader() {
		return ErrNotLeader
	}
	if err := s.raft.RemoveServer(raft.ServerID(id), 0, proposeTimeout(ctx)).Error(); err != nil {
		return membershipError("remove server "+id, err)
	}
	return nil
}

func membershipError(what string, err error) error {
	if isLeadershipError(err) {
		return fmt.Errorf("%s: %w: %w", what, ErrNotLeader, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
