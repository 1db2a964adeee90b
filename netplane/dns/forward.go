package dns

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// forwarder sends the queries the Table does not answer to the node's resolvers. It
// runs in the host's network namespace, so loopback resolvers such as
// systemd-resolved's 127.0.0.53 are reachable.
type forwarder struct {
	upstreams []string // host:port, tried in order
	timeout   time.Duration
	slots     chan struct{} // one token per query being forwarded
	log       *slog.Logger
}

func newForwarder(upstreams []string, timeout time.Duration, max int, log *slog.Logger) *forwarder {
	return &forwarder{upstreams: upstreams, timeout: timeout, slots: make(chan struct{}, max), log: log}
}

// acquire takes a slot for one forward without waiting; false means the server is
// at its bound and the query is to be failed at once rather than queued.
func (f *forwarder) acquire() bool {
	select {
	case f.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (f *forwarder) release() { <-f.slots }

// forward is the reply to req from the first upstream that answers, taking and
// giving back a slot; SERVFAIL when none answers, there is none, or no slot is free.
func (f *forwarder) forward(ctx context.Context, req *dns.Msg) *dns.Msg {
	if !f.acquire() {
		return failure(req, dns.RcodeServerFailure)
	}
	defer f.release()
	return f.exchange(ctx, req)
}

// exchange asks the upstreams in order, over UDP and again over TCP when the answer
// was truncated. An upstream answering SERVFAIL or REFUSED is passed over for the
// next; its reply is returned only if no later one does better. The caller holds a
// slot.
func (f *forwarder) exchange(ctx context.Context, req *dns.Msg) *dns.Msg {
	// A fresh ID: the client's is its own, and a predictable one would help whoever
	// tries to spoof the upstream's answer.
	q := req.Copy()
	q.Id = dns.Id()
	var fallback *dns.Msg
	for _, up := range f.upstreams {
		resp, err := f.ask(ctx, "udp", q, up)
		if err == nil && resp.Truncated {
			resp, err = f.ask(ctx, "tcp", q, up)
		}
		if err != nil {
			f.log.Debug("dns: upstream did not answer", "upstream", up,
				"name", q.Question[0].Name, "err", err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		resp.Id = req.Id
		if resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused {
			if fallback == nil {
				fallback = resp
			}
			continue
		}
		return resp
	}
	if fallback != nil {
		return fallback
	}
	return failure(req, dns.RcodeServerFailure)
}

// ask makes one exchange with one upstream within the forward timeout. Cancelling
// ctx closes the connection, so a stopped sandbox does not wait out the timeout.
func (f *forwarder) ask(ctx context.Context, network string, q *dns.Msg, upstream string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	c := &dns.Client{Net: network, Timeout: f.timeout}
	co, err := c.DialContext(ctx, upstream)
	if err != nil {
		return nil, fmt.Errorf("dial %s %s: %w", network, upstream, err)
	}
	defer co.Close()
	stop := context.AfterFunc(ctx, func() { co.Close() })
	defer stop()
	resp, _, err := c.ExchangeWithConnContext(ctx, q, co)
	if err != nil {
		return nil, fmt.Errorf("exchange over %s with %s: %w", network, upstream, err)
	}
	// Some servers leave the question out of an error reply; one that is there must
	// be ours.
	if len(resp.Question) > 1 || len(resp.Question) == 1 &&
		(!strings.EqualFold(resp.Question[0].Name, q.Question[0].Name) ||
			resp.Question[0].Qtype != q.Question[0].Qtype) {
		return nil, fmt.Errorf("exchange over %s with %s: answer to another question", network, upstream)
	}
	return resp, nil
}
