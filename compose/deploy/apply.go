package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/compose"
	"github.com/shoal-project/shoal/engineapi/client"
)

// Options tune Apply.
type Options struct {
	// Out receives one progress line per write ("Creating service shop_web").
	Out io.Writer
	// WaitTimeout bounds each wait for a dependency to be healthy or
	// completed; zero means 5 minutes.
	WaitTimeout time.Duration
	// Poll is how often a wait lists tasks; zero means half a second.
	Poll time.Duration
	// Auth, when not nil, gives the registry credential sent with each
	// service created or updated (--with-registry-auth).
	Auth Auth
}

// Apply carries out the plan. Existing secrets are sent back first, which the
// daemon refuses if their data changed, so that a changed secret stops the
// deploy before anything is created. Then networks, secrets and configs are
// created, and services created or updated in start order; before a service
// that depends on another being healthy (or completed) is written, Apply
// waits until that one's tasks are running, which for a service with a
// healthcheck means healthy.
func Apply(ctx context.Context, eng Engine, p *Plan, o Options) error {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if err := p.sendSecretsBack(ctx, eng, o.Out); err != nil {
		return err
	}
	if err := p.createObjects(ctx, eng, o.Out); err != nil {
		return err
	}
	cur, err := Read(ctx, eng, p.Stack.Name)
	if err != nil {
		return err
	}
	changes := map[string]Change{}
	for _, c := range p.Changes {
		changes[c.Kind+" "+c.Name] = c
	}
	byName := map[string]compose.Service{}
	ids := map[string]string{}
	waited := map[string]bool{}
	for _, svc := range p.Stack.Services {
		byName[svc.Name] = svc
		for _, dep := range svc.DependsOn {
			if (!dep.Healthy && !dep.Completed) || waited[dep.Service] {
				continue
			}
			d, ok := byName[dep.Service]
			if !ok {
				continue // not enabled: compose-go left it out
			}
			waited[dep.Service] = true
			if err := waitReady(ctx, eng, ids[dep.Service], d, dep.Completed, o); err != nil {
				return fmt.Errorf("service %s: %w", svc.Name, err)
			}
		}
		if ids[svc.Name], err = writeService(ctx, eng, svc.Spec, changes["service "+svc.Spec.Name], cur, o); err != nil {
			return err
		}
	}
	for _, c := range p.Changes {
		if c.Kind == "service" && c.Action == Remove {
			fmt.Fprintf(o.Out, "Removing service %s\n", c.Name)
			if err := eng.RemoveService(ctx, p.state.Services[c.Name].ID); err != nil && !client.IsNotFound(err) {
				return fmt.Errorf("remove service %s: %w", c.Name, err)
			}
		}
	}
	return nil
}

// sendSecretsBack updates every existing secret of the stack with its data.
func (p *Plan) sendSecretsBack(ctx context.Context, eng Engine, out io.Writer) error {
	for _, spec := range p.Stack.Secrets {
		old, ok := p.state.Secrets[spec.Name]
		if !ok {
			continue
		}
		if !labelsEqual(old.Spec.Labels, spec.Labels) {
			fmt.Fprintf(out, "Updating secret %s\n", spec.Name)
		}
		if err := eng.UpdateSecret(ctx, old.ID, old.Version, spec); err != nil {
			return fmt.Errorf("update secret %s: %w", spec.Name, err)
		}
	}
	return nil
}

// createObjects creates the networks, secrets and configs the plan creates
// and updates the configs whose labels changed.
func (p *Plan) createObjects(ctx context.Context, eng Engine, out io.Writer) error {
	for _, n := range p.Stack.Networks {
		if n.External || p.has("network", n.Create.Name) {
			continue
		}
		fmt.Fprintf(out, "Creating network %s\n", n.Create.Name)
		if _, err := eng.CreateNetwork(ctx, n.Create); err != nil {
			return fmt.Errorf("create network %s: %w", n.Create.Name, err)
		}
	}
	for _, s := range p.Stack.Secrets {
		if p.has("secret", s.Name) {
			continue
		}
		fmt.Fprintf(out, "Creating secret %s\n", s.Name)
		if _, err := eng.CreateSecret(ctx, s); err != nil {
			return fmt.Errorf("create secret %s: %w", s.Name, err)
		}
	}
	for _, c := range p.Stack.Configs {
		old, ok := p.state.Configs[c.Name]
		switch {
		case !ok:
			fmt.Fprintf(out, "Creating config %s\n", c.Name)
			if _, err := eng.CreateConfig(ctx, c); err != nil {
				return fmt.Errorf("create config %s: %w", c.Name, err)
			}
		case !labelsEqual(old.Spec.Labels, c.Labels):
			fmt.Fprintf(out, "Updating config %s\n", c.Name)
			if err := eng.UpdateConfig(ctx, old.ID, old.Version, c); err != nil {
				return fmt.Errorf("update config %s: %w", c.Name, err)
			}
		}
	}
	return nil
}

