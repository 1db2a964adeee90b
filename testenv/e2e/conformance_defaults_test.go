package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// The two commands a new user types first, with no flags: the CLI's progress
// completes, it exits 0, `service ls` stays healthy, and the stored spec carries
// dockerd's defaults (one replica; a job's MaxConcurrent and TotalCompletions).
// Before, the first printed "unrecognized service mode" and exited 1, the second
// panicked the CLI and broke `service ls` for every service.
func TestDefaultsOfServicesCreatedWithoutFlags(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "defaults")

	out, err := n.Docker("service", "create", "--name", "x", "busybox", "sleep", "1000")
	if err != nil || !strings.Contains(out, "overall progress: 1 out of 1 tasks") || !strings.Contains(out, "converged") {
		t.Fatalf("service create without --replicas: %v\n%s", err, out)
	}
	out, err = n.Docker("service", "create", "--name", "j", "--mode", "replicated-job", "busybox", "echo", "done")
	if err != nil || !strings.Contains(out, "job complete") || strings.Contains(out, "panic") {
		t.Fatalf("service create of a replicated job without counts: %v\n%s", err, out)
	}
	waitServiceLs(t, n, "x", "replicated 1/1")
	waitServiceLs(t, n, "j", "replicated job 0/1 (1/1 completed)")

	x := storedService(t, n, "x")
	if r := x.Spec.Mode.Replicated; r == nil || r.Replicas == nil || *r.Replicas != 1 {
		t.Errorf("stored mode of x = %+v, want Replicas 1", x.Spec.Mode)
	}
	if tt := x.Spec.TaskTemplate; tt.Runtime != swarm.RuntimeContainer || tt.ContainerSpec.Isolation != "default" {
		t.Errorf("stored task template of x: runtime %q, isolation %q", tt.Runtime, tt.ContainerSpec.Isolation)
	}
	if x.Endpoint.Spec.Mode != "" || len(x.Endpoint.Spec.Ports) != 0 {
		t.Errorf("Endpoint.Spec of a service without ports = %+v, want empty as dockerd's", x.Endpoint.Spec)
	}
	j := storedService(t, n, "j")
	if rj := j.Spec.Mode.ReplicatedJob; rj == nil || rj.MaxConcurrent == nil || *rj.MaxConcurrent != 1 || rj.TotalCompletions == nil || *rj.TotalCompletions != 1 {
		t.Errorf("stored mode of j = %+v, want MaxConcurrent 1, TotalCompletions 1", j.Spec.Mode)
	}
	if pretty := n.MustDocker("service", "inspect", "--pretty", "x"); !strings.Contains(pretty, "Replicas:\t1") {
		t.Errorf("service inspect --pretty x has no Replicas line:\n%s", pretty)
	}
	if ls, err := n.Docker("service", "ls"); err != nil || strings.Contains(ls, "error") {
		t.Errorf("service ls: %v\n%s", err, ls)
	}

	// An update that changes nothing replaces nothing, and neither does a
	// daemon restart.
	before := serviceTasks(t, n, "x")
	if len(before) != 1 {
		t.Fatalf("tasks of x = %+v", before)
	}
	if out, err := n.Docker("service", "update", "x"); err != nil || !strings.Contains(out, "converged") {
		t.Fatalf("service update x without changes: %v\n%s", err, out)
	}
	if after := serviceTasks(t, n, "x"); len(after) != 1 || after[0].ID != before[0].ID {
		t.Fatalf("a no-op update replaced the task: before %+v, after %+v", before, after)
	}
	if us := storedService(t, n, "x").UpdateStatus; us != nil {
		t.Errorf("a no-op update left update status %+v", us)
	}
	n.Restart()
	waitServiceLs(t, n, "x", "replicated 1/1")
	if after := serviceTasks(t, n, "x"); len(after) != 1 || after[0].ID != before[0].ID {
		t.Fatalf("a restart replaced the task: before %+v, after %+v", before, after)
	}
}

// `docker service inspect` (insertDefaults) shows swarmkit's defaults for what
// the spec leaves out, as dockerd 20.10 shows them: a raw spec with nothing but an
// image.
func TestInspectDefaultsOfARawSpec(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "insertdefaults")
	spec := swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "raw"},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "busybox", Args: []string{"sleep", "1000"}}}}
	if status, msg := apiCall(t, n, "POST", "/services/create", jsonBody(t, spec)); status != http.StatusCreated {
		t.Fatalf("create = %d %s", status, msg)
	}
	var svc swarm.Service
	inspect(t, n, "service", "raw", &svc)
	s := svc.Spec
	want := map[string]bool{
		"one replica":              s.Mode.Replicated != nil && s.Mode.Replicated.Replicas != nil && *s.Mode.Replicated.Replicas == 1,
		"stop grace period 10s":    s.TaskTemplate.ContainerSpec.StopGracePeriod != nil && *s.TaskTemplate.ContainerSpec.StopGracePeriod == 10*time.Second,
		"restart any after 5s":     s.TaskTemplate.RestartPolicy != nil && s.TaskTemplate.RestartPolicy.Condition == swarm.RestartPolicyConditionAny && *s.TaskTemplate.RestartPolicy.Delay == 5*time.Second,
		"update config":            s.UpdateConfig != nil && s.UpdateConfig.Parallelism == 1 && s.UpdateConfig.Monitor == 5*time.Second && s.UpdateConfig.Order == swarm.UpdateOrderStopFirst,
		"rollback config":          s.RollbackConfig != nil && s.RollbackConfig.FailureAction == swarm.UpdateFailureActionPause,
		"resources without limits": s.TaskTemplate.Resources != nil && s.TaskTemplate.Resources.Limits == nil,
		"no endpoint spec":         s.EndpointSpec == nil,
	}
	for what, ok := range want {
		if !ok {
			data, _ := json.Marshal(s)
			t.Errorf("inspect: %s missing or wrong in %s", what, data)
		}
	}
}
