package engineapi

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"

	ctr "github.com/shoal-project/shoal/runtime/container"
)

// Sizes of the event hub's buffers.
const (
	// eventHistory is how many recent events are kept for `docker events --since`.
	eventHistory = 1024
	// eventSubscriberBuffer is how far a slow client may fall behind before events
	// are dropped for it.
	eventSubscriberBuffer = 256
	// eventSourceMaxBackoff bounds the wait before re-subscribing to a source whose
	// feed ended (a swarm feed ends when the node leaves or is not in a swarm yet).
	eventSourceMaxBackoff = 5 * time.Second
	// imageCacheLimit bounds the container ID -> image name cache.
	imageCacheLimit = 4096
)

// eventHub merges the swarm's object events and the node's container events into one
// feed, keeps the most recent ones for replay, and fans them out to the clients of
// GET /events. Its goroutines run from newEventHub until close.
type eventHub struct {
	log    *slog.Logger
	ct     Containers
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// swarmJoined ends the wait before re-subscribing to the swarm feed, so events
	// right after `docker swarm init` or join are not missed.
	swarmJoined chan struct{}

	mu      sync.Mutex
	closed  bool
	ring    [eventHistory]events.Message
	next    int // ring index the next event is written to
	stored  int // number of valid events in ring
	clients map[*eventClient]struct{}
}

// eventClient is one subscriber of the hub.
type eventClient struct {
	ch    chan events.Message
	match func(events.Message) bool
}

// newEventHub starts consuming sw.Events and ct.Subscribe (either may be nil).
func newEventHub(sw Swarm, ct Containers, log *slog.Logger) *eventHub {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &eventHub{log: log, ct: ct, cancel: cancel, swarmJoined: make(chan struct{}, 1), clients: map[*eventClient]struct{}{}}
	if sw != nil {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			pumpEvents(ctx, h, "swarm", sw.Events, h.publishSwarm, h.swarmJoined)
		}()
	}
	if ct != nil {
		images := map[string]string{}
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			pumpEvents(ctx, h, "containers", ct.Subscribe, func(ev ctr.Event) {
				msg := h.containerMessage(ctx, ev, images)
				// As dockerd's, a task container joins its network as it starts
				// and leaves it once it died.
				if events.Action(ev.Action) == events.ActionStart {
					h.publishNetwork(ev, events.ActionConnect)
				}
				h.publish(msg)
				if events.Action(ev.Action) == events.ActionDie {
					h.publishNetwork(ev, events.ActionDisconnect)
				}
			}, nil)
		}()
	}
	return h
}

// close stops the hub's goroutines and ends every subscriber's stream.
func (h *eventHub) close() {
	h.cancel()
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for c := range h.clients {
		close(c.ch)
		delete(h.clients, c)
	}
}

// swarmChanged tells the hub the node just joined or created a swarm.
func (h *eventHub) swarmChanged() {
	select {
	case h.swarmJoined <- struct{}{}:
	default:
	}
}

// pumpEvents feeds every value of a source to handle until ctx is done. A feed that
// ends (or does not exist yet) is asked for again after a growing pause, or at once
// when retry fires, so the hub picks up the swarm feed once the node joins a swarm.
func pumpEvents[T any](ctx context.Context, h *eventHub, source string, subscribe func(context.Context) <-chan T, handle func(T), retry <-chan struct{}) {
	backoff := time.Second
	for {
		ch := subscribe(ctx)
		received := false
		if ch != nil {
		drain:
			for {
				select {
				case <-ctx.Done():
					return
				case v, ok := <-ch:
					if !ok {
						break drain
					}
					received = true
					handle(v)
				}
			}
		}
		if received {
			backoff = time.Second
		}
		h.log.Debug("event source ended; subscribing again", "source", source, "after", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			backoff = min(backoff*2, eventSourceMaxBackoff)
		case <-retry:
			t.Stop()
			backoff = time.Second
		}
	}
}

// publishSwarm publishes a swarm object event, filling in what the source left out.
func (h *eventHub) publishSwarm(ev events.Message) {
	if ev.Scope == "" {
		ev.Scope = "swarm"
	}
	if ev.TimeNano == 0 {
		if ev.Time != 0 {
			ev.TimeNano = ev.Time * int64(time.Second)
		} else {
			ev.TimeNano = time.Now().UnixNano()
		}
	}
	if ev.Time == 0 {
		ev.Time = ev.TimeNano / int64(time.Second)
	}
	h.publish(ev)
}

