package cluster

import (
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/store"
)

// Secrets and configs are payloads a service's tasks get as files. Both live in
// the replicated (encrypted) store as moby's API objects; only their labels
// change after create. The API never shows a secret's data; a config's it does.
// A node receives them with the assignments of the tasks that use them (see the
// dispatcher), never otherwise.

// Docker's bounds on a payload: swarmkit's MaxSecretSize and MaxConfigSize.
const (
	MaxSecretSize = 500 * 1024
	MaxConfigSize = 1000 * 1024
)

// TemplateDriverGolang is the one templating driver secrets and configs may ask
// for: their data is a Go template, rendered for each task on its node.
const TemplateDriverGolang = "golang"

// validPayloadName is swarmkit's rule for secret and config names.
var validPayloadName = regexp.MustCompile(`^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$`)

// payload is what secrets and configs share, for the code that treats both.
type payload[T any] struct {
	kind    string // "secret" or "config", as Docker's messages name it
	maxSize int
	one     func(tx store.ReadTx, id string) (*T, error)
	byName  func(tx store.ReadTx, name string) (*T, error)
	all     func(tx store.ReadTx) ([]*T, error)
	id      func(*T) string
	name    func(*T) string
	// usedBy reports whether a service spec references the object with id.
	usedBy func(spec *swarm.ContainerSpec, id string) bool
}

var secrets = payload[swarm.Secret]{
	kind: "secret", maxSize: MaxSecretSize,
	one:    store.ReadTx.Secret,
	byName: store.ReadTx.SecretByName,
	all:    store.ReadTx.Secrets,
	id:     func(s *swarm.Secret) string { return s.ID },
	name:   func(s *swarm.Secret) string { return s.Spec.Name },
	usedBy: func(cs *swarm.ContainerSpec, id string) bool {
		return slices.ContainsFunc(cs.Secrets, func(r *swarm.SecretReference) bool { return r != nil && r.SecretID == id })
	},
}

var configs = payload[swarm.Config]{
	kind: "config", maxSize: MaxConfigSize,
	one:    store.ReadTx.Config,
	byName: store.ReadTx.ConfigByName,
	all:    store.ReadTx.Configs,
	id:     func(c *swarm.Config) string { return c.ID },
	name:   func(c *swarm.Config) string { return c.Spec.Name },
	usedBy: func(cs *swarm.ContainerSpec, id string) bool {
		return slices.ContainsFunc(cs.Configs, func(r *swarm.ConfigReference) bool { return r != nil && r.ConfigID == id })
	},
}

// internal reports whether a secret-kind object is not a user's: the registry
// credentials an older shoal kept as secrets.
func internal(id string) bool { return strings.HasSuffix(id, ".registry-auth") }

