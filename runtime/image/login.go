package image

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/moby/moby/api/types/registry"
)

// loginError is a refused login: the registry did not accept the credentials.
type loginError struct{ msg string }

func (e loginError) Error() string      { return e.msg }
func (e loginError) Unauthorized() bool { return true }

// Login checks credentials against a registry, as `docker login` asks the daemon
// to: it authenticates to the registry's /v2/ endpoint (token exchange included).
func (s *Store) Login(ctx context.Context, auth *registry.AuthConfig) error {
	if auth == nil {
		return invalidParameterError{msg: "no credentials given"}
	}
	host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(auth.ServerAddress, "https://"), "http://"), "/")
	host, _, _ = strings.Cut(host, "/")
	if host == "" || host == "index.docker.io" || host == "docker.io" {
		host = name.DefaultRegistry
	}
	var opts []name.Option
	rt := http.RoundTripper(s.secureTransport)
	scheme := "https"
	if s.isInsecure(host) {
		opts = append(opts, name.Insecure)
		rt, scheme = s.insecureTransport, "http"
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return invalidParameterError{msg: fmt.Sprintf("invalid registry %q: %v", auth.ServerAddress, err)}
	}
	tr, err := transport.NewWithContext(ctx, reg, authenticator(auth), rt, nil)
	if err != nil {
		return classifyRegistryError(err)
	}
	url := scheme + "://" + reg.RegistryStr() + "/v2/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return classifyRegistryError(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return loginError{msg: fmt.Sprintf("login attempt to %s failed with status: %s", url, resp.Status)}
	}
	return nil
}
