package cluster

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/hashicorp/raft"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/dispatcher"
	"github.com/shoal-project/shoal/cluster/orchestrator"
	"github.com/shoal-project/shoal/cluster/scheduler"
	"github.com/shoal-project/shoal/cluster/session"
	"github.com/shoal-project/shoal/cluster/store"
)

// leadership starts the manager loops when this manager becomes the leader and
// stops them when it stops being it. Only the leader runs them: they write
// through the store, and one writer of each kind keeps their decisions simple.
type leadership struct {
	c     *Cluster
	store *store.Store
	log   *slog.Logger

	mu   sync.Mutex
	disp *dispatcher.Dispatcher // the current term's, nil when not leading
}

func newLeadership(c *Cluster, s *store.Store) *leadership {
	return &leadership{c: c, store: s, log: c.log.With("component", "leadership")}
}

// run follows this manager's leadership until ctx is done.
func (l *leadership) run(ctx context.Context) {
	var (
		cancel context.CancelFunc
		loops  sync.WaitGroup
	)
	stop := func() {
		if cancel != nil {
			cancel()
			loops.Wait()
			cancel = nil
		}
	}
	defer stop()
	for leading := range l.store.Leadership(ctx) {
		if !leading {
			if cancel != nil {
				l.log.Info("no longer the swarm leader: manager loops stop")
			}
			stop()
			continue
		}
		if cancel != nil {
			continue
		}
		term, cancelTerm := context.WithCancel(ctx)
		cancel = cancelTerm
		loops.Add(1)
		go func() {
			defer loops.Done()
			l.lead(term)
		}()
	}
}

// lead runs the manager loops for one term, once every entry committed before
// it has been applied.
func (l *leadership) lead(ctx context.Context) {
	if err := l.store.WaitLeader(ctx); err != nil {
		return
	}
	l.log.Info("leading the swarm: manager loops start")
	disp := dispatcher.New(dispatcher.Config{
		Store:    l.store,
		Managers: l.managers,
		Metrics:  l.c.cfg.Metrics,
		Logger:   l.c.log.With("component", "dispatcher"),
	})
	var wg sync.WaitGroup
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				l.log.Error("manager loop stopped", "loop", name, "err", err)
			}
		}()
	}
	run("dispatcher", disp.Run)
	l.mu.Lock()
	l.disp = disp
	l.mu.Unlock()
	run("orchestrator", orchestrator.New(l.store, l.c.log.With("component", "orchestrator")).Run)
	run("scheduler", scheduler.NewLoop(l.store, l.c.log.With("component", "scheduler"), l.c.cfg.Metrics).Run)
	run("reachability", l.trackReachability)
	run("membership", l.reconcileMembers)
	run("root rotation", l.watchRotation)
	<-ctx.Done()
	l.mu.Lock()
	l.disp = nil
	l.mu.Unlock()
	wg.Wait()
}

// dispatcher is the current term's dispatcher, or nil when not leading.
func (l *leadership) dispatcher() *dispatcher.Dispatcher {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.disp
}

// sessionServer is what the session protocol serves: the dispatcher while this
// manager leads, else an error naming the leader.
func (l *leadership) sessionServer() (session.Server, error) {
	if d := l.dispatcher(); d != nil {
		return d, nil
	}
	return nil, session.NotLeaderError{Leader: l.leaderAddr(), Managers: l.managers()}
}

// leaderAddr is the control address of the leader, or "" when none is known.
func (l *leadership) leaderAddr() string {
	_, addr := l.store.Leader()
	return string(addr)
}

// managers are the control addresses of the managers, the leader first.
func (l *leadership) managers() []string {
	members, err := l.store.Members()
	if err != nil {
		return nil
	}
	leader := l.leaderAddr()
	out := make([]string, 0, len(members))
	if leader != "" {
		out = append(out, leader)
	}
	for _, m := range members {
		if string(m.Addr) != leader {
			out = append(out, string(m.Addr))
		}
	}
	return out
}

// trackReachability keeps the managers' reachability in their node objects:
// every one reachable when this term starts, then as Raft's heartbeats to them
// fail and resume.
func (l *leadership) trackReachability(ctx context.Context) error {
	beats := l.store.Heartbeats(ctx)
	members, err := l.store.Members()
	if err != nil {
		return err
	}
	for _, m := range members {
		l.setReachability(ctx, m.ID, swarm.ReachabilityReachable)
	}
	for r := range beats {
		state := swarm.ReachabilityUnreachable
		if r.Reachable {
			state = swarm.ReachabilityReachable
		}
		l.setReachability(ctx, r.ID, state)
	}
	return nil
}

func (l *leadership) setReachability(ctx context.Context, id string, state swarm.Reachability) {
	err := retryUpdate(ctx, l.store, func(tx store.Tx) error {
		n, err := tx.Node(id)
		if err != nil || n.ManagerStatus == nil || n.ManagerStatus.Reachability == state {
			return nil
		}
		n.ManagerStatus.Reachability = state
		return tx.UpdateNode(n)
	})
	if err != nil && ctx.Err() == nil {
		l.log.Warn("record manager reachability", "node", id, "err", err)
	}
}

// retryUpdate runs a store update, again while it is refused as out of sequence.
func retryUpdate(ctx context.Context, s *store.Store, fn func(tx store.Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = s.Update(ctx, fn); !errors.Is(err, store.ErrOutOfSequence) {
			return err
		}
	}
	return err
}

// addVoter makes a manager node a Raft voter at addr (on the leader).
func (l *leadership) addVoter(ctx context.Context, id string, addr raft.ServerAddress) error {
	return l.store.AddVoter(ctx, id, addr)
}
