package deploy

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/compose"
)

// Action is what a deploy does to one object.
type Action string

// The actions of a plan.
const (
	Create    Action = "create"
	Update    Action = "update"
	Remove    Action = "remove"
	Unchanged Action = "unchanged"
)

// Change is the plan for one object.
type Change struct {
	// Kind is network, secret, config or service.
	Kind string
	// Name is the object's full name (<stack>_<key> unless the file names it).
	Name   string
	Action Action
	// Fields are what an update changes.
	Fields []FieldChange
	// Note says more where the action alone would mislead.
	Note string
}

// Plan is what deploying a stack over a State does, per object.
type Plan struct {
	Stack *compose.Stack
	// Changes are in apply order: networks, secrets, configs, services in
	// start order, then the services that --prune removes.
	Changes []Change
	state   State
}

// Write prints the plan, one line per object and one per changed field.
func (p *Plan) Write(w io.Writer) error {
	var b bytes.Buffer
	for _, c := range p.Changes {
		fmt.Fprintf(&b, "%s %s: %s", c.Kind, c.Name, c.Action)
		if c.Note != "" {
			fmt.Fprintf(&b, " (%s)", c.Note)
		}
		b.WriteByte('\n')
		for _, f := range c.Fields {
			fmt.Fprintf(&b, "    %s\n", f)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// MakePlan compares the stack with what exists. It is an error, found before
// anything is written, for an external network, secret or config to be
// missing, or for a config's data to have changed (configs are immutable).
// With prune, the stack's services the files no longer have are removed.
func MakePlan(st *compose.Stack, cur State, prune bool) (*Plan, error) {
	p := &Plan{Stack: st, state: cur}
	var errs []string
	for _, n := range st.Networks {
		_, exists := cur.Networks[n.Create.Name]
		switch {
		case n.External && !exists:
			errs = append(errs, fmt.Sprintf("network %s is external but does not exist", n.Create.Name))
		case n.External:
		case exists:
			p.add(Change{Kind: "network", Name: n.Create.Name, Action: Unchanged})
		default:
			p.add(Change{Kind: "network", Name: n.Create.Name, Action: Create})
		}
	}
	for _, s := range st.Secrets {
		c := Change{Kind: "secret", Name: s.Name, Action: Create}
		if old, ok := cur.Secrets[s.Name]; ok {
			c.Action, c.Note = labelsChange(old.Spec.Labels, s.Labels), "its data is checked by the daemon"
			c.Fields, _ = Diff(old.Spec.Annotations, s.Annotations)
		}
		p.add(c)
	}
	for _, s := range st.Configs {
		c := Change{Kind: "config", Name: s.Name, Action: Create}
		if old, ok := cur.Configs[s.Name]; ok {
			if !bytes.Equal(old.Spec.Data, s.Data) {
				errs = append(errs, fmt.Sprintf("config %s: its data changed, and a config's data cannot be updated: give it a new name", s.Name))
			}
			c.Action = labelsChange(old.Spec.Labels, s.Labels)
			c.Fields, _ = Diff(old.Spec.Annotations, s.Annotations)
		}
		p.add(c)
	}
	errs = append(errs, missingReferences(st, cur)...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("deploy stack %s: %s", st.Name, strings.Join(errs, "; "))
	}
	for _, svc := range st.Services {
		c, err := serviceChange(svc.Spec, cur)
		if err != nil {
			return nil, fmt.Errorf("deploy stack %s: service %s: %w", st.Name, svc.Name, err)
		}
		p.add(c)
	}
	if prune {
		keep := map[string]bool{}
		for _, svc := range st.Services {
			keep[svc.Spec.Name] = true
		}
		for _, name := range sortedNames(cur.Services) {
			if !keep[name] {
				p.add(Change{Kind: "service", Name: name, Action: Remove, Note: "--prune"})
			}
		}
	}
	return p, nil
}

func (p *Plan) add(c Change) { p.Changes = append(p.Changes, c) }

func labelsChange(old, new map[string]string) Action {
	if maps.Equal(old, new) {
		return Unchanged
	}
	return Update
}

// serviceChange is a create, or an update with the fields that differ from
// the stored spec, or unchanged.
func serviceChange(spec swarm.ServiceSpec, cur State) (Change, error) {
	c := Change{Kind: "service", Name: spec.Name, Action: Create}
	old, ok := cur.Services[spec.Name]
	if !ok {
		return c, nil
	}
	fields, err := Diff(old.Spec, resolve(spec, old, cur))
	if err != nil {
		return c, err
	}
	c.Action, c.Fields = Update, fields
	if len(fields) == 0 {
		c.Action = Unchanged
	}
	return c, nil
}

// missingReferences are the secrets and configs the services name that the
// stack does not create and that do not exist.
func missingReferences(st *compose.Stack, cur State) []string {
	ours := map[string]bool{}
	for _, s := range st.Secrets {
		ours["secret "+s.Name] = true
	}
	for _, c := range st.Configs {
		ours["config "+c.Name] = true
	}
	var errs []string
	seen := map[string]bool{}
	check := func(svc, key string, exists bool) {
		if !ours[key] && !exists && !seen[key] {
			seen[key] = true
			errs = append(errs, fmt.Sprintf("service %s: %s is external but does not exist", svc, key))
		}
	}
	for _, svc := range st.Services {
		cs := svc.Spec.TaskTemplate.ContainerSpec
		if cs == nil {
			continue
		}
		for _, r := range cs.Secrets {
			_, ok := cur.Secrets[r.SecretName]
			check(svc.Name, "secret "+r.SecretName, ok)
		}
		for _, r := range cs.Configs {
			_, ok := cur.Configs[r.ConfigName]
			check(svc.Name, "config "+r.ConfigName, ok)
		}
	}
	return errs
}

// resolve is spec as the daemon stores it: network targets and secret and
// config references by ID where they exist, the defaults the daemon filled
// in (runtime, isolation, storedDefaults) and the stored spec's force-update
// counter kept, so that only what the files change differs.
func resolve(spec swarm.ServiceSpec, old swarm.Service, cur State) swarm.ServiceSpec {
	spec = storedDefaults(spec)
	oldTT := old.Spec.TaskTemplate
	spec.TaskTemplate.ForceUpdate = oldTT.ForceUpdate
	if spec.TaskTemplate.Runtime == "" && oldTT.Runtime == swarm.RuntimeContainer {
		spec.TaskTemplate.Runtime = oldTT.Runtime
	}
	nets := make([]swarm.NetworkAttachmentConfig, len(spec.TaskTemplate.Networks))
	for i, na := range spec.TaskTemplate.Networks {
		if n, ok := cur.Networks[na.Target]; ok {
			na.Target = n.ID
		}
		nets[i] = na
	}
	if len(nets) > 0 {
		spec.TaskTemplate.Networks = nets
	}
	if spec.TaskTemplate.ContainerSpec == nil {
		return spec
	}
	cs := *spec.TaskTemplate.ContainerSpec
	if cs.Isolation == "" && oldTT.ContainerSpec != nil && oldTT.ContainerSpec.Isolation == container.IsolationDefault {
		cs.Isolation = container.IsolationDefault
	}
	cs.Secrets = make([]*swarm.SecretReference, 0, len(cs.Secrets))
	for _, r := range spec.TaskTemplate.ContainerSpec.Secrets {
		r := *r
		if s, ok := cur.Secrets[r.SecretName]; ok {
			r.SecretID = s.ID
		}
		cs.Secrets = append(cs.Secrets, &r)
	}
	cs.Configs = make([]*swarm.ConfigReference, 0, len(cs.Configs))
	for _, r := range spec.TaskTemplate.ContainerSpec.Configs {
		r := *r
		if c, ok := cur.Configs[r.ConfigName]; ok {
			r.ConfigID = c.ID
		}
		cs.Configs = append(cs.Configs, &r)
	}
	spec.TaskTemplate.ContainerSpec = &cs
	return spec
}

// storedDefaults fills what dockerd (swarmkit) and shoal fill in a spec that
// leaves it out, in the parts a compose file sets only in part: an update or
// rollback config's failure action (pause) and order (stop-first), a restart
// policy's condition (any) and attempts (0), an endpoint's mode (vip).
// Pointers it fills are fresh copies.
func storedDefaults(spec swarm.ServiceSpec) swarm.ServiceSpec {
	for _, u := range []**swarm.UpdateConfig{&spec.UpdateConfig, &spec.RollbackConfig} {
		if *u == nil {
			continue
		}
		c := **u
		if c.FailureAction == "" {
			c.FailureAction = swarm.UpdateFailureActionPause
		}
		if c.Order == "" {
			c.Order = swarm.UpdateOrderStopFirst
		}
		*u = &c
	}
	if rp := spec.TaskTemplate.RestartPolicy; rp != nil {
		p := *rp
		if p.Condition == "" {
			p.Condition = swarm.RestartPolicyConditionAny
		}
		if p.MaxAttempts == nil {
			var zero uint64
			p.MaxAttempts = &zero
		}
		spec.TaskTemplate.RestartPolicy = &p
	}
	if ep := spec.EndpointSpec; ep != nil && ep.Mode == "" {
		e := *ep
		e.Mode = swarm.ResolutionModeVIP
		spec.EndpointSpec = &e
	}
	return spec
}

func sortedNames[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// SendCredentials makes every existing service that the plan leaves
// unchanged an update, so that --with-registry-auth's credentials reach it:
// the swarm keeps them apart from the spec, where no diff can see them, and
// the docker CLI sends them with every service on every deploy.
func (p *Plan) SendCredentials() {
	for i, c := range p.Changes {
		if c.Kind == "service" && c.Action == Unchanged {
			p.Changes[i].Action, p.Changes[i].Note = Update, "sends the registry credentials again"
		}
	}
}
