package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/shoal-project/shoal/engineapi/client"
)

// Teardown removes everything labelled as stack's: services, secrets, configs,
// then networks (the daemon waits for the services' tasks to leave them). It
// goes on past a failure and returns every one; a stack with nothing is an
// error.
func Teardown(ctx context.Context, eng Engine, stack string, out io.Writer) error {
	f := namespace(stack)
	type object struct{ kind, name, id string }
	var objs []object
	services, err := eng.Services(ctx, f)
	if err != nil {
		return fmt.Errorf("list services of stack %s: %w", stack, err)
	}
	for _, s := range services {
		objs = append(objs, object{"service", s.Spec.Name, s.ID})
	}
	secrets, err := eng.Secrets(ctx, f)
	if err != nil {
		return fmt.Errorf("list secrets of stack %s: %w", stack, err)
	}
	for _, s := range secrets {
		objs = append(objs, object{"secret", s.Spec.Name, s.ID})
	}
	configs, err := eng.Configs(ctx, f)
	if err != nil {
		return fmt.Errorf("list configs of stack %s: %w", stack, err)
	}
	for _, c := range configs {
		objs = append(objs, object{"config", c.Spec.Name, c.ID})
	}
	networks, err := eng.Networks(ctx, f)
	if err != nil {
		return fmt.Errorf("list networks of stack %s: %w", stack, err)
	}
	for _, n := range networks {
		objs = append(objs, object{"network", n.Name, n.ID})
	}
	if len(objs) == 0 {
		return fmt.Errorf("nothing found in stack: %s", stack)
	}
	rank := map[string]int{"service": 0, "secret": 1, "config": 2, "network": 3}
	sort.SliceStable(objs, func(i, j int) bool {
		if rank[objs[i].kind] != rank[objs[j].kind] {
			return rank[objs[i].kind] < rank[objs[j].kind]
		}
		return objs[i].name < objs[j].name
	})
	remove := map[string]func(context.Context, string) error{
		"service": eng.RemoveService, "secret": eng.RemoveSecret, "config": eng.RemoveConfig, "network": eng.RemoveNetwork,
	}
	var errs []error
	for _, o := range objs {
		fmt.Fprintf(out, "Removing %s %s\n", o.kind, o.name)
		if err := remove[o.kind](ctx, o.id); err != nil && !client.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove %s %s: %w", o.kind, o.name, err))
		}
	}
	return errors.Join(errs...)
}
