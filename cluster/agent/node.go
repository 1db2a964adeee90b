package agent

import (
	"context"
	"time"

	"github.com/shoal-project/shoal/netplane/overlay"
	"github.com/shoal-project/shoal/runtime/container"
)

// What the control plane asks of the node's own tasks goes through the agent,
// the one part that drives the node's runtime and network.

// TaskLogs reads a task container's output on this node (for `docker service
// logs`, from whichever manager asks).
func (a *Agent) TaskLogs(ctx context.Context, containerID string, opts container.LogOptions) (<-chan container.LogEntry, error) {
	return a.cfg.Containers.Logs(ctx, containerID, opts)
}

// RemoveTasks stops and removes every task container of the node with its
// network sandbox and published ports: the node left its swarm. The agent
// must not be running.
func (a *Agent) RemoveTasks(ctx context.Context) {
	list, err := a.cfg.Containers.List(ctx, true)
	if err != nil {
		a.log.Warn("list task containers", "err", err)
		return
	}
	services := map[string]bool{}
	defer func() {
		for id := range services {
			if err := a.cfg.Network.PublishService(ctx, id, nil, nil); err != nil {
				a.log.Warn("unpublish ingress ports", "service", id, "err", err)
			}
		}
		if a.cfg.Overlay != nil {
			if err := a.cfg.Overlay.Apply(ctx, overlay.State{}); err != nil {
				a.log.Warn("remove the overlay networks", "err", err)
			}
		}
		if a.cfg.DNS != nil {
			a.cfg.DNS.Table().Replace(nil)
		}
	}()
	for _, ct := range list {
		taskID := ct.Labels[LabelTaskID]
		if taskID == "" {
			continue
		}
		services[ct.Labels[LabelServiceID]] = true
		grace := time.Second
		_ = a.cfg.Containers.Stop(ctx, ct.ID, &grace)
		if err := a.cfg.Containers.Remove(ctx, ct.ID, true); err != nil {
			a.log.Warn("remove task container", "container", ct.ID, "err", err)
		}
		a.detachOverlay(ctx, taskID)
		if err := a.cfg.Network.RemoveSandbox(ctx, taskID); err != nil {
			a.log.Warn("remove task sandbox", "task", taskID, "err", err)
		}
	}
}
