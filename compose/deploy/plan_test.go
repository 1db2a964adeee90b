package deploy

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/compose"
)

func replicas(n uint64) swarm.ServiceMode {
	return swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &n}}
}

func webSpec(n uint64) swarm.ServiceSpec {
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "s_web", Labels: map[string]string{compose.NamespaceLabel: "s"}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: "busybox", Env: []string{"A=1"},
				Secrets: []*swarm.SecretReference{{SecretName: "s_token"}}},
			Networks: []swarm.NetworkAttachmentConfig{{Target: "s_default", Aliases: []string{"web"}}},
		},
		Mode: replicas(n),
	}
}

func stack() *compose.Stack {
	return &compose.Stack{
		Name:     "s",
		Services: []compose.Service{{Name: "web", Spec: webSpec(2)}},
		Networks: []compose.Network{{Key: "default", Create: network.CreateRequest{Name: "s_default"}}},
		Secrets:  []swarm.SecretSpec{{Annotations: swarm.Annotations{Name: "s_token"}, Data: []byte("x")}},
		Configs:  []swarm.ConfigSpec{{Annotations: swarm.Annotations{Name: "s_conf"}, Data: []byte("c")}},
	}
}

// deployed is the state after the stack was deployed with n replicas: the
// daemon stores targets by ID and fills in its defaults.
func deployed(n uint64) State {
	stored := webSpec(n)
	stored.TaskTemplate.Runtime = swarm.RuntimeContainer
	cs := *stored.TaskTemplate.ContainerSpec
	cs.Isolation = container.IsolationDefault
	cs.Secrets = []*swarm.SecretReference{{SecretName: "s_token", SecretID: "sec1"}}
	stored.TaskTemplate.ContainerSpec = &cs
	stored.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: "net1", Aliases: []string{"web"}}}
	return State{
		Services: map[string]swarm.Service{"s_web": {ID: "svc1", Spec: stored}, "s_old": {ID: "svc2"}},
		Networks: map[string]network.Summary{"s_default": {Network: network.Network{ID: "net1", Name: "s_default"}}},
		Secrets:  map[string]swarm.Secret{"s_token": {ID: "sec1", Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: "s_token"}}}},
		Configs:  map[string]swarm.Config{"s_conf": {ID: "cfg1", Spec: swarm.ConfigSpec{Annotations: swarm.Annotations{Name: "s_conf"}, Data: []byte("c")}}},
	}
}

func TestMakePlan(t *testing.T) {
	empty := State{}
	changedConfig := deployed(2)
	changedConfig.Configs["s_conf"] = swarm.Config{ID: "cfg1", Spec: swarm.ConfigSpec{Annotations: swarm.Annotations{Name: "s_conf"}, Data: []byte("old")}}
	tests := []struct {
		name    string
		cur     State
		prune   bool
		want    string
		wantErr string
	}{
		{"fresh", empty, false, "network s_default: create\nsecret s_token: create\nconfig s_conf: create\nservice s_web: create\n", ""},
		{"same files", deployed(2), false, "network s_default: unchanged\nsecret s_token: unchanged (its data is checked by the daemon)\nconfig s_conf: unchanged\nservice s_web: unchanged\n", ""},
		{"replicas changed, pruned", deployed(3), true, "network s_default: unchanged\nsecret s_token: unchanged (its data is checked by the daemon)\nconfig s_conf: unchanged\n" +
			"service s_web: update\n    ~ Mode.Replicated.Replicas: 3 -> 2\nservice s_old: remove (--prune)\n", ""},
		{"config data changed", changedConfig, false, "", "config s_conf: its data changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := MakePlan(stack(), tt.cur, tt.prune)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("MakePlan = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			if err := p.Write(&b); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("plan:\n%s\nwant:\n%s", b.String(), tt.want)
			}
		})
	}
}

// A stack naming an external network or secret that does not exist is
// refused before anything is written.
func TestMakePlanMissingExternal(t *testing.T) {
	st := stack()
	st.Secrets = nil
	st.Networks = append(st.Networks, compose.Network{Key: "shared", External: true, Create: network.CreateRequest{Name: "shared"}})
	_, err := MakePlan(st, State{}, false)
	for _, want := range []string{"network shared is external but does not exist", "service web: secret s_token is external but does not exist"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("MakePlan = %v, want %q", err, want)
		}
	}
}

