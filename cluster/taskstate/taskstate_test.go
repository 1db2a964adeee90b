package taskstate

import (
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

func TestOrder(t *testing.T) {
	if !Less(swarm.TaskStatePending, swarm.TaskStateRunning) || Less(swarm.TaskStateFailed, swarm.TaskStateRunning) {
		t.Fatal("lifecycle order is wrong")
	}
	for _, s := range []swarm.TaskState{swarm.TaskStateComplete, swarm.TaskStateFailed, swarm.TaskStateShutdown, swarm.TaskStateRejected, swarm.TaskStateOrphaned, swarm.TaskStateRemove} {
		if !Terminal(s) {
			t.Errorf("%s is not terminal", s)
		}
	}
	for _, s := range []swarm.TaskState{swarm.TaskStateNew, swarm.TaskStatePending, swarm.TaskStateRunning, swarm.TaskStateStarting} {
		if Terminal(s) {
			t.Errorf("%s is terminal", s)
		}
	}
}
