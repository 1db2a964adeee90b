package torture

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"

	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/testenv"
)

// apiVersion is the Engine API version the clients speak.
const apiVersion = "/v1.45"

// client speaks the Engine API to one daemon over its unix socket.
type client struct {
	http *http.Client
}

func newClient(m *testenv.Machine) *client {
	return &client{http: m.HTTPClient()}
}

// apiError is an answer other than 2xx.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Message) }

// statusOf is the HTTP status of err, or 0 when the request got no answer
// (the daemon died under it).
func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// do sends a request; a 2xx answer's body is decoded into out (when not nil).
func (c *client) do(ctx context.Context, method, path string, body io.Reader, contentType string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://shoal"+apiVersion+path, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Message string }
		_ = json.Unmarshal(data, &e)
		if e.Message == "" {
			e.Message = string(data)
		}
		return &apiError{Status: resp.StatusCode, Message: e.Message}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer %q: %w", method, path, data, err)
		}
	}
	return nil
}

func (c *client) doJSON(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	return c.do(ctx, method, path, body, "application/json", out)
}

func (c *client) createService(ctx context.Context, spec swarm.ServiceSpec) (string, error) {
	var resp swarm.ServiceCreateResponse
	if err := c.doJSON(ctx, http.MethodPost, "/services/create", spec, &resp); err != nil {
		return "", err
	}
	return resp.ID, nil
}

func (c *client) updateService(ctx context.Context, id string, version uint64, spec swarm.ServiceSpec) error {
	path := "/services/" + url.PathEscape(id) + "/update?version=" + strconv.FormatUint(version, 10)
	return c.doJSON(ctx, http.MethodPost, path, spec, nil)
}

func (c *client) removeService(ctx context.Context, id string) error {
	return c.doJSON(ctx, http.MethodDelete, "/services/"+url.PathEscape(id), nil, nil)
}

func (c *client) service(ctx context.Context, id string) (swarm.Service, error) {
	var s swarm.Service
	err := c.doJSON(ctx, http.MethodGet, "/services/"+url.PathEscape(id), nil, &s)
	return s, err
}

func (c *client) services(ctx context.Context) ([]swarm.Service, error) {
	var list []swarm.Service
	err := c.doJSON(ctx, http.MethodGet, "/services?status=true", nil, &list)
	return list, err
}

func (c *client) tasks(ctx context.Context) ([]swarm.Task, error) {
	var list []swarm.Task
	err := c.doJSON(ctx, http.MethodGet, "/tasks", nil, &list)
	return list, err
}

func (c *client) containers(ctx context.Context) ([]ctypes.Summary, error) {
	var list []ctypes.Summary
	err := c.doJSON(ctx, http.MethodGet, "/containers/json?all=1", nil, &list)
	return list, err
}

// loadImage sends an image archive as `docker load` does.
func (c *client) loadImage(ctx context.Context, archive string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	return c.do(ctx, http.MethodPost, "/images/load?quiet=1", f, "application/x-tar", nil)
}

func (c *client) initSwarm(ctx context.Context) error {
	return c.doJSON(ctx, http.MethodPost, "/swarm/init", swarm.InitRequest{ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1"}, nil)
}

// imageExists reports whether ref is on the node.
func (c *client) imageExists(ctx context.Context, ref string) (bool, error) {
	err := c.doJSON(ctx, http.MethodGet, "/images/"+ref+"/json", nil, nil)
	if statusOf(err) == http.StatusNotFound {
		return false, nil
	}
	return err == nil, err
}
