package agent

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/session"
)

// While a node has no session with any manager (the uplink is down, the
// managers are), nobody would replace a task whose container exits: Docker's
// workers leave it dead until a manager is back. This agent restarts it itself,
// as the task's restart policy says (condition, delay, attempts within the
// window), in the same container, as `docker start` would. The managers are not
// told: the task stays running for them, with the same container.

// defaultRestartDelay is swarmkit's restart delay when a policy sets none.
const defaultRestartDelay = 5 * time.Second

// restartLocally restarts an exited task on its own when the node has no
// session and the task's policy asks for it. It reports whether it will.
func (a *Agent) restartLocally(ctx context.Context, t *taskState) bool {
	if s, _ := a.sess.get(); s != nil {
		return false
	}
	task := t.a.Task
	if task.DesiredState != swarm.TaskStateRunning || t.removed || t.unhealthy || t.containerID == "" || t.reported != swarm.TaskStateRunning {
		return false
	}
	if !a.policyRestarts(t) {
		return false
	}
	delay := defaultRestartDelay
	if p := task.Spec.RestartPolicy; p != nil && p.Delay != nil {
		delay = *p.Delay
	}
	t.localRestarts = append(t.localRestarts, time.Now())
	t.busy = true
	containerID, taskID, as := t.containerID, task.ID, t.a
	a.log.Info("no manager reachable: restarting an exited task on this node", "task", taskID, "exit", t.exitCode, "delay", delay)
	a.ops.Add(1)
	go func() {
		defer a.ops.Done()
		timer := time.NewTimer(delay)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		r := opResult{taskID: taskID, kind: opRestart, containerID: containerID}
		r.err = a.restoreFiles(ctx, as, containerID)
		if r.err == nil {
			r.err = a.cfg.Containers.Start(ctx, containerID)
		}
		if r.err == nil {
			if info, err := a.cfg.Containers.Inspect(ctx, containerID); err == nil && info.State != nil {
				r.pid = info.State.Pid
			}
		}
		select {
		case a.results <- r:
		case <-ctx.Done():
		}
	}()
	return true
}

// policyRestarts reports whether t's restart policy restarts it after the exit
// it just had, counting the restarts this node made within the window.
func (a *Agent) policyRestarts(t *taskState) bool {
	p := t.a.Task.Spec.RestartPolicy
	if p == nil {
		p = &swarm.RestartPolicy{}
	}
	switch p.Condition {
	case swarm.RestartPolicyConditionNone:
		return false
	case swarm.RestartPolicyConditionOnFailure:
		if t.exitCode == 0 && !t.oom {
			return false
		}
	}
	if p.MaxAttempts != nil && *p.MaxAttempts > 0 {
		n := 0
		for _, at := range t.localRestarts {
			if p.Window == nil || *p.Window == 0 || time.Since(at) <= *p.Window {
				n++
			}
		}
		if uint64(n) >= *p.MaxAttempts {
			return false
		}
	}
	return true
}

// onRestarted applies the result of a local restart.
func (a *Agent) onRestarted(ctx context.Context, t *taskState, r opResult) {
	t.busy = false
	if r.err != nil {
		a.log.Warn("restart task on this node", "task", r.taskID, "err", r.err)
		a.reportExit(t)
		a.reconcile(ctx, t)
		return
	}
	if !terminal(t.reported) {
		t.exited, t.exitCode, t.oom, t.pid = false, 0, false, r.pid
	}
	a.reconcile(ctx, t)
}

// restoreFiles gives a task's stopped container its secrets and configs again,
// from the assignment, for a start of the same container.
func (a *Agent) restoreFiles(ctx context.Context, as session.Assignment, containerID string) error {
	if cs := as.Task.Spec.ContainerSpec; cs == nil || (len(cs.Secrets) == 0 && len(cs.Configs) == 0) {
		return nil
	}
	cs, err := expandTemplates(as, a.cfg.NodeID)
	if err != nil {
		return err
	}
	files, err := taskFiles(as, a.cfg.NodeID, cs)
	if err != nil {
		return err
	}
	return a.cfg.Containers.RestoreFiles(ctx, containerID, files)
}
