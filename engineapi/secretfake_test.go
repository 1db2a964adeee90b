package engineapi

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster"
)

// secretsFake is an in-memory Secrets with the real create checks
// (cluster.ValidateSecretSpec and ValidateConfigSpec).
type secretsFake struct {
	mu      sync.Mutex
	seq     int
	secrets []swarm.Secret
	configs []swarm.Config
}

type secretsFakeErr struct {
	msg               string
	notFound, invalid bool
	conflict          bool
}

func (e *secretsFakeErr) Error() string          { return e.msg }
func (e *secretsFakeErr) NotFound() bool         { return e.notFound }
func (e *secretsFakeErr) InvalidParameter() bool { return e.invalid }
func (e *secretsFakeErr) Conflict() bool         { return e.conflict }

// reset forgets every object.
func (f *secretsFake) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets, f.configs = nil, nil
}

func (f *secretsFake) nextID() string {
	f.seq++
	return fmt.Sprintf("id%023d", f.seq)
}

func (f *secretsFake) CreateSecret(_ context.Context, spec swarm.SecretSpec) (string, error) {
	if err := cluster.ValidateSecretSpec(spec); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.secrets {
		if s.Spec.Name == spec.Name {
			return "", &secretsFakeErr{msg: "secret " + spec.Name + " already exists", conflict: true}
		}
	}
	s := swarm.Secret{ID: f.nextID(), Spec: spec}
	s.Meta.Version.Index = 1
	f.secrets = append(f.secrets, s)
	return s.ID, nil
}

// Secrets returns them with their data: the API must drop it.
func (f *secretsFake) Secrets(context.Context) ([]swarm.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]swarm.Secret(nil), f.secrets...), nil
}

func (f *secretsFake) Secret(_ context.Context, ref string) (swarm.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.secrets {
		if s.ID == ref || s.Spec.Name == ref {
			return s, nil
		}
	}
	return swarm.Secret{}, &secretsFakeErr{msg: "secret " + ref + " not found", notFound: true}
}

func (f *secretsFake) UpdateSecret(_ context.Context, ref string, version uint64, spec swarm.SecretSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range f.secrets {
		if s.ID == ref || s.Spec.Name == ref {
			if s.Version.Index != version {
				return &secretsFakeErr{msg: "update out of sequence", invalid: true}
			}
			f.secrets[i].Spec.Labels = maps.Clone(spec.Labels)
			f.secrets[i].Version.Index++
			return nil
		}
	}
	return &secretsFakeErr{msg: "secret " + ref + " not found", notFound: true}
}

func (f *secretsFake) RemoveSecret(_ context.Context, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range f.secrets {
		if s.ID == ref || s.Spec.Name == ref {
			f.secrets = append(f.secrets[:i], f.secrets[i+1:]...)
			return nil
		}
	}
	return &secretsFakeErr{msg: "secret " + ref + " not found", notFound: true}
}

func (f *secretsFake) CreateConfig(_ context.Context, spec swarm.ConfigSpec) (string, error) {
	if err := cluster.ValidateConfigSpec(spec); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := swarm.Config{ID: f.nextID(), Spec: spec}
	f.configs = append(f.configs, c)
	return c.ID, nil
}

func (f *secretsFake) Configs(context.Context) ([]swarm.Config, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]swarm.Config(nil), f.configs...), nil
}

func (f *secretsFake) Config(_ context.Context, ref string) (swarm.Config, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.configs {
		if c.ID == ref || c.Spec.Name == ref || strings.HasPrefix(c.ID, ref) {
			return c, nil
		}
	}
	return swarm.Config{}, &secretsFakeErr{msg: "config " + ref + " not found", notFound: true}
}

func (f *secretsFake) UpdateConfig(context.Context, string, uint64, swarm.ConfigSpec) error {
	return &secretsFakeErr{msg: "not in this fake", invalid: true}
}

func (f *secretsFake) RemoveConfig(context.Context, string) error {
	return &secretsFakeErr{msg: "not in this fake", invalid: true}
}
