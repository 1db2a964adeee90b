package agent

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/shoal-project/shoal/cluster/session"
)

// Reconnection backoff: the first retry is quick (a failover takes about a
// second), later ones slow down so a node cut off from every manager costs
// little.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// sessionHolder holds the open session, if any, for the report loop.
type sessionHolder struct {
	mu      sync.Mutex
	current session.Session
	changed chan struct{} // closed and replaced whenever current changes
}

func (h *sessionHolder) set(s session.Session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.current = s
	if h.changed != nil {
		close(h.changed)
	}
	h.changed = make(chan struct{})
}

// get returns the open session (or nil) and a channel closed when it changes.
func (h *sessionHolder) get() (session.Session, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.changed == nil {
		h.changed = make(chan struct{})
	}
	return h.current, h.changed
}

// holdSessions keeps a session open with the leading manager until ctx is done,
// passing its assignment sets to the loop.
func (a *Agent) holdSessions(ctx context.Context, sets chan<- session.AssignmentSet) {
	backoff := minBackoff
	failures := 0
	for ctx.Err() == nil {
		var hello session.Hello
		if a.cfg.Hello != nil {
			hello = a.cfg.Hello()
		}
		s, err := a.cfg.Dispatcher.Open(ctx, hello)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			// One failure is a failover; a run of them is worth a warning.
			if failures == 5 {
				a.log.Warn("no session with a manager; tasks keep running meanwhile", "err", err)
			} else {
				a.log.Debug("open session", "err", err)
			}
			sleep(ctx, jitter(backoff))
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		if failures >= 5 {
			a.log.Info("session with a manager open again")
		}
		failures, backoff = 0, minBackoff
		a.sess.set(s)
		a.serve(ctx, s, sets)
		a.sess.set(nil)
		s.Close()
		if err := s.Err(); err != nil && ctx.Err() == nil {
			a.log.Debug("session ended", "err", err)
		}
	}
}

// serve passes one session's messages on and sends its heartbeats, until it ends.
func (a *Agent) serve(ctx context.Context, s session.Session, sets chan<- session.AssignmentSet) {
	periods := make(chan time.Duration, 1)
	done, beats := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(beats)
		a.heartbeats(ctx, s, periods, done)
	}()
	defer func() { <-beats }()
	defer close(done)
	defer s.Close()
	var view *session.Overlay
	for m := range s.Messages() {
		if m.HeartbeatPeriod > 0 {
			select {
			case periods <- m.HeartbeatPeriod:
			default:
			}
		}
		if m.Peers != nil {
			a.peers.set(m.Peers)
		}
		if m.CA != nil && a.cfg.OnCA != nil {
			a.cfg.OnCA(m.CA)
		}
		if m.Mesh != nil && a.cfg.OnMesh != nil {
			a.cfg.OnMesh(m.Mesh)
			if m.Overlay == nil {
				m.Overlay = view // the mesh interface may have opened: apply again
			}
		}
		if m.Overlay != nil && m.Overlay.Mesh != nil && a.cfg.OnMesh != nil {
			a.cfg.OnMesh(m.Overlay.Mesh)
		}
		if m.Overlay != nil {
			view = m.Overlay
			if a.cfg.OnOverlay != nil {
				a.cfg.OnOverlay(view)
			}
			a.postView(view)
		}
		if m.Node != nil && a.cfg.OnNode != nil {
			a.cfg.OnNode(m.Node)
		}
		if m.Assignments != nil {
			select {
			case sets <- *m.Assignments:
			case <-ctx.Done():
				return
			}
		}
	}
}

// heartbeats tells the manager the node is alive, every period, until the
// session ends; a manager that no longer knows the session ends it.
func (a *Agent) heartbeats(ctx context.Context, s session.Session, periods <-chan time.Duration, done <-chan struct{}) {
	period := 5 * time.Second
	timer := time.NewTimer(period)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case p := <-periods:
			if p != period {
				period = p
				timer.Reset(period)
			}
		case <-timer.C:
			hctx, cancel := context.WithTimeout(ctx, period)
			err := s.Heartbeat(hctx)
			cancel()
			if errors.Is(err, session.ErrInvalidSession) {
				s.Close()
				return
			}
			if err != nil && ctx.Err() == nil {
				a.log.Debug("heartbeat", "err", err)
			}
			timer.Reset(period)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// jitter spreads reconnections of many nodes over time.
func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d)))
}

// reportLoop sends status updates through the open session in batches. While
// there is none, or a send fails, updates wait (the newest per task) and go
// with the next one.
func (a *Agent) reportLoop(ctx context.Context) {
	pending := map[string]session.StatusUpdate{}
	var order []string
	add := func(u session.StatusUpdate) {
		if _, ok := pending[u.TaskID]; !ok {
			order = append(order, u.TaskID)
		}
		pending[u.TaskID] = u
	}
	for {
		if len(pending) == 0 {
			select {
			case <-ctx.Done():
				return
			case u := <-a.reports:
				add(u)
			}
		}
		for more := true; more; {
			select {
			case u := <-a.reports:
				add(u)
			default:
				more = false
			}
		}
		s, changed := a.sess.get()
		if s == nil {
			select {
			case <-ctx.Done():
				return
			case <-changed:
			case u := <-a.reports:
				add(u)
			}
			continue
		}
		batch := make([]session.StatusUpdate, 0, len(order))
		for _, id := range order {
			batch = append(batch, pending[id])
		}
		if err := s.UpdateTaskStatus(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Debug("report task status", "updates", len(batch), "err", err)
			if errors.Is(err, session.ErrInvalidSession) {
				s.Close()
			}
			select {
			case <-ctx.Done():
				return
			case <-changed:
			case <-time.After(time.Second):
			}
			continue
		}
		clear(pending)
		order = order[:0]
	}
}

// postView hands the loop the newest overlay view, replacing one it has not
// taken yet.
func (a *Agent) postView(v *session.Overlay) {
	for {
		select {
		case a.views <- v:
			return
		default:
		}
		select {
		case <-a.views:
		default:
		}
	}
}

// Reopen ends the current session, so that the next one says the node's hello
// again (a new mesh key); tasks are not disturbed.
func (a *Agent) Reopen() {
	if s, _ := a.sess.get(); s != nil {
		s.Close()
	}
}
