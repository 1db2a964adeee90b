package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-project/shoal/cluster/ca"
)

// dialTimeout bounds connecting to a peer's control port.
const dialTimeout = 5 * time.Second

// rpcHeaderTimeout bounds the wait for the answer of an RPC call.
const rpcHeaderTimeout = 15 * time.Second

// Dial opens a connection to a peer's control port speaking proto. The peer
// must be a manager of this swarm unless anyNode is set.
func (c *Credentials) Dial(ctx context.Context, addr, proto string, anyNode bool) (*tls.Conn, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: dialTimeout, KeepAlive: 15 * time.Second}, Config: c.clientConfig(proto, anyNode)}
	// The handshake too is bounded: a peer may vanish in the middle of it.
	ctx, cancel := context.WithTimeout(ctx, 2*dialTimeout)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return conn.(*tls.Conn), nil
}

// HTTPClient is an HTTP client that speaks the RPC protocol to whatever
// control port a request names (https://<host:port>/...). With anyNode unset
// the peer must be a manager.
func (c *Credentials) HTTPClient(anyNode bool) *http.Client {
	return &http.Client{Transport: c.RoundTripper(anyNode)}
}

// RoundTripper is the transport of HTTPClient, for libraries that take one.
func (c *Credentials) RoundTripper(anyNode bool) http.RoundTripper {
	return &http.Transport{
		DialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return c.Dial(ctx, addr, ProtoRPC, anyNode)
		},
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		// Every call answers its headers within this (streams, sessions and
		// logs, send theirs at once, then run long): a peer behind a network
		// partition must not hold a caller forever.
		ResponseHeaderTimeout: rpcHeaderTimeout,
		ForceAttemptHTTP2:     false,
	}
}

// Raft returns the stream layer Raft's network transport runs on: it accepts
// the Raft connections of the control port and dials peers' ones.
func (l *Listener) Raft() raft.StreamLayer { return &raftLayer{l: l} }

type raftLayer struct{ l *Listener }

func (r *raftLayer) Accept() (net.Conn, error) { return r.l.raft.Accept() }
func (r *raftLayer) Close() error              { return nil }

// Addr is the advertised address: Raft tells peers to reach this node there.
func (r *raftLayer) Addr() net.Addr { return r.l.raft.Addr() }

func (r *raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return r.l.cfg.Credentials.Dial(ctx, string(address), ProtoRaft, false)
}

// JoinClient is an HTTP client for the join protocol, spoken before a node has
// a certificate. With roots nil it accepts any server: only for fetching the
// root CA, which the caller then checks against the digest in its join token.
// With roots it accepts only a manager whose certificate those roots sign.
func JoinClient(roots *x509.CertPool) *http.Client {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, NextProtos: []string{ProtoJoin}, InsecureSkipVerify: true}
	if roots != nil {
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			id, err := ca.Verify(cs.PeerCertificates, roots, time.Now())
			if err != nil {
				return err
			}
			if !id.IsManager() {
				return errors.New("the peer is not a swarm manager")
			}
			return nil
		}
	}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				d := tls.Dialer{NetDialer: &net.Dialer{Timeout: dialTimeout}, Config: cfg}
				return d.DialContext(ctx, "tcp", addr)
			},
			DisableKeepAlives: true,
		},
	}
}
