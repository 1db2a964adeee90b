// Package taskstate orders task states along their lifecycle (new, pending,
// assigned, ... running, then the terminal states), so managers and workers agree
// on what "before running" and "stopped for good" mean.
package taskstate

import "github.com/moby/moby/api/types/swarm"

var order = map[swarm.TaskState]int{
	swarm.TaskStateNew: 0, swarm.TaskStateAllocated: 1, swarm.TaskStatePending: 2,
	swarm.TaskStateAssigned: 3, swarm.TaskStateAccepted: 4, swarm.TaskStatePreparing: 5,
	swarm.TaskStateReady: 6, swarm.TaskStateStarting: 7, swarm.TaskStateRunning: 8,
	swarm.TaskStateComplete: 9, swarm.TaskStateShutdown: 10, swarm.TaskStateFailed: 11,
	swarm.TaskStateRejected: 12, swarm.TaskStateRemove: 13, swarm.TaskStateOrphaned: 14,
}

// Less reports whether state a comes before b in the lifecycle.
func Less(a, b swarm.TaskState) bool { return order[a] < order[b] }

// Terminal reports whether a task in state s has stopped for good.
func Terminal(s swarm.TaskState) bool { return order[s] >= order[swarm.TaskStateComplete] }

// Wanted reports whether a task whose desired state is desired should run: a
// service's tasks are desired Running, a job's tasks desired Complete (as
// swarmkit creates them); Shutdown and later mean stop.
func Wanted(desired swarm.TaskState) bool {
	return order[desired] <= order[swarm.TaskStateRunning] || desired == swarm.TaskStateComplete
}