// containerMessage translates a runtime event into Docker's container event: the
// container's labels, name and image as attributes, and the exit code of a "die".
// images caches each container's image name, which the runtime event does not carry;
// it is owned by the container pump goroutine.
func (h *eventHub) containerMessage(ctx context.Context, ev ctr.Event, images map[string]string) events.Message {
	attrs := make(map[string]string, len(ev.Labels)+3)
	for k, v := range ev.Labels {
		attrs[k] = v
	}
	if ev.Name != "" {
		attrs["name"] = strings.TrimPrefix(ev.Name, "/")
	}
	image, ok := images[ev.ID]
	if !ok {
		image = h.containerImage(ctx, ev.ID)
		if len(images) >= imageCacheLimit {
			clear(images)
		}
		images[ev.ID] = image
	}
	if ev.Action == string(events.ActionDestroy) {
		delete(images, ev.ID)
	}
	if image != "" {
		attrs["image"] = image
	}
	switch events.Action(ev.Action) {
	case events.ActionDie:
		attrs["exitCode"] = strconv.Itoa(ev.ExitCode)
	case events.ActionKill:
		if ev.Signal != 0 {
			attrs["signal"] = strconv.Itoa(ev.Signal)
		}
	}
	at := ev.Time
	if at.IsZero() {
		at = time.Now()
	}
	return events.Message{
		Type:     events.ContainerEventType,
		Action:   events.Action(ev.Action),
		Actor:    events.Actor{ID: ev.ID, Attributes: attrs},
		Scope:    "local",
		Time:     at.Unix(),
		TimeNano: at.UnixNano(),
	}
}

// publishNetwork publishes the bridge network's connect or disconnect event for a
// task container (every task container has an endpoint on the node's bridge).
func (h *eventHub) publishNetwork(ev ctr.Event, action events.Action) {
	if ev.Labels["com.docker.swarm.task.id"] == "" {
		return
	}
	at := ev.Time
	if at.IsZero() {
		at = time.Now()
	}
	h.publish(events.Message{
		Type:     events.NetworkEventType,
		Action:   action,
		Actor:    events.Actor{ID: networkID(bridgeNetwork), Attributes: map[string]string{"container": ev.ID, "name": bridgeNetwork, "type": "bridge"}},
		Scope:    "local",
		Time:     at.Unix(),
		TimeNano: at.UnixNano(),
	})
}

// containerImage looks up the image a container was created from; "" if unknown.
func (h *eventHub) containerImage(ctx context.Context, id string) string {
	if h.ct == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := h.ct.Inspect(ctx, id)
	if err != nil || resp.Config == nil {
		return ""
	}
	return resp.Config.Image
}

// publish records ev in the history and hands it to every matching subscriber. A
// subscriber too far behind loses the event rather than stalling the hub.
func (h *eventHub) publish(ev events.Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.ring[h.next] = ev
	h.next = (h.next + 1) % eventHistory
	if h.stored < eventHistory {
		h.stored++
	}
	for c := range h.clients {
		if !c.match(ev) {
			continue
		}
		select {
		case c.ch <- ev:
		default:
			h.log.Warn("dropping event for a slow events client", "type", ev.Type, "action", ev.Action, "id", ev.Actor.ID)
		}
	}
}

// subscribe returns the recorded events between since and until (none when both are
// zero, as Docker does) that match, and a channel of the matching events published
// from now on, with no event lost or repeated between the two. The channel closes when
// the hub closes; cancel unsubscribes.
func (h *eventHub) subscribe(since, until time.Time, match func(events.Message) bool) (past []events.Message, live <-chan events.Message, cancel func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !since.IsZero() || !until.IsZero() {
		past = h.history(since, until, match)
	}
	c := &eventClient{ch: make(chan events.Message, eventSubscriberBuffer), match: match}
	if h.closed {
		close(c.ch)
		return past, c.ch, func() {}
	}
	h.clients[c] = struct{}{}
	return past, c.ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.clients, c)
	}
}

// history returns the recorded events in [since, until] that match, oldest first.
// The caller holds h.mu.
func (h *eventHub) history(since, until time.Time, match func(events.Message) bool) []events.Message {
	var sinceNano, untilNano int64
	if !since.IsZero() {
		sinceNano = since.UnixNano()
	}
	if !until.IsZero() {
		untilNano = until.UnixNano()
	}
	var out []events.Message
	start := (h.next - h.stored + eventHistory) % eventHistory
	for i := range h.stored {
		ev := h.ring[(start+i)%eventHistory]
		if ev.TimeNano < sinceNano || (untilNano > 0 && ev.TimeNano > untilNano) {
			continue
		}
		if match(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// listeners is the number of connected events clients, for `docker info`.
func (h *eventHub) listeners() int {
	if h == nil {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}
