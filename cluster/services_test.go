package cluster

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/orchestrator"
)

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// Endpoint.Spec is empty until the service publishes a port or has virtual IPs on
// a network, then the spec's
// endpoint, kept once the ports are gone, as dockerd's allocator leaves it.
func TestEndpointSpecShown(t *testing.T) {
	vip := &swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP}
	dnsrr := &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR}
	ports := &swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP, Ports: []swarm.PortConfig{{TargetPort: 80}}}
	allocated := swarm.Endpoint{Spec: swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP}, Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: 30000}}}
	for _, c := range []struct {
		name   string
		spec   *swarm.EndpointSpec
		before swarm.Endpoint
		want   string
	}{
		{"no endpoint", nil, swarm.Endpoint{}, `{}`},
		{"vip, no ports", vip, swarm.Endpoint{}, `{}`},
		{"dnsrr, no ports", dnsrr, swarm.Endpoint{}, `{}`},
		{"ports", ports, swarm.Endpoint{}, `{"Mode":"vip","Ports":[{"Protocol":"tcp","TargetPort":80,"PublishMode":"ingress"}]}`},
		{"ports removed", vip, allocated, `{"Mode":"vip"}`},
		{"endpoint removed", nil, allocated, `{}`},
		{"vip, a network", vip, swarm.Endpoint{}, `{"Mode":"vip"}`},
		{"dnsrr, a network", dnsrr, swarm.Endpoint{}, `{}`},
	} {
		spec := orchestrator.SpecDefaults(swarm.ServiceSpec{EndpointSpec: c.spec})
		if strings.HasSuffix(c.name, "a network") {
			spec.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: "net1"}}
		}
		if got := jsonOf(t, endpointSpecShown(spec, c.before)); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

// insertDefaults fills what swarmkit's InterpolateService fills, as dockerd 20.10
// shows it, and nothing else (no endpoint spec, no limits).
func TestInsertDefaultsAsDockerd(t *testing.T) {
	spec := orchestrator.SpecDefaults(swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "a"},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "busybox"}}})
	want := `{"Name":"a","Labels":{},"TaskTemplate":{"ContainerSpec":{"Image":"busybox","StopGracePeriod":10000000000,"DNSConfig":{},"Isolation":"default"},` +
		`"Resources":{},"RestartPolicy":{"Condition":"any","Delay":5000000000,"MaxAttempts":0},"Placement":{},"ForceUpdate":0,"Runtime":"container"},` +
		`"Mode":{"Replicated":{"Replicas":1}},` +
		`"UpdateConfig":{"Parallelism":1,"FailureAction":"pause","Monitor":5000000000,"MaxFailureRatio":0,"Order":"stop-first"},` +
		`"RollbackConfig":{"Parallelism":1,"FailureAction":"pause","Monitor":5000000000,"MaxFailureRatio":0,"Order":"stop-first"}}`
	if got := jsonOf(t, withInsertDefaults(spec)); got != want {
		t.Errorf("insertDefaults:\n got %s\nwant %s", got, want)
	}
	if got := jsonOf(t, spec); got == want {
		t.Error("withInsertDefaults changed its argument's fields")
	}
}
