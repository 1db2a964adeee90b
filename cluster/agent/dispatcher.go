package agent

import (
	"context"

	"github.com/moby/moby/api/types/swarm"
)

// Assignment is one task given to this node, with what the worker needs to know of
// its service.
type Assignment struct {
	Task        *swarm.Task
	ServiceName string
	// RegistryAuth is the credentials the service was created with for pulling
	// its image (X-Registry-Auth, still encoded); "" pulls anonymously.
	RegistryAuth string
}

// AssignmentSet is a change to the node's assignments. The first set a session
// sends is Full: every task the node has; later ones carry only what changed.
type AssignmentSet struct {
	Full    bool
	Tasks   []Assignment
	Removed []string // IDs of tasks no longer assigned (deleted)
}

// StatusUpdate is a task state change observed on the node.
type StatusUpdate struct {
	TaskID string
	Status swarm.TaskStatus
}

// Dispatcher is the manager side of the worker's session: in a single-node swarm the
// local manager; across nodes, a session over the control port.
type Dispatcher interface {
	// Assignments streams the node's assignments until ctx is done.
	Assignments(ctx context.Context, nodeID string) (<-chan AssignmentSet, error)
	// UpdateTaskStatus records observed task states; a state never moves backwards.
	UpdateTaskStatus(ctx context.Context, nodeID string, updates []StatusUpdate) error
}
