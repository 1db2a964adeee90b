package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"
)

// Filters are list filters, as `docker ... ls --filter key=value` sends them.
type Filters map[string][]string

func (f Filters) query() url.Values {
	if len(f) == 0 {
		return nil
	}
	m := map[string]map[string]bool{}
	for k, vs := range f {
		m[k] = map[string]bool{}
		for _, v := range vs {
			m[k][v] = true
		}
	}
	b, _ := json.Marshal(m) // maps of strings always encode
	return url.Values{"filters": {string(b)}}
}

func versionQuery(v swarm.Version) url.Values {
	return url.Values{"version": {strconv.FormatUint(v.Index, 10)}}
}

// Services lists the services that match f.
func (c *Client) Services(ctx context.Context, f Filters) ([]swarm.Service, error) {
	var out []swarm.Service
	return out, c.Call(ctx, "GET", "/services", f.query(), nil, &out)
}

// authHeader carries an encoded registry credential; none when auth is empty.
func authHeader(auth string) http.Header {
	if auth == "" {
		return nil
	}
	return http.Header{registry.AuthHeader: {auth}}
}

// ServicesWithStatus lists the services that match f, each with how many
// of its tasks run and are wanted (?status=true, as `docker service ls`).
func (c *Client) ServicesWithStatus(ctx context.Context, f Filters) ([]swarm.Service, error) {
	var out []swarm.Service
	q := f.query()
	if q == nil {
		q = url.Values{}
	}
	q.Set("status", "true")
	return out, c.Call(ctx, "GET", "/services", q, nil, &out)
}

// Nodes lists the swarm's nodes that match f.
func (c *Client) Nodes(ctx context.Context, f Filters) ([]swarm.Node, error) {
	var out []swarm.Node
	return out, c.Call(ctx, "GET", "/nodes", f.query(), nil, &out)
}

// CreateService creates a service and returns its ID. auth, when not empty,
// is an encoded registry credential (X-Registry-Auth, see Credentials) that
// the swarm keeps with the service for its nodes to pull its image.
func (c *Client) CreateService(ctx context.Context, spec swarm.ServiceSpec, auth string) (string, error) {
	var out swarm.ServiceCreateResponse
	err := c.call(ctx, "POST", "/services/create", nil, authHeader(auth), spec, &out)
	return out.ID, err
}

// UpdateService replaces service id's spec; version is the one the spec was
// read at, so that a concurrent change is refused rather than lost. auth is
// as for CreateService.
func (c *Client) UpdateService(ctx context.Context, id string, version swarm.Version, spec swarm.ServiceSpec, auth string) error {
	return c.call(ctx, "POST", "/services/"+url.PathEscape(id)+"/update", versionQuery(version), authHeader(auth), spec, nil)
}

// DistributionInspect asks the daemon to look image up on its registry: its
// manifest's digest and the platforms it is built for. auth is as for
// CreateService.
func (c *Client) DistributionInspect(ctx context.Context, image, auth string) (registry.DistributionInspect, error) {
	var out registry.DistributionInspect
	err := c.call(ctx, "GET", "/distribution/"+image+"/json", nil, authHeader(auth), nil, &out)
	return out, err
}

// RemoveService removes a service.
func (c *Client) RemoveService(ctx context.Context, id string) error {
	return c.Call(ctx, "DELETE", "/services/"+url.PathEscape(id), nil, nil, nil)
}

// Tasks lists the tasks that match f.
func (c *Client) Tasks(ctx context.Context, f Filters) ([]swarm.Task, error) {
	var out []swarm.Task
	return out, c.Call(ctx, "GET", "/tasks", f.query(), nil, &out)
}

// Networks lists the networks that match f.
func (c *Client) Networks(ctx context.Context, f Filters) ([]network.Summary, error) {
	var out []network.Summary
	return out, c.Call(ctx, "GET", "/networks", f.query(), nil, &out)
}

// CreateNetwork creates a network and returns its ID.
func (c *Client) CreateNetwork(ctx context.Context, req network.CreateRequest) (string, error) {
	var out network.CreateResponse
	err := c.Call(ctx, "POST", "/networks/create", nil, req, &out)
	return out.ID, err
}

// RemoveNetwork removes a network.
func (c *Client) RemoveNetwork(ctx context.Context, id string) error {
	return c.Call(ctx, "DELETE", "/networks/"+url.PathEscape(id), nil, nil, nil)
}

// Secrets lists the secrets that match f (without their data).
func (c *Client) Secrets(ctx context.Context, f Filters) ([]swarm.Secret, error) {
	var out []swarm.Secret
	return out, c.Call(ctx, "GET", "/secrets", f.query(), nil, &out)
}

// CreateSecret creates a secret and returns its ID.
func (c *Client) CreateSecret(ctx context.Context, spec swarm.SecretSpec) (string, error) {
	var out swarm.SecretCreateResponse
	err := c.Call(ctx, "POST", "/secrets/create", nil, spec, &out)
	return out.ID, err
}

// UpdateSecret replaces secret id's spec at version.
func (c *Client) UpdateSecret(ctx context.Context, id string, version swarm.Version, spec swarm.SecretSpec) error {
	return c.Call(ctx, "POST", "/secrets/"+url.PathEscape(id)+"/update", versionQuery(version), spec, nil)
}

// RemoveSecret removes a secret.
func (c *Client) RemoveSecret(ctx context.Context, id string) error {
	return c.Call(ctx, "DELETE", "/secrets/"+url.PathEscape(id), nil, nil, nil)
}

// Configs lists the configs that match f, with their data.
func (c *Client) Configs(ctx context.Context, f Filters) ([]swarm.Config, error) {
	var out []swarm.Config
	return out, c.Call(ctx, "GET", "/configs", f.query(), nil, &out)
}

// CreateConfig creates a config and returns its ID.
func (c *Client) CreateConfig(ctx context.Context, spec swarm.ConfigSpec) (string, error) {
	var out swarm.ConfigCreateResponse
	err := c.Call(ctx, "POST", "/configs/create", nil, spec, &out)
	return out.ID, err
}

// UpdateConfig replaces config id's spec at version.
func (c *Client) UpdateConfig(ctx context.Context, id string, version swarm.Version, spec swarm.ConfigSpec) error {
	return c.Call(ctx, "POST", "/configs/"+url.PathEscape(id)+"/update", versionQuery(version), spec, nil)
}

// RemoveConfig removes a config.
func (c *Client) RemoveConfig(ctx context.Context, id string) error {
	return c.Call(ctx, "DELETE", "/configs/"+url.PathEscape(id), nil, nil, nil)
}
