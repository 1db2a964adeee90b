package session

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
)

// Follower opens sessions with whichever manager leads: in-process when this
// node's own manager does, else over the control port, following "not the
// leader" answers to the leader. It keeps the list of managers the sessions
// name, so the node finds the swarm again after any manager changes.
type Follower struct {
	nodeID string
	client *http.Client
	local  func() Server
	extra  func() []string
	onList func([]string)

	mu       sync.Mutex
	managers []string
}

// FollowerConfig configures a Follower.
type FollowerConfig struct {
	NodeID string
	// Client speaks the control port's RPC protocol.
	Client *http.Client
	// Managers are the control addresses known when the node starts.
	Managers []string
	// Local returns this node's own session server while its manager leads,
	// else nil. Nil on workers.
	Local func() Server
	// Candidates, if set, names managers to try before the known ones (a
	// manager's own Raft members).
	Candidates func() []string
	// OnManagers is called when the list of managers changes (to keep it).
	OnManagers func([]string)
}

// NewFollower returns a Follower.
func NewFollower(cfg FollowerConfig) *Follower {
	return &Follower{nodeID: cfg.NodeID, client: cfg.Client, local: cfg.Local, extra: cfg.Candidates, onList: cfg.OnManagers, managers: slices.Clone(cfg.Managers)}
}

// Managers are the control addresses of the managers, the leader first as far
// as this node knows.
func (f *Follower) Managers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.managers)
}

func (f *Follower) setManagers(list []string) {
	f.mu.Lock()
	changed := !slices.Equal(f.managers, list)
	f.managers = slices.Clone(list)
	f.mu.Unlock()
	if changed && f.onList != nil {
		f.onList(slices.Clone(list))
	}
}

// Open opens a session with the leader.
func (f *Follower) Open(ctx context.Context, hello Hello) (Session, error) {
	if f.local != nil {
		if srv := f.local(); srv != nil {
			s, err := Local(srv, f.nodeID).Open(ctx, hello)
			if err != nil {
				return nil, err
			}
			return f.watch(s), nil
		}
	}
	tried := map[string]bool{}
	queue := f.Managers()
	if f.extra != nil {
		queue = append(f.extra(), queue...)
	}
	var last error = errors.New("session: no manager known")
	for len(queue) > 0 {
		addr := queue[0]
		queue = queue[1:]
		if tried[addr] {
			continue
		}
		tried[addr] = true
		s, err := Remote(f.client, addr).Open(ctx, hello)
		if err == nil {
			return f.watch(s), nil
		}
		last = err
		var nl NotLeaderError
		if errors.As(err, &nl) {
			// Managers this one knows of and this node did not: a list gone
			// stale while the node was away, or since a promotion.
			for _, m := range nl.Managers {
				if !tried[m] && !slices.Contains(queue, m) {
					queue = append(queue, m)
				}
			}
			if nl.Leader != "" && !tried[nl.Leader] {
				queue = append([]string{nl.Leader}, queue...)
			}
		}
		var un UnknownNodeError
		if errors.As(err, &un) || ctx.Err() != nil {
			return nil, err
		}
	}
	return nil, last
}

// watch passes a session's messages on, keeping the managers they name.
func (f *Follower) watch(s Session) Session {
	w := &watchedSession{Session: s, msgs: make(chan Message, 16), done: make(chan struct{})}
	go func() {
		defer close(w.msgs)
		for m := range s.Messages() {
			if len(m.Managers) > 0 {
				f.setManagers(m.Managers)
			}
			select {
			case w.msgs <- m:
			case <-w.done:
				return
			}
		}
	}()
	return w
}

type watchedSession struct {
	Session
	msgs chan Message
	once sync.Once
	done chan struct{}
}

func (w *watchedSession) Messages() <-chan Message { return w.msgs }

func (w *watchedSession) Close() {
	w.once.Do(func() { close(w.done) })
	w.Session.Close()
}