// find resolves ref as dockerd does: a full ID, a name, then a unique ID prefix.
func (p payload[T]) find(tx store.ReadTx, ref string) (*T, error) {
	if o, err := p.one(tx, ref); err == nil && !internal(ref) {
		return o, nil
	}
	list, err := p.all(tx)
	if err != nil {
		return nil, err
	}
	var match []*T
	for _, o := range list {
		if internal(p.id(o)) {
			continue
		}
		if p.name(o) == ref || strings.HasPrefix(p.id(o), ref) {
			match = append(match, o)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return nil, errNotFoundf("%s %s not found", p.kind, ref)
	}
	return nil, errInvalidf("%s %s is ambiguous (%d matches found)", p.kind, ref, len(match))
}

// list is every object of the kind a user made.
func (p payload[T]) list(tx store.ReadTx) ([]*T, error) {
	list, err := p.all(tx)
	return slices.DeleteFunc(list, func(o *T) bool { return internal(p.id(o)) }), err
}

// validate refuses what swarmkit refuses at create: a bad name, empty or
// oversized data; and what shoal does not offer: drivers other than golang
// templating.
func (p payload[T]) validate(name string, data []byte, templating *swarm.Driver) error {
	if name == "" {
		return errInvalidf("rpc error: code = InvalidArgument desc = name must be provided")
	}
	if len(name) > 64 || !validPayloadName.MatchString(name) {
		return errInvalidf("rpc error: code = InvalidArgument desc = invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]")
	}
	if len(data) >= p.maxSize || len(data) < 1 {
		return errInvalidf("rpc error: code = InvalidArgument desc = %s data must be larger than 0 and less than %d bytes", p.kind, p.maxSize)
	}
	if templating != nil && templating.Name != TemplateDriverGolang {
		return errInvalidf("template driver %q is not supported by shoal: only %q templates are (--template-driver %s)", templating.Name, TemplateDriverGolang, TemplateDriverGolang)
	}
	return nil
}

// inUse refuses to remove obj while a service references it, in swarmkit's words.
func (p payload[T]) inUse(tx store.ReadTx, obj *T) error {
	services, err := tx.Services()
	if err != nil {
		return err
	}
	var names []string
	for _, s := range services {
		if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil && p.usedBy(cs, p.id(obj)) {
			names = append(names, s.Spec.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	noun := "services"
	if len(names) == 1 {
		noun = "service"
	}
	return errInvalidf("rpc error: code = InvalidArgument desc = %s '%s' is in use by the following %s: %s", p.kind, p.name(obj), noun, strings.Join(names, ", "))
}

// exists is Docker's answer to a name that is taken.
func (p payload[T]) exists(name string) error {
	return conflictError{fmt.Sprintf("rpc error: code = AlreadyExists desc = %s %s already exists", p.kind, name)}
}

// create stores a new object under a name nobody has, in Docker's words when
// somebody has (also when two creates race: the store refuses the second).
func (p payload[T]) create(ctx context.Context, c *Cluster, name string, write func(tx store.Tx) error) error {
	err := c.update(ctx, func(tx store.Tx) error {
		if _, err := p.byName(tx, name); err == nil {
			return p.exists(name)
		}
		return write(tx)
	})
	if isConflict(err) && !strings.Contains(err.Error(), "AlreadyExists") && c.view(func(tx store.ReadTx) error {
		_, err := p.byName(tx, name)
		return err
	}) == nil {
		return p.exists(name)
	}
	return err
}

// ValidateSecretSpec refuses a secret spec Docker would refuse at create, or
// that asks for what shoal does not offer (a secret driver, a templating
// driver other than golang), in Docker's words where it has them.
func ValidateSecretSpec(spec swarm.SecretSpec) error {
	if spec.Driver != nil {
		// A driver's secret has no data: its name is all there is to check first.
		if err := secrets.validate(spec.Name, []byte("x"), nil); err != nil {
			return err
		}
		return errInvalidf("secret driver %q is not supported by shoal: secrets are kept in the swarm's encrypted store", spec.Driver.Name)
	}
	return secrets.validate(spec.Name, spec.Data, spec.Templating)
}

// ValidateConfigSpec is ValidateSecretSpec for configs.
func ValidateConfigSpec(spec swarm.ConfigSpec) error {
	return configs.validate(spec.Name, spec.Data, spec.Templating)
}

// CreateSecret stores a new secret.
func (c *Cluster) CreateSecret(ctx context.Context, spec swarm.SecretSpec) (string, error) {
	if err := ValidateSecretSpec(spec); err != nil {
		return "", err
	}
	s := &swarm.Secret{ID: store.NewID(), Spec: spec}
	s.Spec.Data = bytes.Clone(spec.Data)
	err := secrets.create(ctx, c, spec.Name, func(tx store.Tx) error { return tx.CreateSecret(s) })
	return s.ID, err
}

// Secrets lists the secrets, never with their data.
func (c *Cluster) Secrets(ctx context.Context) ([]swarm.Secret, error) {
	var out []swarm.Secret
	err := c.view(func(tx store.ReadTx) error {
		list, err := secrets.list(tx)
		for _, s := range list {
			out = append(out, secretShown(*s))
		}
		return err
	})
	return out, err
}

// Secret finds a secret by ID, name or unique ID prefix; never with its data.
func (c *Cluster) Secret(ctx context.Context, ref string) (swarm.Secret, error) {
	var out swarm.Secret
	err := c.view(func(tx store.ReadTx) error {
		s, err := secrets.find(tx, ref)
		if err == nil {
			out = secretShown(*s)
		}
		return err
	})
	return out, err
}

func secretShown(s swarm.Secret) swarm.Secret {
	s.Spec.Data = nil
	return s
}

// UpdateSecret changes a secret's labels (compare-and-set on version): nothing
// else of a secret may change, as in Docker. The spec may carry the secret's data
// back unchanged, as `docker stack deploy` sends it again on every deploy.
func (c *Cluster) UpdateSecret(ctx context.Context, ref string, version uint64, spec swarm.SecretSpec) error {
	return c.update(ctx, func(tx store.Tx) error {
		s, err := secrets.find(tx, ref)
		if err != nil {
			return err
		}
		if s.Version.Index != version {
			return store.ErrOutOfSequence
		}
		if spec.Name != s.Spec.Name || (len(spec.Data) > 0 && subtle.ConstantTimeCompare(spec.Data, s.Spec.Data) != 1) || !sameDriver(spec.Driver, s.Spec.Driver) || !sameDriver(spec.Templating, s.Spec.Templating) {
			return errInvalidf("rpc error: code = InvalidArgument desc = only updates to Labels are allowed")
		}
		s.Spec.Labels = maps.Clone(spec.Labels)
		return tx.UpdateSecret(s)
	})
}

// RemoveSecret deletes a secret no service uses.
func (c *Cluster) RemoveSecret(ctx context.Context, ref string) error {
	return c.update(ctx, func(tx store.Tx) error {
		s, err := secrets.find(tx, ref)
		if err != nil {
			return err
		}
		if err := secrets.inUse(tx, s); err != nil {
			return err
		}
		return tx.DeleteSecret(s.ID)
	})
}

// CreateConfig stores a new config.
func (c *Cluster) CreateConfig(ctx context.Context, spec swarm.ConfigSpec) (string, error) {
	if err := ValidateConfigSpec(spec); err != nil {
		return "", err
	}
	cfg := &swarm.Config{ID: store.NewID(), Spec: spec}
	err := configs.create(ctx, c, spec.Name, func(tx store.Tx) error { return tx.CreateConfig(cfg) })
	return cfg.ID, err
}

// Configs lists the configs, with their data.
func (c *Cluster) Configs(ctx context.Context) ([]swarm.Config, error) {
	var out []swarm.Config
	err := c.view(func(tx store.ReadTx) error {
		list, err := configs.list(tx)
		for _, cfg := range list {
			out = append(out, *cfg)
		}
		return err
	})
	return out, err
}

// Config finds a config by ID, name or unique ID prefix.
func (c *Cluster) Config(ctx context.Context, ref string) (swarm.Config, error) {
	var out swarm.Config
	err := c.view(func(tx store.ReadTx) error {
		cfg, err := configs.find(tx, ref)
		if err == nil {
			out = *cfg
		}
		return err
	})
	return out, err
}

// UpdateConfig changes a config's labels (compare-and-set on version). The
// spec may carry the config's data back unchanged, as inspect shows it.
func (c *Cluster) UpdateConfig(ctx context.Context, ref string, version uint64, spec swarm.ConfigSpec) error {
	return c.update(ctx, func(tx store.Tx) error {
		cfg, err := configs.find(tx, ref)
		if err != nil {
			return err
		}
		if cfg.Version.Index != version {
			return store.ErrOutOfSequence
		}
		if spec.Name != cfg.Spec.Name || (len(spec.Data) > 0 && !bytes.Equal(spec.Data, cfg.Spec.Data)) || !sameDriver(spec.Templating, cfg.Spec.Templating) {
			return errInvalidf("rpc error: code = InvalidArgument desc = only updates to Labels are allowed")
		}
		cfg.Spec.Labels = maps.Clone(spec.Labels)
		return tx.UpdateConfig(cfg)
	})
}

// RemoveConfig deletes a config no service uses.
func (c *Cluster) RemoveConfig(ctx context.Context, ref string) error {
	return c.update(ctx, func(tx store.Tx) error {
		cfg, err := configs.find(tx, ref)
		if err != nil {
			return err
		}
		if err := configs.inUse(tx, cfg); err != nil {
			return err
		}
		return tx.DeleteConfig(cfg.ID)
	})
}

// sameDriver reports whether two drivers are the same; nil and an empty one are.
func sameDriver(a, b *swarm.Driver) bool {
	empty := func(d *swarm.Driver) bool { return d == nil || (d.Name == "" && len(d.Options) == 0) }
	if empty(a) || empty(b) {
		return empty(a) && empty(b)
	}
	return a.Name == b.Name && maps.Equal(a.Options, b.Options)
}
