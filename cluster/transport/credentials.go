// Package transport is the node's control port: one TCP listener (2377 by
// default) where every connection is TLS 1.3 with the swarm's node
// certificates, and the protocol is chosen by ALPN: Raft between managers,
// RPC (HTTP) for worker sessions, forwarded writes, logs and images, and the
// join protocol, the only one spoken without a client certificate.
package transport

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/ca"
)

// The protocols of the control port, as ALPN names them.
const (
	ProtoRaft = "shoal-raft/1"
	ProtoRPC  = "shoal-rpc/1"
	ProtoJoin = "shoal-join/1"
)

// Credentials are the node's TLS identity and the roots it trusts. They change
// when the certificate is renewed or reissued for a new role, and when the root
// CA rotates; new connections use the current ones. Safe for concurrent use.
type Credentials struct {
	mu    sync.RWMutex
	cert  *tls.Certificate
	roots *x509.CertPool
	id    ca.Identity
	files ca.NodeFiles
}

// NewCredentials builds credentials from a node's PEM files.
func NewCredentials(files ca.NodeFiles) (*Credentials, error) {
	c := &Credentials{}
	if err := c.Set(files); err != nil {
		return nil, err
	}
	return c, nil
}

// Set replaces the credentials.
func (c *Credentials) Set(files ca.NodeFiles) error {
	cert, err := tls.X509KeyPair(files.CertPEM, files.KeyPEM)
	if err != nil {
		return fmt.Errorf("load node certificate: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(files.RootPEM) {
		return errors.New("load node certificate: no root CA certificate")
	}
	chain, err := ca.ParseCertificates(files.CertPEM)
	if err != nil {
		return fmt.Errorf("load node certificate: %w", err)
	}
	cert.Leaf = chain[0]
	id, err := ca.IdentityOf(chain[0])
	if err != nil {
		return fmt.Errorf("load node certificate: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cert, c.roots, c.id, c.files = &cert, roots, id, files
	return nil
}

// Identity is who the current certificate names.
func (c *Credentials) Identity() ca.Identity {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.id
}

// Files are the current PEM files.
func (c *Credentials) Files() ca.NodeFiles {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.files
}

// Leaf is the current node certificate.
func (c *Credentials) Leaf() *x509.Certificate {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cert.Leaf
}

// TLSInfo is what the node tells of its TLS identity, as `docker node
// inspect` shows it: the root it trusts, and who issued its certificate.
func (c *Credentials) TLSInfo() swarm.TLSInfo {
	c.mu.RLock()
	defer c.mu.RUnlock()
	info := swarm.TLSInfo{CertIssuerSubject: c.cert.Leaf.RawIssuer}
	if roots, err := ca.ParseCertificates(c.files.RootPEM); err == nil {
		// The first root is the swarm's; a second is the one a rotation
		// leaves.
		info.TrustRoot = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: roots[0].Raw}))
	}
	chain, _ := ca.ParseCertificates(c.files.CertPEM)
	roots, _ := ca.ParseCertificates(c.files.RootPEM)
	for _, cert := range append(chain[1:], roots...) {
		if string(cert.RawSubject) == string(c.cert.Leaf.RawIssuer) {
			info.CertIssuerPublicKey = cert.RawSubjectPublicKeyInfo
			break
		}
	}
	return info
}

// NotAfter is when the current certificate expires.
func (c *Credentials) NotAfter() time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cert.Leaf.NotAfter
}

func (c *Credentials) current() (*tls.Certificate, *x509.CertPool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cert, c.roots
}

// verify checks a peer's chain against the current roots.
func (c *Credentials) verify(chain []*x509.Certificate) (ca.Identity, error) {
	_, roots := c.current()
	return ca.Verify(chain, roots, time.Now())
}

// clientConfig is the TLS configuration of a connection this node opens to
// speak proto: it shows the node certificate and accepts only a manager of the
// same swarm (the addresses dialled are managers', or, for logs and images,
// any node's when anyNode is set).
func (c *Credentials) clientConfig(proto string, anyNode bool) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{proto},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := c.current()
			return cert, nil
		},
		// The peer is checked against the swarm's roots and its identity below;
		// host names play no part (nodes are reached by address).
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if cs.NegotiatedProtocol != proto {
				return fmt.Errorf("the peer does not speak %s", proto)
			}
			id, err := c.verify(cs.PeerCertificates)
			if err != nil {
				return err
			}
			if id.ClusterID != c.Identity().ClusterID {
				return errors.New("the peer belongs to another swarm")
			}
			if !anyNode && !id.IsManager() {
				return errors.New("the peer is not a swarm manager")
			}
			return nil
		},
	}
}
