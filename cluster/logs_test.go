package cluster

import (
	"maps"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

// A task's log lines carry what its log driver's options name: its
// environment, its labels and the swarm labels of its container.
func TestLogAttributesOfTask(t *testing.T) {
	task := &swarm.Task{ID: "t1", ServiceID: "s1", NodeID: "n1", Spec: swarm.TaskSpec{
		ContainerSpec: &swarm.ContainerSpec{Env: []string{"asdf=test1", "B=2"}, Labels: map[string]string{"team": "a"}},
		LogDriver:     &swarm.Driver{Name: "json-file", Options: map[string]string{"env": "asdf", "labels": "team,com.docker.swarm.task.id"}},
	}}
	want := map[string]string{"asdf": "test1", "team": "a", "com.docker.swarm.task.id": "t1"}
	if got := logAttributes(task); !maps.Equal(got, want) {
		t.Fatalf("attributes %v, want %v", got, want)
	}
	task.Spec.LogDriver = nil
	if got := logAttributes(task); len(got) != 0 {
		t.Fatalf("attributes without log options: %v", got)
	}
}
