package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Defaults of Config.
const (
	DefaultForwardTimeout = 2 * time.Second
	DefaultMaxForwards    = 256
	DefaultHostResolvConf = "/etc/resolv.conf"
)

var (
	// ErrClosed is returned by Serve after Close.
	ErrClosed = errors.New("dns server closed")
	// ErrUnknownSandbox is returned for a sandbox the server is not serving.
	ErrUnknownSandbox = errors.New("sandbox not served")
)

// Config is what a Server is built from. The zero Config forwards to the resolvers
// of the node's /etc/resolv.conf.
type Config struct {
	// Upstreams are the resolvers queries are forwarded to, tried in order. When
	// nil they are the nameservers of HostResolvConf; an empty list means none.
	Upstreams []netip.AddrPort
	// HostResolvConf is the node's resolv.conf, read by New when Upstreams is nil;
	// "" means DefaultHostResolvConf. A file with no nameserver leaves the server
	// with no upstream: every query it cannot answer gets SERVFAIL.
	HostResolvConf string
	// ForwardTimeout bounds one exchange with one upstream; 0 means
	// DefaultForwardTimeout.
	ForwardTimeout time.Duration
	// MaxForwards bounds the queries being forwarded at once over all sandboxes;
	// beyond it a query gets SERVFAIL at once. 0 means DefaultMaxForwards.
	MaxForwards int
	// Logger receives debug records of failed forwards; nil discards them.
	Logger *slog.Logger
}

// Server is a node's embedded DNS server: one Table, and sockets in every sandbox
// it serves. Its methods are safe for concurrent use.
type Server struct {
	table Table
	fwd   *forwarder
	log   *slog.Logger

	mu        sync.Mutex
	sandboxes map[string]*sandbox
	closed    bool
}

// New makes a Server with an empty Table and no sandbox. It reads the node's
// resolv.conf when cfg names no upstream.
func New(cfg Config) (*Server, error) {
	ups := cfg.Upstreams
	if ups == nil {
		path := cfg.HostResolvConf
		if path == "" {
			path = DefaultHostResolvConf
		}
		conf, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read the node's resolvers: %w", err)
		}
		ups = parseUpstreams(conf)
	}
	addrs := make([]string, len(ups))
	for i, up := range ups {
		addrs[i] = up.String()
	}
	timeout := orDefault(cfg.ForwardTimeout, DefaultForwardTimeout)
	maxFwd := orDefault(cfg.MaxForwards, DefaultMaxForwards)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		fwd:       newForwarder(addrs, timeout, maxFwd, log),
		log:       log,
		sandboxes: map[string]*sandbox{},
	}, nil
}

// orDefault is v, or def when v is not positive.
func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Table is the Table the server answers from; the agent replaces its content.
func (s *Server) Table() *Table { return &s.table }

// Serve starts answering in the network namespace at nsPath (whose loopback must be
// up) for a sandbox attached to networks, in the order its names are to be looked
// up. It returns once 127.0.0.11:53 is bound there over UDP and TCP; ctx bounds
// that setup only, the sandbox is served until Stop or Close. Serving costs two
// idle goroutines per sandbox (the UDP reader and the TCP acceptor), plus one per
// open TCP connection and per query being forwarded.
func (s *Server) Serve(ctx context.Context, sandboxID, nsPath string, networks []string) error {
	if err := s.checkFree(sandboxID); err != nil {
		return err
	}
	sb, err := listen(ctx, sandboxID, nsPath)
	if err != nil {
		return fmt.Errorf("serve dns in sandbox %s: %w", sandboxID, err)
	}
	sb.setNetworks(networks)
	s.mu.Lock()
	if err := s.checkFreeLocked(sandboxID); err != nil {
		s.mu.Unlock()
		_ = sb.stop()
		return err
	}
	s.sandboxes[sandboxID] = sb
	s.mu.Unlock()
	sb.start(s)
	return nil
}

func (s *Server) checkFree(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkFreeLocked(id)
}

func (s *Server) checkFreeLocked(id string) error {
	if s.closed {
		return ErrClosed
	}
	if _, ok := s.sandboxes[id]; ok {
		return fmt.Errorf("serve dns in sandbox %s: already served", id)
	}
	return nil
}

// SetNetworks changes the networks a served sandbox's names are looked up in.
func (s *Server) SetNetworks(sandboxID string, networks []string) error {
	sb := s.sandbox(sandboxID)
	if sb == nil {
		return fmt.Errorf("set networks of sandbox %s: %w", sandboxID, ErrUnknownSandbox)
	}
	sb.setNetworks(networks)
	return nil
}

// Stop closes a sandbox's sockets and connections and returns once none of its
// goroutines is left. Stopping a sandbox not served does nothing.
func (s *Server) Stop(sandboxID string) error {
	s.mu.Lock()
	sb := s.sandboxes[sandboxID]
	delete(s.sandboxes, sandboxID)
	s.mu.Unlock()
	if sb == nil {
		return nil
	}
	if err := sb.stop(); err != nil {
		return fmt.Errorf("stop dns in sandbox %s: %w", sandboxID, err)
	}
	return nil
}

// Close stops every sandbox; Serve fails afterwards.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	all := s.sandboxes
	s.sandboxes = map[string]*sandbox{}
	s.mu.Unlock()
	var errs []error
	for id, sb := range all {
		if err := sb.stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop dns in sandbox %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// Answer is the reply a served sandbox gets to req, as if it had come through the
// sandbox's socket: from the Table, else from the upstreams. A sandbox not served
// gets REFUSED, a malformed query FORMERR or NOTIMP.
func (s *Server) Answer(ctx context.Context, sandboxID string, req *dns.Msg) *dns.Msg {
	if early := checkQuery(req); early != nil {
		return early
	}
	sb := s.sandbox(sandboxID)
	if sb == nil {
		return failure(req, dns.RcodeRefused)
	}
	return s.resolve(ctx, sb.networkList(), req)
}

// resolve answers a checked query from the Table or forwards it, waiting for the
// upstreams.
func (s *Server) resolve(ctx context.Context, networks []string, req *dns.Msg) *dns.Msg {
	if resp := answer(s.table.current(), networks, req); resp != nil {
		return resp
	}
	return s.fwd.forward(ctx, req)
}

// respond is the encoded reply to the bytes of one query, nil when they are
// dropped; it waits for the upstreams when the query is forwarded.
func (s *Server) respond(ctx context.Context, networks []string, raw []byte, udp bool) []byte {
	req, early := parseQuery(raw)
	limit := dns.MaxMsgSize
	if udp {
		limit = udpLimit(req)
	}
	switch {
	case early != nil:
		return pack(early, limit)
	case req == nil:
		return nil
	}
	return pack(s.resolve(ctx, networks, req), limit)
}

func (s *Server) sandbox(id string) *sandbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sandboxes[id]
}
