package store

import (
	"context"
	"sync"
)

// Event is one applied change of one object.
type Event struct {
	Kind   Kind
	Action Action
	ID     string
	// Object is a deep copy of the new value (*swarm.Service, ...); the
	// removed value for ActionRemove.
	Object any
	// Old is the previous value for ActionUpdate, nil otherwise.
	Old any
	// Index is the Raft index of the entry that made the change.
	Index uint64
}

// feed fans applied changes out to subscribers. publish never blocks: each
// subscriber has a queue drained by its own goroutine, bounded by maxQueue; a
// subscriber that falls that far behind loses its queue and gets one
// ActionResync event instead, and reads the state afresh.
type feed struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
	done   chan struct{} // closed when the store closes
	wg     sync.WaitGroup
}

func newFeed() *feed {
	return &feed{subs: make(map[*subscriber]struct{}), done: make(chan struct{})}
}

// maxQueue bounds the changes waiting for one subscriber.
const maxQueue = 1 << 16

type subscriber struct {
	kinds map[Kind]bool // nil: every kind
	node  string        // non-empty: only this node's tasks and node object
	out   chan Event

	mu       sync.Mutex
	queue    []change
	overflow bool          // changes were dropped: a resync is owed
	wake     chan struct{} // capacity 1: "the queue may be non-empty"

	stopOnce sync.Once
	stop     chan struct{} // closed to cancel this subscription
}

// subscribe registers a subscriber and starts its sender. The caller decides
// what "after" means: the FSM publishes under its lock, so subscribing under
// that lock pins the subscription to a snapshot.
// The returned function cancels the subscription.
func (f *feed) subscribe(ctx context.Context, node string, kinds []Kind) (<-chan Event, func()) {
	s := &subscriber{node: node, out: make(chan Event), wake: make(chan struct{}, 1), stop: make(chan struct{})}
	cancel := func() { s.stopOnce.Do(func() { close(s.stop) }) }
	if len(kinds) > 0 {
		s.kinds = make(map[Kind]bool, len(kinds))
		for _, k := range kinds {
			s.kinds[k] = true
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		close(s.out)
		return s.out, cancel
	}
	f.subs[s] = struct{}{}
	f.wg.Add(1)
	go f.send(ctx, s)
	return s.out, cancel
}

// publish queues changes for every interested subscriber.
func (f *feed) publish(changes []change) {
	if len(changes) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		s.enqueue(changes)
	}
}

func (s *subscriber) enqueue(changes []change) {
	s.mu.Lock()
	n := len(s.queue)
	for _, c := range changes {
		if !s.wants(c) {
			continue
		}
		if len(s.queue) >= maxQueue {
			clear(s.queue)
			s.queue, s.overflow = s.queue[:0], true
		}
		if !s.overflow {
			s.queue = append(s.queue, c)
		}
	}
	added := len(s.queue) > n || s.overflow
	s.mu.Unlock()
	if added {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// wants reports whether the subscriber asked for change c; it looks only at
// the change's keys, never at the encoded object.
func (s *subscriber) wants(c change) bool {
	if s.kinds != nil && !s.kinds[c.kind] {
		return false
	}
	if s.node == "" {
		return true
	}
	switch c.kind {
	case KindTask:
		return c.node == s.node || c.oldNode == s.node
	case KindNode, KindPeer:
		return c.id == s.node
	}
	return true
}

// take returns the queued changes, or just a resync when changes were dropped.
func (s *subscriber) take() []change {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.overflow {
		s.overflow, s.queue = false, nil
		return []change{{action: ActionResync}}
	}
	q := s.queue
	s.queue = nil
	return q
}

// send delivers queued changes in order until ctx is done or the store
// closes, then unsubscribes and closes the channel.
func (f *feed) send(ctx context.Context, s *subscriber) {
	defer f.wg.Done()
	defer close(s.out)
	defer f.unsubscribe(s)
	for {
		for _, c := range s.take() {
			ev, err := c.event()
			if err != nil {
				continue // records were encoded by the store itself; cannot happen
			}
			select {
			case s.out <- ev:
			case <-ctx.Done():
				return
			case <-f.done:
				return
			case <-s.stop:
				return
			}
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return
		case <-f.done:
			return
		case <-s.stop:
			return
		}
	}
}

func (f *feed) unsubscribe(s *subscriber) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.subs, s)
}

// close stops every subscriber and waits for their goroutines.
func (f *feed) close() {
	f.mu.Lock()
	if !f.closed {
		f.closed = true
		close(f.done)
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// event decodes a change into an Event with its own copies of the objects.
func (c change) event() (Event, error) {
	ev := Event{Kind: c.kind, Action: c.action, ID: c.id, Index: c.index}
	if c.action == ActionResync {
		return ev, nil
	}
	obj, err := decodeObject(c.kind, c.data)
	if err != nil {
		return ev, err
	}
	ev.Object = obj
	if c.old != nil {
		if ev.Old, err = decodeObject(c.kind, c.old); err != nil {
			return ev, err
		}
	}
	return ev, nil
}
