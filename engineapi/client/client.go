// Package client is a small Engine API client: the calls `shoal stack` makes
// on networks, secrets, configs, services and tasks, with moby's API types as
// bodies. It finds the daemon as the docker CLI does (DOCKER_HOST,
// DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) and imports nothing of the server's.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultHost is where the client looks without DOCKER_HOST: shoal daemon's
// default listener, the socket `make run` serves.
const DefaultHost = "unix:///run/shoal.sock"

// APIVersion is the Engine API version the client speaks; shoal serves it, and
// dockerd has since Docker 28.3.
const APIVersion = "1.51"

// Client calls one Engine API endpoint. It is safe for concurrent use.
type Client struct {
	http *http.Client
	base string // scheme://host, without the version prefix
	// Host is the daemon's address as given (unix:///path or tcp://host:port).
	Host string
}

// StatusError is an answer other than 2xx, with the daemon's message.
type StatusError struct {
	Status  int
	Message string
}

func (e *StatusError) Error() string { return e.Message }

// IsNotFound reports whether err is the daemon answering 404.
func IsNotFound(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == http.StatusNotFound
}

// FromEnv builds a client from the docker CLI's variables, read through
// getenv: DOCKER_HOST (unix:// or tcp://; DefaultHost when unset), and for
// tcp:// DOCKER_TLS_VERIFY (non-empty: mutual TLS with ca.pem, cert.pem and
// key.pem from DOCKER_CERT_PATH, default ~/.docker).
func FromEnv(getenv func(string) string) (*Client, error) {
	host := getenv("DOCKER_HOST")
	if host == "" {
		host = DefaultHost
	}
	var tlsConf *tls.Config
	if getenv("DOCKER_TLS_VERIFY") != "" {
		dir := getenv("DOCKER_CERT_PATH")
		if dir == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, fmt.Errorf("find DOCKER_CERT_PATH: %w", err)
			}
			dir = filepath.Join(home, ".docker")
		}
		var err error
		if tlsConf, err = mutualTLS(dir); err != nil {
			return nil, err
		}
	}
	return New(host, tlsConf)
}

// New is a client of host (unix:///path or tcp://host:port); tlsConf, when
// not nil, is used for tcp://.
func New(host string, tlsConf *tls.Config) (*Client, error) {
	tr := &http.Transport{TLSClientConfig: tlsConf, IdleConnTimeout: 30 * time.Second}
	c := &Client{Host: host, http: &http.Client{Transport: tr}}
	switch {
	case strings.HasPrefix(host, "unix://") && len(host) > len("unix://"):
		path := strings.TrimPrefix(host, "unix://")
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
		tr.TLSClientConfig = nil
		c.base = "http://shoal"
	case strings.HasPrefix(host, "tcp://") && len(host) > len("tcp://"):
		scheme := "http"
		if tlsConf != nil {
			scheme = "https"
		}
		c.base = scheme + "://" + strings.TrimPrefix(host, "tcp://")
	default:
		return nil, fmt.Errorf("DOCKER_HOST %q: want unix:///path or tcp://host:port", host)
	}
	return c, nil
}

func mutualTLS(dir string) (*tls.Config, error) {
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("read TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("read TLS CA %s: no certificate in it", filepath.Join(dir, "ca.pem"))
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		return nil, fmt.Errorf("read TLS client certificate: %w", err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// Call sends method path?query with body (JSON-encoded unless nil) and
// decodes a 2xx answer's JSON into out (unless nil). Any other answer is a
// *StatusError carrying the daemon's message.
func (c *Client) Call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	return c.call(ctx, method, path, query, nil, body, out)
}

// call is Call with header added to the request.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, header http.Header, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	u := c.base + "/v" + APIVersion + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL says nothing the host does not
		}
		return fmt.Errorf("%s %s at %s: %w", method, path, c.Host, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Message string }
		if json.Unmarshal(data, &e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(data))
		}
		return &StatusError{Status: resp.StatusCode, Message: e.Message}
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }
