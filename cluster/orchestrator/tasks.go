package orchestrator

import (
	"encoding/json"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/taskstate"
)

// StateLess reports whether a comes before b in the task lifecycle.
func StateLess(a, b swarm.TaskState) bool { return taskstate.Less(a, b) }

// Terminal reports whether a task in state s has stopped for good.
func Terminal(s swarm.TaskState) bool { return taskstate.Terminal(s) }

// active reports whether the orchestrator still wants t to run: a job's task
// (desired Complete) stops being active once it has completed.
func active(t *swarm.Task) bool {
	if t.DesiredState == swarm.TaskStateComplete {
		return t.Status.State != swarm.TaskStateComplete
	}
	return taskstate.Wanted(t.DesiredState)
}

// stopping reports whether t was told to stop and has not stopped yet.
func stopping(t *swarm.Task) bool { return !active(t) && !Terminal(t.Status.State) }

// upToDate reports whether t was made from the service's current task template.
// Both templates are compared with the defaults dockerd stores (TaskDefaults), so
// a task made before shoal stored them is not out of date for lacking them.
func upToDate(t *swarm.Task, svc *swarm.Service) bool {
	return specEqual(TaskDefaults(t.Spec), TaskDefaults(svc.Spec.TaskTemplate)) && portsEqual(t.Status.PortStatus.Ports, endpointPorts(svc))
}

// UpToDate is upToDate for other packages (the API's "_up-to-date" task filter).
func UpToDate(t *swarm.Task, svc *swarm.Service) bool { return upToDate(t, svc) }

func specEqual(a, b swarm.TaskSpec) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// portsEqual compares a task's ports (task) with the service's (want). A host-mode
// port the service leaves to the node (PublishedPort 0) matches whatever port the
// node picked.
func portsEqual(task, want []swarm.PortConfig) bool {
	if len(task) != len(want) {
		return false
	}
	for i, w := range want {
		p := task[i]
		if p.Protocol != w.Protocol || p.TargetPort != w.TargetPort || p.PublishMode != w.PublishMode || p.Name != w.Name {
			return false
		}
		if w.PublishedPort != 0 && p.PublishedPort != w.PublishedPort {
			return false
		}
	}
	return true
}

// endpointPorts are the ports the tasks of svc publish: as the cluster resolved
// them (ingress ports with their assigned published port), else as the spec asks.
func endpointPorts(svc *swarm.Service) []swarm.PortConfig {
	if len(svc.Endpoint.Ports) > 0 {
		return append([]swarm.PortConfig(nil), svc.Endpoint.Ports...)
	}
	if svc.Spec.EndpointSpec == nil || len(svc.Spec.EndpointSpec.Ports) == 0 {
		return nil
	}
	return PortDefaults(svc.Spec.EndpointSpec.Ports)
}

// newTask makes a task for slot (replicated) or node (global) of svc, ready for the
// scheduler: allocation of a node-local task has nothing to wait for.
func newTask(svc *swarm.Service, slot int, nodeID string, now time.Time) *swarm.Task {
	t := &swarm.Task{
		ID:           store.NewID(),
		Spec:         svc.Spec.TaskTemplate,
		ServiceID:    svc.ID,
		Slot:         slot,
		NodeID:       nodeID,
		DesiredState: swarm.TaskStateRunning,
		Status: swarm.TaskStatus{
			Timestamp:  now,
			State:      swarm.TaskStatePending,
			Message:    "pending task scheduling",
			PortStatus: swarm.PortStatus{Ports: endpointPorts(svc)},
		},
	}
	// dockerd shows a task's spec without the service's runtime name (swarmkit
	// keeps the runtime in the spec's oneof, and only the service's conversion
	// names it); upToDate compares the two with TaskDefaults.
	t.Spec.Runtime = ""
	t.Annotations.Labels = map[string]string{}
	if svc.JobStatus != nil {
		t.DesiredState = swarm.TaskStateComplete
		it := svc.JobStatus.JobIteration
		t.JobIteration = &it
	}
	return t
}
