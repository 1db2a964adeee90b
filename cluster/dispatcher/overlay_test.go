package dispatcher

import (
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/session"
)

// A service keeps its clients' addresses across nodes only with the label's
// value "preserve", and only when it publishes a port through the routing
// mesh.
func TestServiceEndpointKeepsClientSource(t *testing.T) {
	ingress := []swarm.PortConfig{{Protocol: "tcp", PublishedPort: 8080, TargetPort: 80, PublishMode: swarm.PortConfigPublishModeIngress}}
	host := []swarm.PortConfig{{Protocol: "tcp", PublishedPort: 8080, TargetPort: 80, PublishMode: swarm.PortConfigPublishModeHost}}
	for _, c := range []struct {
		label string
		ports []swarm.PortConfig
		want  bool
	}{
		{"preserve", ingress, true},
		{"", ingress, false},
		{"masquerade", ingress, false},
		{"preserve", host, false},
		{"preserve", nil, false},
	} {
		s := &swarm.Service{ID: "s"}
		if c.label != "" {
			s.Spec.Labels = map[string]string{session.ClientSourceLabel: c.label}
		}
		s.Endpoint.Ports = c.ports
		if ep, _ := serviceEndpoint(s); ep.KeepClientSource != c.want {
			t.Errorf("label %q, ports %v: KeepClientSource %v, want %v", c.label, c.ports, ep.KeepClientSource, c.want)
		}
	}
}