func TestReady(t *testing.T) {
	task := func(desired, state swarm.TaskState) swarm.Task {
		return swarm.Task{DesiredState: desired, Status: swarm.TaskStatus{State: state}}
	}
	run, starting, complete := swarm.TaskStateRunning, swarm.TaskStateStarting, swarm.TaskStateComplete
	tests := []struct {
		name      string
		tasks     []swarm.Task
		mode      swarm.ServiceMode
		completed bool
		want      bool
	}{
		{"no tasks yet", nil, replicas(1), false, false},
		{"one of two running", []swarm.Task{task(run, run), task(run, starting)}, replicas(2), false, false},
		{"both running (healthy)", []swarm.Task{task(run, run), task(run, run)}, replicas(2), false, true},
		{"global, all running", []swarm.Task{task(run, run), task(run, run)}, swarm.ServiceMode{Global: &swarm.GlobalService{}}, false, true},
		{"global, one starting", []swarm.Task{task(run, run), task(run, starting)}, swarm.ServiceMode{Global: &swarm.GlobalService{}}, false, false},
		{"job completed", []swarm.Task{task(complete, complete)}, swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{}}, true, true},
		{"job running", []swarm.Task{task(complete, run)}, swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{}}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, why := ready(tt.tasks, tt.mode, tt.completed); got != tt.want {
				t.Errorf("ready = %v (%s), want %v", got, why, tt.want)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	got, err := Diff(webSpec(1), func() swarm.ServiceSpec {
		s := webSpec(1)
		s.TaskTemplate.ContainerSpec.Env = []string{"A=2", "B=1"}
		s.TaskTemplate.ContainerSpec.Image = ""
		return s
	}())
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, f := range got {
		lines = append(lines, f.String())
	}
	want := `~ TaskTemplate.ContainerSpec.Env[0]: "A=1" -> "A=2"|+ TaskTemplate.ContainerSpec.Env[1]: "B=1"|- TaskTemplate.ContainerSpec.Image: "busybox"`
	if strings.Join(lines, "|") != want {
		t.Errorf("Diff:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.ReplaceAll(want, "|", "\n"))
	}
}

// The parts of update_config, restart_policy and ports a file leaves out
// are what the daemon filled in: an unchanged file is no update.
func TestPlanKeepsDaemonDefaults(t *testing.T) {
	st := stack()
	spec := &st.Services[0].Spec
	spec.UpdateConfig = &swarm.UpdateConfig{Parallelism: 2}
	spec.RollbackConfig = &swarm.UpdateConfig{Parallelism: 1, Order: swarm.UpdateOrderStartFirst}
	spec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionOnFailure}
	spec.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, Protocol: network.TCP, PublishMode: swarm.PortConfigPublishModeIngress}}}

	cur := deployed(2)
	svc := cur.Services["s_web"]
	stored := svc.Spec
	stored.UpdateConfig = &swarm.UpdateConfig{Parallelism: 2, FailureAction: swarm.UpdateFailureActionPause, Order: swarm.UpdateOrderStopFirst}
	stored.RollbackConfig = &swarm.UpdateConfig{Parallelism: 1, FailureAction: swarm.UpdateFailureActionPause, Order: swarm.UpdateOrderStartFirst}
	zero := uint64(0)
	stored.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionOnFailure, MaxAttempts: &zero}
	stored.EndpointSpec = &swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP, Ports: spec.EndpointSpec.Ports}
	svc.Spec = stored
	cur.Services["s_web"] = svc

	p, err := MakePlan(st, cur, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Changes {
		if c.Kind == "service" && c.Action != Unchanged {
			t.Errorf("service %s: %s %v, want unchanged", c.Name, c.Action, c.Fields)
		}
	}
	if spec.UpdateConfig.FailureAction != "" {
		t.Errorf("planning wrote to the stack's spec: %+v", spec.UpdateConfig)
	}
}

// With --with-registry-auth an unchanged service is sent again, for its
// credentials; a dry run says so.
func TestSendCredentials(t *testing.T) {
	p, err := MakePlan(stack(), deployed(2), false)
	if err != nil {
		t.Fatal(err)
	}
	p.SendCredentials()
	var b strings.Builder
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "service s_web: update (sends the registry credentials again)\n") ||
		!strings.Contains(b.String(), "network s_default: unchanged\n") {
		t.Errorf("plan:\n%s", b.String())
	}
}
