package container

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"syscall"
	"time"
)

// Event is a container lifecycle event, as `docker events` shows it.
type Event struct {
	ID, Name string
	// Action is create, start, die, oom, kill, stop, destroy,
	// "health_status: healthy" or "health_status: unhealthy".
	Action   string
	ExitCode int               // for die
	Signal   int               // for kill
	Time     time.Time         // when it happened
	Labels   map[string]string // the container's labels
}

// subscriberBuffer is how many events a subscriber may fall behind before
// events are dropped for it.
const subscriberBuffer = 1024

// eventHub fans events out to subscribers without ever blocking the publisher.
type eventHub struct {
	log  *slog.Logger
	mu   sync.Mutex
	subs map[chan Event]*subscriber
}

type subscriber struct{ dropped int }

func newEventHub(log *slog.Logger) *eventHub {
	return &eventHub{log: log, subs: map[chan Event]*subscriber{}}
}

// Subscribe returns a channel of container events until ctx is done. A
// subscriber more than ~1000 events behind loses events (logged).
func (m *Manager) Subscribe(ctx context.Context) <-chan Event {
	h := m.events
	ch := make(chan Event, subscriberBuffer)
	h.mu.Lock()
	h.subs[ch] = &subscriber{}
	h.mu.Unlock()
	context.AfterFunc(ctx, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
	})
	return ch
}

func (h *eventHub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch, s := range h.subs {
		select {
		case ch <- e:
			if s.dropped > 0 {
				h.log.Warn("event subscriber caught up after dropping events", "dropped", s.dropped)
				s.dropped = 0
			}
		default:
			if s.dropped == 0 {
				h.log.Warn("event subscriber too slow; dropping events")
			}
			s.dropped++
		}
	}
}

func (m *Manager) emit(c *container, action string, exitCode int) {
	m.mu.Lock()
	e := Event{ID: c.rec.ID, Name: c.rec.Name, Action: action, ExitCode: exitCode, Time: now(), Labels: maps.Clone(c.rec.Config.Labels)}
	m.mu.Unlock()
	m.events.publish(e)
}

func (m *Manager) emitSignal(c *container, action string, sig syscall.Signal) {
	m.mu.Lock()
	e := Event{ID: c.rec.ID, Name: c.rec.Name, Action: action, Signal: int(sig), Time: now(), Labels: maps.Clone(c.rec.Config.Labels)}
	m.mu.Unlock()
	m.events.publish(e)
}
