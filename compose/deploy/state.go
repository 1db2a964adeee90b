// Package deploy brings a swarm to what a compose.Stack describes, through an
// Engine API: it reads what exists, plans per object what to create, update or
// remove (a field-level diff for services), checks the plan against the
// daemon before the first write, and applies it in order: networks, secrets,
// configs, then services in start order, waiting where a service depends on
// another being healthy. It is the client side of `shoal stack`.
package deploy

import (
	"context"
	"fmt"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/compose"
	"github.com/shoal-project/shoal/engineapi/client"
)

// Engine is the part of the Engine API a deploy uses; *client.Client is one.
type Engine interface {
	Services(ctx context.Context, f client.Filters) ([]swarm.Service, error)
	CreateService(ctx context.Context, spec swarm.ServiceSpec, auth string) (string, error)
	UpdateService(ctx context.Context, id string, version swarm.Version, spec swarm.ServiceSpec, auth string) error
	DistributionInspect(ctx context.Context, image, auth string) (registry.DistributionInspect, error)
	RemoveService(ctx context.Context, id string) error
	Tasks(ctx context.Context, f client.Filters) ([]swarm.Task, error)
	Networks(ctx context.Context, f client.Filters) ([]network.Summary, error)
	CreateNetwork(ctx context.Context, req network.CreateRequest) (string, error)
	RemoveNetwork(ctx context.Context, id string) error
	Secrets(ctx context.Context, f client.Filters) ([]swarm.Secret, error)
	CreateSecret(ctx context.Context, spec swarm.SecretSpec) (string, error)
	UpdateSecret(ctx context.Context, id string, version swarm.Version, spec swarm.SecretSpec) error
	RemoveSecret(ctx context.Context, id string) error
	Configs(ctx context.Context, f client.Filters) ([]swarm.Config, error)
	CreateConfig(ctx context.Context, spec swarm.ConfigSpec) (string, error)
	UpdateConfig(ctx context.Context, id string, version swarm.Version, spec swarm.ConfigSpec) error
	RemoveConfig(ctx context.Context, id string) error
}

// State is what exists on the swarm that a stack's plan reads, by name.
type State struct {
	// Services are the stack's services (those with its namespace label).
	Services map[string]swarm.Service
	// Networks, Secrets and Configs are all of the swarm's, since a stack
	// may name external ones.
	Networks map[string]network.Summary
	Secrets  map[string]swarm.Secret
	Configs  map[string]swarm.Config
}

// namespace is the filter that selects a stack's objects.
func namespace(stack string) client.Filters {
	return client.Filters{"label": {compose.NamespaceLabel + "=" + stack}}
}

// Read lists what exists of stack and what it may refer to.
func Read(ctx context.Context, eng Engine, stack string) (State, error) {
	st := State{Services: map[string]swarm.Service{}, Networks: map[string]network.Summary{},
		Secrets: map[string]swarm.Secret{}, Configs: map[string]swarm.Config{}}
	services, err := eng.Services(ctx, namespace(stack))
	if err != nil {
		return st, fmt.Errorf("list services of stack %s: %w", stack, err)
	}
	for _, s := range services {
		st.Services[s.Spec.Name] = s
	}
	networks, err := eng.Networks(ctx, nil)
	if err != nil {
		return st, fmt.Errorf("list networks: %w", err)
	}
	for _, n := range networks {
		st.Networks[n.Name] = n
	}
	secrets, err := eng.Secrets(ctx, nil)
	if err != nil {
		return st, fmt.Errorf("list secrets: %w", err)
	}
	for _, s := range secrets {
		st.Secrets[s.Spec.Name] = s
	}
	configs, err := eng.Configs(ctx, nil)
	if err != nil {
		return st, fmt.Errorf("list configs: %w", err)
	}
	for _, c := range configs {
		st.Configs[c.Spec.Name] = c
	}
	return st, nil
}
