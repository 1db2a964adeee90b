package orchestrator

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

func u64(n uint64) *uint64 { return &n }

// SpecDefaults stores what dockerd 20.10 stored for the same request bodies
// (docs/conformance.md), and leaves out what dockerd leaves out.
func TestSpecDefaultsAsDockerd(t *testing.T) {
	image := &swarm.ContainerSpec{Image: "busybox"}
	for _, c := range []struct {
		name string
		in   swarm.ServiceSpec
		want string
	}{
		{"no mode", swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{ContainerSpec: image}},
			`{"Labels":{},"TaskTemplate":{"ContainerSpec":{"Image":"busybox","Isolation":"default"},"ForceUpdate":0,"Runtime":"container"},"Mode":{"Replicated":{"Replicas":1}}}`},
		{"replicated without a count", swarm.ServiceSpec{Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{}}},
			`{"Labels":{},"TaskTemplate":{"ForceUpdate":0},"Mode":{"Replicated":{"Replicas":1}}}`},
		{"replicated job", swarm.ServiceSpec{Mode: swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{}}},
			`{"Labels":{},"TaskTemplate":{"ForceUpdate":0},"Mode":{"ReplicatedJob":{"MaxConcurrent":1,"TotalCompletions":1}}}`},
		{"job with MaxConcurrent", swarm.ServiceSpec{Mode: swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{MaxConcurrent: u64(3)}}},
			`{"Labels":{},"TaskTemplate":{"ForceUpdate":0},"Mode":{"ReplicatedJob":{"MaxConcurrent":3,"TotalCompletions":3}}}`},
		{"job with TotalCompletions", swarm.ServiceSpec{Mode: swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{TotalCompletions: u64(3)}}},
			`{"Labels":{},"TaskTemplate":{"ForceUpdate":0},"Mode":{"ReplicatedJob":{"MaxConcurrent":1,"TotalCompletions":3}}}`},
		{"global", swarm.ServiceSpec{Mode: swarm.ServiceMode{Global: &swarm.GlobalService{}}},
			`{"Labels":{},"TaskTemplate":{"ForceUpdate":0},"Mode":{"Global":{}}}`},
		{"empty configs", swarm.ServiceSpec{
			TaskTemplate:   swarm.TaskSpec{RestartPolicy: &swarm.RestartPolicy{}, Resources: &swarm.ResourceRequirements{}, Placement: &swarm.Placement{}},
			UpdateConfig:   &swarm.UpdateConfig{},
			RollbackConfig: &swarm.UpdateConfig{},
			EndpointSpec:   &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80}}},
		}, `{"Labels":{},"TaskTemplate":{"Resources":{},"RestartPolicy":{"Condition":"any","MaxAttempts":0},"Placement":{},"ForceUpdate":0},` +
			`"Mode":{"Replicated":{"Replicas":1}},"UpdateConfig":{"Parallelism":0,"FailureAction":"pause","MaxFailureRatio":0,"Order":"stop-first"},` +
			`"RollbackConfig":{"Parallelism":0,"FailureAction":"pause","MaxFailureRatio":0,"Order":"stop-first"},` +
			`"EndpointSpec":{"Mode":"vip","Ports":[{"Protocol":"tcp","TargetPort":80,"PublishMode":"ingress"}]}}`},
	} {
		got := SpecDefaults(c.in)
		data, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, data, c.want)
		}
		again, _ := json.Marshal(SpecDefaults(got))
		if string(again) != string(data) {
			t.Errorf("%s: not idempotent:\n%s\n%s", c.name, data, again)
		}
	}
}

// What was set stays, and the caller's values are not written to.
func TestSpecDefaultsKeepsWhatWasSet(t *testing.T) {
	delay := 3 * time.Second
	in := swarm.ServiceSpec{
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: u64(0)}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: "busybox"},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone, Delay: &delay, MaxAttempts: u64(4)},
		},
		UpdateConfig: &swarm.UpdateConfig{Parallelism: 2, FailureAction: swarm.UpdateFailureActionRollback, Order: swarm.UpdateOrderStartFirst},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}
	before, _ := json.Marshal(in)
	out := SpecDefaults(in)
	if after, _ := json.Marshal(in); string(after) != string(before) {
		t.Fatalf("SpecDefaults changed its argument:\n%s\n%s", before, after)
	}
	if *out.Mode.Replicated.Replicas != 0 || out.TaskTemplate.RestartPolicy.Condition != swarm.RestartPolicyConditionNone ||
		*out.TaskTemplate.RestartPolicy.MaxAttempts != 4 || out.UpdateConfig.Order != swarm.UpdateOrderStartFirst ||
		out.UpdateConfig.FailureAction != swarm.UpdateFailureActionRollback || out.EndpointSpec.Mode != swarm.ResolutionModeDNSRR {
		out, _ := json.Marshal(out)
		t.Fatalf("a value that was set changed: %s", out)
	}
}

// A task made from a template stored without the defaults (by an older shoal) is
// up to date with the same template stored with them: no rolling update.
func TestTaskWithoutStoredDefaultsIsUpToDate(t *testing.T) {
	old := swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "busybox"}, RestartPolicy: &swarm.RestartPolicy{}}
	svc := &swarm.Service{ID: "s", Spec: SpecDefaults(swarm.ServiceSpec{TaskTemplate: old})}
	task := newTask(&swarm.Service{ID: "s", Spec: swarm.ServiceSpec{TaskTemplate: old}}, 1, "", time.Now())
	if !upToDate(task, svc) {
		t.Fatal("a task of the template without defaults is out of date with the template with them")
	}
	fresh := newTask(svc, 1, "", time.Now())
	if fresh.Spec.Runtime != "" || !upToDate(fresh, svc) {
		t.Fatalf("a new task: runtime %q (dockerd shows none), up to date %v", fresh.Spec.Runtime, upToDate(fresh, svc))
	}
	svc.Spec.TaskTemplate.ContainerSpec.Env = []string{"A=1"}
	if upToDate(task, svc) {
		t.Fatal("a changed template is up to date")
	}
}

func TestJobCountsAsDockerd(t *testing.T) {
	for _, c := range []struct {
		job               swarm.ReplicatedJob
		total, concurrent int
	}{
		{swarm.ReplicatedJob{}, 1, 1},
		{swarm.ReplicatedJob{MaxConcurrent: u64(3)}, 3, 3},
		{swarm.ReplicatedJob{TotalCompletions: u64(3)}, 3, 1},
		{swarm.ReplicatedJob{MaxConcurrent: u64(2), TotalCompletions: u64(5)}, 5, 2},
		{swarm.ReplicatedJob{MaxConcurrent: u64(1 << 63), TotalCompletions: u64(1<<64 - 1)}, MaxReplicas, MaxReplicas},
	} {
		total, concurrent := jobCounts(&c.job)
		if total != c.total || concurrent != c.concurrent {
			t.Errorf("jobCounts(%+v) = %d, %d; want %d, %d", c.job, total, concurrent, c.total, c.concurrent)
		}
	}
}
