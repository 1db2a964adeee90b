package client

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/distribution/reference"
	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/moby/moby/api/types/registry"
)

// Credentials are the docker CLI's registry credentials: its config file
// (DOCKER_CONFIG, default ~/.docker/config.json) with the credential helpers
// it names, read as `docker login` wrote them. Safe for concurrent use.
type Credentials struct {
	file *configfile.ConfigFile
	mu   sync.Mutex
	// byDomain caches each registry's encoded credential: a credential
	// helper is a process per call.
	byDomain map[string]string
}

// LoadCredentials reads the docker CLI's config file; a missing file is no
// credentials, not an error.
func LoadCredentials() (*Credentials, error) {
	f, err := config.Load(config.Dir())
	if err != nil {
		return nil, fmt.Errorf("read the docker CLI's config in %s: %w", config.Dir(), err)
	}
	return &Credentials{file: f, byDomain: map[string]string{}}, nil
}

// For is the encoded credential (the X-Registry-Auth header's value) for
// image's registry, as `docker stack deploy --with-registry-auth` sends it:
// base64url of the JSON of what the config holds for the registry's domain
// (Docker Hub's under its historical index address), possibly only the
// server's address when it holds nothing.
func (c *Credentials) For(image string) (string, error) {
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", image, err)
	}
	domain := reference.Domain(ref)
	c.mu.Lock()
	defer c.mu.Unlock()
	if enc, ok := c.byDomain[domain]; ok {
		return enc, nil
	}
	ac, err := c.file.GetAuthConfig(domain)
	if err != nil {
		return "", fmt.Errorf("credentials for %s: %w", domain, err)
	}
	b, err := json.Marshal(registry.AuthConfig{
		Username:      ac.Username,
		Password:      ac.Password,
		Auth:          ac.Auth,
		ServerAddress: ac.ServerAddress,
		IdentityToken: ac.IdentityToken,
		RegistryToken: ac.RegistryToken,
	})
	if err != nil {
		return "", fmt.Errorf("encode credentials for %s: %w", domain, err)
	}
	enc := base64.URLEncoding.EncodeToString(b)
	c.byDomain[domain] = enc
	return enc, nil
}
