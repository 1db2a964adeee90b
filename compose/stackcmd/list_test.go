package stackcmd

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/engineapi/client"
)

// fakeLister answers with fixed objects; filters are the caller's business.
type fakeLister struct {
	services []swarm.Service
	tasks    []swarm.Task
	nodes    []swarm.Node
}

func (f fakeLister) Services(context.Context, client.Filters) ([]swarm.Service, error) {
	return f.services, nil
}

func (f fakeLister) ServicesWithStatus(context.Context, client.Filters) ([]swarm.Service, error) {
	return f.services, nil
}

func (f fakeLister) Tasks(context.Context, client.Filters) ([]swarm.Task, error) { return f.tasks, nil }
func (f fakeLister) Nodes(context.Context, client.Filters) ([]swarm.Node, error) { return f.nodes, nil }

func ptr[T any](v T) *T { return &v }

var shop = fakeLister{
	services: []swarm.Service{
		{ID: "wwwwwwwwwwwwwwwwwwww", Spec: swarm.ServiceSpec{
			Annotations:  swarm.Annotations{Name: "shop_web", Labels: map[string]string{"com.docker.stack.namespace": "shop"}},
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "nginx:1.27@sha256:0123456789012345678901234567890123456789012345678901234567890123"}},
			Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: ptr(uint64(2))}}},
			Endpoint:      swarm.Endpoint{Ports: []swarm.PortConfig{{Protocol: network.TCP, TargetPort: 80, PublishedPort: 8080, PublishMode: swarm.PortConfigPublishModeIngress}}},
			ServiceStatus: &swarm.ServiceStatus{RunningTasks: 1, DesiredTasks: 2}},
		{ID: "aaaaaaaaaaaaaaaaaaaa", Spec: swarm.ServiceSpec{
			Annotations:  swarm.Annotations{Name: "shop_agent", Labels: map[string]string{"com.docker.stack.namespace": "shop"}},
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "busybox"}},
			Mode:         swarm.ServiceMode{Global: &swarm.GlobalService{}}},
			ServiceStatus: &swarm.ServiceStatus{RunningTasks: 1, DesiredTasks: 1}},
		{ID: "ooooooooooooooooooo", Spec: swarm.ServiceSpec{
			Annotations: swarm.Annotations{Name: "other_db", Labels: map[string]string{"com.docker.stack.namespace": "other"}}}},
	},
}

func TestListStacks(t *testing.T) {
	var b bytes.Buffer
	if err := listStacks(context.Background(), shop, &b); err != nil {
		t.Fatal(err)
	}
	want := "NAME      SERVICES\nother     1\nshop      2\n"
	if b.String() != want {
		t.Errorf("stack ls:\n%s\nwant\n%s", b.String(), want)
	}
}

