package cluster

import (
	"context"
	"strings"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/store"
)

// Tasks lists every task of the swarm.
func (c *Cluster) Tasks(ctx context.Context) ([]swarm.Task, error) {
	var out []swarm.Task
	err := c.view(func(tx store.ReadTx) error {
		tasks, err := tx.Tasks()
		for _, t := range tasks {
			out = append(out, *t)
		}
		return err
	})
	return out, err
}

// Task finds a task by ID or unique ID prefix.
func (c *Cluster) Task(ctx context.Context, ref string) (swarm.Task, error) {
	var out swarm.Task
	err := c.view(func(tx store.ReadTx) error {
		t, err := findTask(tx, ref)
		if err == nil {
			out = *t
		}
		return err
	})
	return out, err
}

func findTask(tx store.ReadTx, ref string) (*swarm.Task, error) {
	if t, err := tx.Task(ref); err == nil {
		return t, nil
	}
	tasks, err := tx.Tasks()
	if err != nil {
		return nil, err
	}
	var match []*swarm.Task
	for _, t := range tasks {
		if strings.HasPrefix(t.ID, ref) {
			match = append(match, t)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return nil, errNotFoundf("task %s not found", ref)
	}
	return nil, errInvalidf("task %s is ambiguous (%d matches found)", ref, len(match))
}
