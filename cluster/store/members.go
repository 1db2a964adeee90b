package store

import (
	"context"
	"fmt"
	"time"

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

// Member is one voter of the Raft cluster: a manager.
type Member struct {
	ID   string
	Addr raft.ServerAddress
}

// Members lists the Raft cluster's voters, as this member knows them.
func (s *Store) Members() ([]Member, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("read raft configuration: %w", err)
	}
	var out []Member
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			out = append(out, Member{ID: string(srv.ID), Addr: srv.Address})
		}
	}
	return out, nil
}

// Leadership streams whether this member leads: its state now, then every
// change, until ctx is done.
func (s *Store) Leadership(ctx context.Context) <-chan bool {
	obs := make(chan raft.Observation, 8)
	o := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.RaftState)
		return ok
	})
	s.raft.RegisterObserver(o)
	out := make(chan bool, 1)
	go func() {
		defer close(out)
		defer s.raft.DeregisterObserver(o)
		last := s.IsLeader()
		out <- last
		// Observations may be dropped when the channel is full; the state is
		// read again on each one and on a slow tick, so no change is missed.
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-obs:
			case <-tick.C:
			}
			if now := s.IsLeader(); now != last {
				last = now
				select {
				case out <- now:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// Reachability is what the leader learns of a member's heartbeats.
type Reachability struct {
	ID        string
	Reachable bool
}

// Heartbeats streams, on the leader, when a member stops or resumes answering
// its heartbeats, until ctx is done.
func (s *Store) Heartbeats(ctx context.Context) <-chan Reachability {
	obs := make(chan raft.Observation, 16)
	o := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation:
			return true
		}
		return false
	})
	s.raft.RegisterObserver(o)
	out := make(chan Reachability, 16)
	go func() {
		defer close(out)
		defer s.raft.DeregisterObserver(o)
		for {
			var r Reachability
			select {
			case <-ctx.Done():
				return
			case ob := <-obs:
				switch d := ob.Data.(type) {
				case raft.FailedHeartbeatObservation:
					r = Reachability{ID: string(d.PeerID)}
				case raft.ResumedHeartbeatObservation:
					r = Reachability{ID: string(d.PeerID), Reachable: true}
				}
			}
			select {
			case out <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// Recover rewrites this member's Raft configuration so that it is the only
// voter, keeping its state (swarm init --force-new-cluster). The store must
// be closed; Open it again afterwards.
func Recover(cfg Config, self raft.ServerAddress) error {
	return recoverCluster(withDefaults(cfg), self)
}