// has reports whether an object of kind existed when the plan was made.
func (p *Plan) has(kind, name string) bool {
	switch kind {
	case "network":
		_, ok := p.state.Networks[name]
		return ok
	case "secret":
		_, ok := p.state.Secrets[name]
		return ok
	}
	return false
}

// writeService creates or updates one service as its change says and returns
// its ID.
func writeService(ctx context.Context, eng Engine, spec swarm.ServiceSpec, c Change, cur State, o Options) (string, error) {
	old, exists := cur.Services[spec.Name]
	if exists && c.Action == Unchanged {
		return old.ID, nil
	}
	var auth string
	if o.Auth != nil && spec.TaskTemplate.ContainerSpec != nil {
		var err error
		if auth, err = o.Auth(spec.TaskTemplate.ContainerSpec.Image); err != nil {
			return "", fmt.Errorf("service %s: %w", spec.Name, err)
		}
	}
	out := o.Out
	if !exists {
		fmt.Fprintf(out, "Creating service %s\n", spec.Name)
		id, err := eng.CreateService(ctx, resolve(spec, old, cur), auth)
		if err != nil {
			return "", fmt.Errorf("create service %s: %w", spec.Name, err)
		}
		return id, nil
	}
	fmt.Fprintf(out, "Updating service %s\n", spec.Name)
	if err := eng.UpdateService(ctx, old.ID, old.Version, resolve(spec, old, cur), auth); err != nil {
		return "", fmt.Errorf("update service %s: %w", spec.Name, err)
	}
	return old.ID, nil
}

// waitReady waits until service id's tasks are running (healthy, when it has
// a healthcheck) or, with completed, until they have completed.
func waitReady(ctx context.Context, eng Engine, id string, svc compose.Service, completed bool, o Options) error {
	timeout, poll := o.WaitTimeout, o.Poll
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	if poll == 0 {
		poll = 500 * time.Millisecond
	}
	what := "healthy"
	if completed {
		what = "completed"
	}
	fmt.Fprintf(o.Out, "Waiting for service %s to be %s\n", svc.Spec.Name, what)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	last := "no tasks yet"
	for {
		tasks, err := eng.Tasks(ctx, client.Filters{"service": {id}})
		if err == nil {
			var done bool
			done, last = ready(tasks, svc.Spec.Mode, completed)
			if done {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("waited %s for service %s to be %s: %s", timeout, svc.Spec.Name, what, last)
			}
			return fmt.Errorf("wait for service %s: %w", svc.Spec.Name, ctx.Err())
		case <-tick.C:
		}
	}
}

// ready reports whether a service's tasks are all there and running (or,
// with completed, complete), and says how far they are.
func ready(tasks []swarm.Task, mode swarm.ServiceMode, completed bool) (bool, string) {
	want := 1
	switch {
	case mode.Replicated != nil && mode.Replicated.Replicas != nil:
		want = int(*mode.Replicated.Replicas)
	case mode.ReplicatedJob != nil && mode.ReplicatedJob.TotalCompletions != nil:
		want = int(*mode.ReplicatedJob.TotalCompletions)
	}
	state, desired := swarm.TaskStateRunning, 0
	if completed {
		state = swarm.TaskStateComplete
	}
	got := 0
	for _, t := range tasks {
		if t.Status.State == state {
			got++
		}
		if t.DesiredState == swarm.TaskStateRunning {
			desired++
		}
	}
	if (mode.Global != nil || mode.GlobalJob != nil) && desired > want {
		want = desired
	}
	return got >= want, fmt.Sprintf("%d of %d tasks %s", got, want, state)
}

func labelsEqual(a, b map[string]string) bool { return labelsChange(a, b) == Unchanged }
