package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-project/shoal/netplane/namespace"

	"github.com/miekg/dns"
	"github.com/vishvananda/netns"
)

const (
	// maxConns bounds the open TCP connections of one sandbox; more are closed as
	// soon as accepted. Stub resolvers use TCP only after a truncated UDP answer.
	maxConns = 16
	// idleTimeout closes a TCP connection that sends no query for that long.
	idleTimeout = 10 * time.Second
	// readBuffer holds the largest UDP query read; longer ones are malformed.
	readBuffer = ednsSize
	// acceptRetry paces the acceptor after an error other than closing, such as
	// running out of file descriptors.
	acceptRetry = 50 * time.Millisecond
)

// sandbox is one served network namespace: its sockets, its networks and the
// goroutines serving it, all of which stop owns.
type sandbox struct {
	id       string
	networks atomic.Pointer[[]string]
	udp      *net.UDPConn
	tcp      *net.TCPListener

	ctx    context.Context // cancelled by stop; ends forwards in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	stopping bool
}

// listen binds 127.0.0.11:53 over UDP and TCP inside the namespace at nsPath.
func listen(ctx context.Context, id, nsPath string) (*sandbox, error) {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", nsPath, err)
	}
	defer ns.Close()
	var (
		lc  net.ListenConfig
		pc  net.PacketConn
		l   net.Listener
		adr = net.JoinHostPort(Address, "53")
	)
	err = namespace.Run(ns, func() error {
		var err error
		if pc, err = lc.ListenPacket(ctx, "udp4", adr); err != nil {
			return fmt.Errorf("listen udp %s: %w", adr, err)
		}
		if l, err = lc.Listen(ctx, "tcp4", adr); err != nil {
			pc.Close()
			return fmt.Errorf("listen tcp %s: %w", adr, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	return &sandbox{
		id:     id,
		udp:    pc.(*net.UDPConn),
		tcp:    l.(*net.TCPListener),
		ctx:    sctx,
		cancel: cancel,
		conns:  map[net.Conn]struct{}{},
	}, nil
}

func (sb *sandbox) setNetworks(networks []string) {
	nets := slices.Clone(networks) // the caller keeps its slice
	sb.networks.Store(&nets)
}

func (sb *sandbox) networkList() []string {
	if p := sb.networks.Load(); p != nil {
		return *p
	}
	return nil
}

// start runs the sandbox's UDP reader and TCP acceptor.
func (sb *sandbox) start(s *Server) {
	sb.wg.Add(2)
	go sb.serveUDP(s)
	go sb.serveTCP(s)
}

// stop closes the sockets and every connection, ends forwards in flight and waits
// for the sandbox's goroutines.
func (sb *sandbox) stop() error {
	sb.cancel()
	err := errors.Join(sb.udp.Close(), sb.tcp.Close())
	sb.mu.Lock()
	sb.stopping = true
	for c := range sb.conns {
		c.Close()
	}
	sb.mu.Unlock()
	sb.wg.Wait()
	return err
}

// serveUDP reads queries until the socket closes. Local answers are written from
// here, they take microseconds; forwards run in a goroutine each, as many as the
// server's forward slots allow.
func (sb *sandbox) serveUDP(s *Server) {
	defer sb.wg.Done()
	buf := make([]byte, readBuffer)
	for {
		n, from, err := sb.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // an unconnected socket has no lasting read error but closing
		}
		req, early := parseQuery(buf[:n])
		var resp *dns.Msg
		switch {
		case early != nil:
			resp = early
		case req == nil:
			continue
		default:
			resp = answer(s.table.current(), sb.networkList(), req)
		}
		if resp == nil {
			if !s.fwd.acquire() {
				resp = failure(req, dns.RcodeServerFailure)
			} else {
				sb.wg.Add(1)
				go func() {
					defer sb.wg.Done()
					defer s.fwd.release()
					out := pack(s.fwd.exchange(sb.ctx, req), udpLimit(req))
					_, _ = sb.udp.WriteToUDPAddrPort(out, from)
				}()
				continue
			}
		}
		_, _ = sb.udp.WriteToUDPAddrPort(pack(resp, udpLimit(req)), from)
	}
}

// serveTCP accepts connections until the listener closes.
func (sb *sandbox) serveTCP(s *Server) {
	defer sb.wg.Done()
	for {
		c, err := sb.tcp.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-sb.ctx.Done():
				return
			case <-time.After(acceptRetry):
			}
			continue
		}
		if !sb.track(c) {
			c.Close()
			continue
		}
		sb.wg.Add(1)
		go sb.serveConn(s, c)
	}
}

// track records an accepted connection so stop can close it; false when the
// sandbox is stopping or has its fill of connections.
func (sb *sandbox) track(c net.Conn) bool {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.stopping || len(sb.conns) >= maxConns {
		return false
	}
	sb.conns[c] = struct{}{}
	return true
}

// serveConn answers the queries of one TCP connection in turn, each a two-byte
// length and a message, until the client closes it or stays idle too long.
func (sb *sandbox) serveConn(s *Server, c net.Conn) {
	defer sb.wg.Done()
	defer func() {
		sb.mu.Lock()
		delete(sb.conns, c)
		sb.mu.Unlock()
		c.Close()
	}()
	var lenBuf [2]byte
	for {
		if err := c.SetReadDeadline(time.Now().Add(idleTimeout)); err != nil {
			return
		}
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			return
		}
		raw := make([]byte, binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(c, raw); err != nil {
			return
		}
		out := s.respond(sb.ctx, sb.networkList(), raw, false)
		if out == nil {
			continue
		}
		if err := c.SetWriteDeadline(time.Now().Add(idleTimeout)); err != nil {
			return
		}
		msg := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(out)), uint16(len(out)))
		if _, err := c.Write(append(msg, out...)); err != nil {
			return
		}
	}
}