func TestListServices(t *testing.T) {
	var out, errOut bytes.Buffer
	f := shop
	f.services = f.services[:2]
	if err := listServices(context.Background(), f, Options{name: "shop"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	want := "ID             NAME         MODE         REPLICAS   IMAGE        PORTS\n" +
		"aaaaaaaaaaaa   shop_agent   global       1/1        busybox      \n" +
		"wwwwwwwwwwww   shop_web     replicated   1/2        nginx:1.27   *:8080->80/tcp\n"
	if out.String() != want {
		t.Errorf("stack services:\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	if err := listServices(context.Background(), fakeLister{}, Options{name: "none"}, &out, &errOut); err != nil || out.Len() != 0 || errOut.String() != "Nothing found in stack: none\n" {
		t.Errorf("services of an empty stack: %v, %q, %q", err, out.String(), errOut.String())
	}
}

// Tasks are by service and slot, a slot's newest first and its earlier ones
// indented; long errors are cut unless --no-trunc.
func TestWriteTasks(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	task := func(id string, slot int, created time.Duration, state swarm.TaskState, errText string) swarm.Task {
		return swarm.Task{ID: id, ServiceID: "wwwwwwwwwwwwwwwwwwww", Slot: slot, NodeID: "n1",
			Meta:         swarm.Meta{CreatedAt: now.Add(-created)},
			Spec:         swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "nginx:1.27@sha256:0123456789012345678901234567890123456789012345678901234567890123"}},
			DesiredState: swarm.TaskStateRunning,
			Status:       swarm.TaskStatus{State: state, Timestamp: now.Add(-created), Err: errText}}
	}
	tasks := []swarm.Task{
		task("t2aaaaaaaaaaaaaa", 2, time.Minute, swarm.TaskStateRunning, ""),
		task("t1oldaaaaaaaaaaa", 1, 2*time.Hour, swarm.TaskStateFailed, "task: non-zero exit (1): the process failed"),
		task("t1newaaaaaaaaaaa", 1, 10*time.Second, swarm.TaskStateRunning, ""),
	}
	nodes := []swarm.Node{{ID: "n1", Description: swarm.NodeDescription{Hostname: "node-1"}}}
	var b bytes.Buffer
	if err := writeTasks(&b, tasks, shop.services, nodes, Options{}, now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := []string{
		"ID             NAME             IMAGE        NODE      DESIRED STATE   CURRENT STATE                ERROR                              PORTS",
		"t1newaaaaaaa   shop_web.1       nginx:1.27   node-1    Running         Running 10 seconds ago",
		`t1oldaaaaaaa    \_ shop_web.1   nginx:1.27   node-1    Running         Failed 2 hours ago           "task: non-zero exit (1): the …"`,
		"t2aaaaaaaaaa   shop_web.2       nginx:1.27   node-1    Running         Running about a minute ago",
	}
	for i := range want {
		if i >= len(lines) || strings.TrimRight(lines[i], " ") != want[i] {
			t.Errorf("stack ps:\n%s\nwant\n%s", b.String(), strings.Join(want, "\n"))
			break
		}
	}
	b.Reset()
	if err := writeTasks(&b, tasks, shop.services, nodes, Options{quiet: true}, now); err != nil || b.String() != "t1newaaaaaaa\nt1oldaaaaaaa\nt2aaaaaaaaaa\n" {
		t.Errorf("stack ps -q: %v %q", err, b.String())
	}
	b.Reset()
	if err := writeTasks(&b, tasks, shop.services, nodes, Options{quiet: true, noTrunc: true}, now); err != nil || b.String() != "t1newaaaaaaaaaaa\nt1oldaaaaaaaaaaa\nt2aaaaaaaaaaaaaa\n" {
		t.Errorf("stack ps -q --no-trunc: %v %q", err, b.String())
	}
}

func TestServicePorts(t *testing.T) {
	port := func(proto network.IPProtocol, pub, tgt uint32) swarm.PortConfig {
		return swarm.PortConfig{Protocol: proto, PublishedPort: pub, TargetPort: tgt, PublishMode: swarm.PortConfigPublishModeIngress}
	}
	tcp, udp := network.TCP, network.UDP
	tests := []struct {
		name  string
		ports []swarm.PortConfig
		want  string
	}{
		{"one", []swarm.PortConfig{port(tcp, 8080, 80)}, "*:8080->80/tcp"},
		{"consecutive on both sides", []swarm.PortConfig{port(tcp, 81, 81), port(tcp, 80, 80)}, "*:80-81->80-81/tcp"},
		{"several onto one target", []swarm.PortConfig{port(tcp, 80, 80), port(tcp, 81, 80)}, "*:80-81->80/tcp"},
		{"a range, then back to its start", []swarm.PortConfig{port(tcp, 80, 80), port(tcp, 81, 81), port(tcp, 82, 80)}, "*:80-81->80-81/tcp, *:82->80/tcp"},
		{"apart", []swarm.PortConfig{port(tcp, 80, 80), port(tcp, 90, 90)}, "*:80->80/tcp, *:90->90/tcp"},
		{"protocols apart", []swarm.PortConfig{port(udp, 53, 53), port(tcp, 53, 53)}, "*:53->53/tcp, *:53->53/udp"},
		{"host mode not shown", []swarm.PortConfig{{Protocol: tcp, PublishedPort: 80, TargetPort: 80, PublishMode: swarm.PortConfigPublishModeHost}}, ""},
	}
	for _, tt := range tests {
		if got := servicePorts(tt.ports); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
