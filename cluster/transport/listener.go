package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/shoal-project/shoal/cluster/ca"
)

// handshakeTimeout bounds a TLS handshake on the control port, so a peer that
// connects and stays silent holds nothing for long.
const handshakeTimeout = 10 * time.Second

// Config configures the control port.
type Config struct {
	// ListenAddr is the host:port to listen on (0.0.0.0:2377 by default).
	ListenAddr string
	// AdvertiseAddr is the host:port other nodes reach this one at; Raft names
	// this node by it.
	AdvertiseAddr string
	Credentials   *Credentials
	// Authorize, if set, decides whether a verified peer may speak proto (for
	// instance: a removed node may not, and only managers speak Raft). Join
	// connections carry no identity and are not passed to it.
	Authorize func(proto string, peer ca.Identity) error
	Logger    *slog.Logger
}

// Listener is the control port. Accepted connections are told apart by their
// ALPN protocol and handed to the Raft stream layer or to the HTTP servers.
type Listener struct {
	cfg  Config
	log  *slog.Logger
	ln   net.Listener
	raft *connQueue
	rpc  *connQueue
	join *connQueue

	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
	mu        sync.Mutex
	servers   []*http.Server
}

// Listen opens the control port. Its handlers start with Serve.
func Listen(cfg Config) (*Listener, error) {
	if cfg.Credentials == nil {
		return nil, errors.New("listen on the control port: no node credentials")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.ListenAddr, err)
	}
	adv, err := net.ResolveTCPAddr("tcp", cfg.AdvertiseAddr)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("advertise address %s: %w", cfg.AdvertiseAddr, err)
	}
	l := &Listener{cfg: cfg, log: cfg.Logger, ln: ln, done: make(chan struct{})}
	l.raft = newConnQueue(adv, l.done)
	l.rpc = newConnQueue(ln.Addr(), l.done)
	l.join = newConnQueue(ln.Addr(), l.done)
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

// Addr is the address the port listens on.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

func (l *Listener) accept() {
	defer l.wg.Done()
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.log.Warn("control port: accept", "err", err)
			select {
			case <-time.After(100 * time.Millisecond):
			case <-l.done:
				return
			}
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.route(conn)
		}()
	}
}

// route completes the TLS handshake and hands the connection to the part that
// speaks its protocol.
func (l *Listener) route(raw net.Conn) {
	conn := tls.Server(raw, l.serverConfig())
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if err := conn.HandshakeContext(ctx); err != nil {
		l.log.Debug("control port: handshake", "remote", raw.RemoteAddr(), "err", err)
		raw.Close()
		return
	}
	var q *connQueue
	switch conn.ConnectionState().NegotiatedProtocol {
	case ProtoRaft:
		q = l.raft
	case ProtoRPC:
		q = l.rpc
	case ProtoJoin:
		q = l.join
	}
	var routed net.Conn = conn
	if q != l.raft {
		// net/http closes a *tls.Conn whose ALPN protocol it does not know:
		// it gets the connection without its TLS type, and the handlers the
		// TLS state through the request's context (Peer).
		routed = &stateConn{Conn: conn, state: conn.ConnectionState()}
	}
	if q == nil || !q.put(routed) {
		conn.Close()
	}
}

// stateConn is a TLS connection that net/http sees as a plain one.
type stateConn struct {
	net.Conn
	state tls.ConnectionState
}

type stateKey struct{}

// Peer names the node at the other end of a request to the RPC protocol, from
// its verified certificate.
func Peer(r *http.Request) (ca.Identity, error) {
	state, ok := r.Context().Value(stateKey{}).(tls.ConnectionState)
	if !ok || len(state.PeerCertificates) == 0 {
		return ca.Identity{}, errors.New("no node certificate")
	}
	return ca.IdentityOf(state.PeerCertificates[0])
}

// serverConfig asks for a client certificate and checks it in
// VerifyConnection, where the protocol is known: only a join may come without
// one.
func (l *Listener) serverConfig() *tls.Config {
	creds := l.cfg.Credentials
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{ProtoRaft, ProtoRPC, ProtoJoin},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			cert, _ := creds.current()
			return cert, nil
		},
		ClientAuth: tls.RequestClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			proto := cs.NegotiatedProtocol
			switch proto {
			case ProtoJoin:
				return nil
			case ProtoRaft, ProtoRPC:
			default:
				return errors.New("no control port protocol agreed")
			}
			if len(cs.PeerCertificates) == 0 {
				return errors.New("a swarm node certificate is required")
			}
			id, err := creds.verify(cs.PeerCertificates)
			if err != nil {
				return err
			}
			if id.ClusterID != creds.Identity().ClusterID {
				return errors.New("the certificate belongs to another swarm")
			}
			if proto == ProtoRaft && !id.IsManager() {
				return errors.New("only managers speak raft")
			}
			if l.cfg.Authorize != nil {
				return l.cfg.Authorize(proto, id)
			}
			return nil
		},
	}
}

// Serve runs the HTTP servers of the RPC and join protocols until Close. Either
// handler may be nil (a worker serves no joins).
func (l *Listener) Serve(rpc, join http.Handler) {
	for _, s := range []struct {
		h http.Handler
		q *connQueue
	}{{rpc, l.rpc}, {join, l.join}} {
		if s.h == nil {
			continue
		}
		srv := &http.Server{
			Handler:           s.h,
			ReadHeaderTimeout: handshakeTimeout,
			ConnContext: func(ctx context.Context, c net.Conn) context.Context {
				if sc, ok := c.(*stateConn); ok {
					return context.WithValue(ctx, stateKey{}, sc.state)
				}
				return ctx
			},
		}
		l.mu.Lock()
		l.servers = append(l.servers, srv)
		l.mu.Unlock()
		l.wg.Add(1)
		go func(q *connQueue) {
			defer l.wg.Done()
			if err := srv.Serve(q); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				l.log.Warn("control port: serve", "err", err)
			}
		}(s.q)
	}
}

// Close stops listening, closes the HTTP servers (and the connections they
// hold) and waits for the accept loop. Raft's connections are Raft's to close.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.ln.Close()
		l.mu.Lock()
		servers := l.servers
		l.mu.Unlock()
		for _, s := range servers {
			_ = s.Close()
		}
		l.wg.Wait()
	})
	return err
}

// connQueue is a net.Listener fed with connections already routed to it.
type connQueue struct {
	addr  net.Addr
	conns chan net.Conn
	done  <-chan struct{}
}

func newConnQueue(addr net.Addr, done <-chan struct{}) *connQueue {
	return &connQueue{addr: addr, conns: make(chan net.Conn, 16), done: done}
}

func (q *connQueue) put(c net.Conn) bool {
	select {
	case q.conns <- c:
		return true
	case <-q.done:
		return false
	case <-time.After(handshakeTimeout):
		return false // nobody accepts this protocol here
	}
}

// Accept waits for the next connection of the queue's protocol.
func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

// Close is a no-op: the Listener owns the socket.
func (q *connQueue) Close() error { return nil }

// Addr is the address the protocol is reached at.
func (q *connQueue) Addr() net.Addr { return q.addr }
