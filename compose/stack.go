package compose

import (
	"fmt"
	"os"
	"sort"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/swarm"
)

// convert turns a loaded project into a stack's specs. compose-go has already
// named networks, volumes, secrets and configs "<project>_<key>" unless the
// file names them, which is the docker CLI's stack naming too.
func convert(p *types.Project) (*Stack, error) {
	st := &Stack{Name: p.Name}
	used := map[string]bool{}
	for _, name := range startOrder(p) {
		svc := p.Services[name]
		spec, warnings, err := serviceSpec(p, svc)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		for key := range svc.Networks {
			used[key] = true
		}
		st.Warnings = append(st.Warnings, warnings...)
		st.Services = append(st.Services, Service{Name: name, Spec: spec, DependsOn: dependencies(svc)})
	}
	for _, key := range sortedKeys(p.Networks) {
		if used[key] {
			n, err := networkCreate(p.Name, key, p.Networks[key])
			if err != nil {
				return nil, fmt.Errorf("network %s: %w", key, err)
			}
			st.Networks = append(st.Networks, n)
		}
	}
	for _, key := range sortedKeys(p.Secrets) {
		s := p.Secrets[key]
		if s.External {
			continue
		}
		data, err := objectData(p, types.FileObjectConfig(s))
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", key, err)
		}
		spec := swarm.SecretSpec{Annotations: annotations(p.Name, s.Name, s.Labels), Data: data}
		if s.Driver != "" {
			spec.Driver = &swarm.Driver{Name: s.Driver, Options: s.DriverOpts}
		}
		if s.TemplateDriver != "" {
			spec.Templating = &swarm.Driver{Name: s.TemplateDriver}
		}
		st.Secrets = append(st.Secrets, spec)
	}
	for _, key := range sortedKeys(p.Configs) {
		c := p.Configs[key]
		if c.External {
			continue
		}
		data, err := objectData(p, types.FileObjectConfig(c))
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", key, err)
		}
		spec := swarm.ConfigSpec{Annotations: annotations(p.Name, c.Name, c.Labels), Data: data}
		if c.TemplateDriver != "" {
			spec.Templating = &swarm.Driver{Name: c.TemplateDriver}
		}
		st.Configs = append(st.Configs, spec)
	}
	return st, nil
}

// objectData reads a secret's or config's data from where the file says.
func objectData(p *types.Project, o types.FileObjectConfig) ([]byte, error) {
	switch {
	case o.File != "":
		b, err := os.ReadFile(o.File)
		if err != nil {
			return nil, fmt.Errorf("read file: %w", err)
		}
		return b, nil
	case o.Environment != "":
		v, ok := p.Environment[o.Environment]
		if !ok {
			return nil, fmt.Errorf("environment variable %s is not set", o.Environment)
		}
		return []byte(v), nil
	default:
		return []byte(o.Content), nil
	}
}

func annotations(stack, name string, labels types.Labels) swarm.Annotations {
	return swarm.Annotations{Name: name, Labels: withNamespace(stack, labels)}
}

// withNamespace copies labels and adds the stack's namespace label.
func withNamespace(stack string, labels map[string]string) map[string]string {
	out := make(map[string]string, len(labels)+1)
	for k, v := range labels {
		out[k] = v
	}
	out[NamespaceLabel] = stack
	return out
}

func dependencies(svc types.ServiceConfig) []Dependency {
	var deps []Dependency
	for _, name := range sortedKeys(svc.DependsOn) {
		d := svc.DependsOn[name]
		deps = append(deps, Dependency{
			Service:   name,
			Healthy:   d.Condition == types.ServiceConditionHealthy,
			Completed: d.Condition == types.ServiceConditionCompletedSuccessfully,
		})
	}
	return deps
}

// startOrder sorts the services so that each comes after the services it
// depends on, by name where the order is free. compose-go refuses cycles.
func startOrder(p *types.Project) []string {
	var order []string
	done := map[string]bool{}
	var visit func(name string)
	visit = func(name string) {
		if done[name] {
			return
		}
		done[name] = true
		svc, ok := p.Services[name]
		if !ok {
			return // a dependency that is not enabled (required: false)
		}
		for _, dep := range sortedKeys(svc.DependsOn) {
			visit(dep)
		}
		order = append(order, name)
	}
	for _, name := range sortedKeys(p.Services) {
		visit(name)
	}
	return order
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
