package cluster

import (
	"context"
	"sync"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/runtime/container"
)

// ServiceLogs streams the output of every task of a service that ran on this node.
func (c *Cluster) ServiceLogs(ctx context.Context, ref string, opts LogOptions) (<-chan LogMessage, error) {
	var tasks []*swarm.Task
	err := c.view(func(tx store.ReadTx) error {
		svc, err := findService(tx, ref)
		if err != nil {
			return err
		}
		tasks, err = tx.TasksByService(svc.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.taskLogs(ctx, tasks, opts), nil
}

// TaskLogs streams the output of one task.
func (c *Cluster) TaskLogs(ctx context.Context, ref string, opts LogOptions) (<-chan LogMessage, error) {
	var t *swarm.Task
	err := c.view(func(tx store.ReadTx) error {
		var err error
		t, err = findTask(tx, ref)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.taskLogs(ctx, []*swarm.Task{t}, opts), nil
}

// taskLogs merges the logs of the tasks' containers into one stream.
func (c *Cluster) taskLogs(ctx context.Context, tasks []*swarm.Task, opts LogOptions) <-chan LogMessage {
	out := make(chan LogMessage, 64)
	var wg sync.WaitGroup
	for _, t := range tasks {
		if t.Status.ContainerStatus == nil || t.Status.ContainerStatus.ContainerID == "" {
			continue
		}
		entries, err := c.cfg.Containers.Logs(ctx, t.Status.ContainerStatus.ContainerID, container.LogOptions{
			Follow: opts.Follow, Since: opts.Since, Until: opts.Until, Tail: opts.Tail,
			Stdout: opts.Stdout, Stderr: opts.Stderr,
		})
		if err != nil {
			c.log.Debug("task logs", "task", t.ID, "err", err)
			continue
		}
		wg.Add(1)
		go func(t *swarm.Task) {
			defer wg.Done()
			for e := range entries {
				msg := LogMessage{Stream: e.Stream, Time: e.Time, Line: e.Line, NodeID: t.NodeID, ServiceID: t.ServiceID, TaskID: t.ID}
				select {
				case out <- msg:
				case <-ctx.Done():
					return
				}
			}
		}(t)
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out
}
