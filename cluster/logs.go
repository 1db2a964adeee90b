package cluster

import (
	"context"
	"maps"
	"sync"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/agent"
	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/runtime/container"
)

// ServiceLogs streams the output of every task of a service that ran on this node.
// Following, it also streams the tasks that start later (a restart, a scale-up).
func (c *Cluster) ServiceLogs(ctx context.Context, ref string, opts LogOptions) (<-chan LogMessage, error) {
	s, _, err := c.active()
	if err != nil {
		return nil, err
	}
	var (
		tasks     []*swarm.Task
		serviceID string
		events    <-chan store.Event
	)
	read := func(tx store.ReadTx) error {
		svc, err := findService(tx, ref)
		if err != nil {
			return err
		}
		serviceID = svc.ID
		tasks, err = tx.TasksByService(svc.ID)
		return err
	}
	if opts.Follow {
		events, err = s.ViewAndWatch(ctx, read, store.KindTask)
	} else {
		err = s.View(read)
	}
	if err != nil {
		return nil, err
	}
	out := make(chan LogMessage, 64)
	streams := &logStreams{c: c, ctx: ctx, opts: opts, out: out, seen: map[string]bool{}}
	for _, t := range tasks {
		streams.add(t)
	}
	go func() {
		if events != nil {
			for ev := range events {
				if t, ok := ev.Object.(*swarm.Task); ok && t.ServiceID == serviceID && ev.Action != store.ActionRemove {
					streams.add(t)
				}
			}
		}
		streams.wg.Wait()
		close(out)
	}()
	return out, nil
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
	out := make(chan LogMessage, 64)
	streams := &logStreams{c: c, ctx: ctx, opts: opts, out: out, seen: map[string]bool{}}
	streams.add(t)
	go func() {
		streams.wg.Wait()
		close(out)
	}()
	return out, nil
}

// logStreams merges the logs of task containers into one stream, each container once.
type logStreams struct {
	c    *Cluster
	ctx  context.Context
	opts LogOptions
	out  chan<- LogMessage
	wg   sync.WaitGroup
	seen map[string]bool
}

// add starts streaming t's container, once it has one.
func (l *logStreams) add(t *swarm.Task) {
	cs := t.Status.ContainerStatus
	if cs == nil || cs.ContainerID == "" || l.seen[cs.ContainerID] {
		return
	}
	l.seen[cs.ContainerID] = true
	entries, err := l.c.taskLogs(l.ctx, t, container.LogOptions{
		Follow: l.opts.Follow, Since: l.opts.Since, Until: l.opts.Until, Tail: l.opts.Tail,
		Stdout: l.opts.Stdout, Stderr: l.opts.Stderr,
	})
	if err != nil {
		l.c.log.Debug("task logs", "task", t.ID, "err", err)
		return
	}
	attrs := logAttributes(t)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for e := range entries {
			msg := LogMessage{Stream: e.Stream, Time: e.Time, Line: e.Line, NodeID: t.NodeID, ServiceID: t.ServiceID, TaskID: t.ID, Attrs: attrs}
			select {
			case l.out <- msg:
			case <-l.ctx.Done():
				return
			}
		}
	}()
}

// logAttributes are the attributes of a task's log lines that its log
// driver's options ask for, from its container spec's labels (and the swarm
// labels of its container) and environment, as dockerd's log drivers tag
// them. (The image's environment is not consulted: the manager does not have it.)
func logAttributes(t *swarm.Task) map[string]string {
	cs := t.Spec.ContainerSpec
	if t.Spec.LogDriver == nil || len(t.Spec.LogDriver.Options) == 0 || cs == nil {
		return nil
	}
	labels := maps.Clone(cs.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[agent.LabelNodeID], labels[agent.LabelServiceID], labels[agent.LabelTaskID] = t.NodeID, t.ServiceID, t.ID
	return container.LogAttributes(t.Spec.LogDriver.Options, labels, cs.Env)
}

// taskLogs reads a task container's logs where the task ran: on this node, or
// through its node's control port.
func (c *Cluster) taskLogs(ctx context.Context, t *swarm.Task, opts container.LogOptions) (<-chan container.LogEntry, error) {
	s, node, err := c.active()
	if err != nil {
		return nil, err
	}
	id := t.Status.ContainerStatus.ContainerID
	if t.NodeID == "" || t.NodeID == node.NodeID {
		return c.localLogs(ctx, id, opts)
	}
	return c.remoteLogs(ctx, s, t.NodeID, id, opts)
}

// localLogs reads a task container's logs on this node, through its agent.
func (c *Cluster) localLogs(ctx context.Context, containerID string, opts container.LogOptions) (<-chan container.LogEntry, error) {
	c.mu.RLock()
	ag := c.agent
	c.mu.RUnlock()
	if ag == nil {
		return nil, unavailableError{msgNotInSwarm}
	}
	return ag.TaskLogs(ctx, containerID, opts)
}
