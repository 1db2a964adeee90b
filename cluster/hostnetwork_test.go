package cluster

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/nodenet"
	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/store/storetest"
)

// A service names the node's predefined host (or bridge) network as dockerd's
// take it, and keeps its ID; what a task on the host network cannot have
// (another network, a routing-mesh port, a port of another number) is
// refused with the reason, and `none` as dockerd refuses it.
func TestServiceOnHostNetwork(t *testing.T) {
	s := storetest.Leader(t, "node1")
	hostID := nodenet.ID(nodenet.Host)
	ports := func(ps ...swarm.PortConfig) *swarm.EndpointSpec { return &swarm.EndpointSpec{Ports: ps} }
	for _, tc := range []struct {
		name     string
		networks []string
		endpoint *swarm.EndpointSpec
		want     []string // the spec's targets once resolved
		err      string   // a part of the refusal
	}{
		{name: "by name", networks: []string{"host"}, want: []string{hostID}},
		{name: "by ID", networks: []string{hostID}, want: []string{hostID}},
		{name: "bridge", networks: []string{"bridge"}, want: []string{nodenet.ID(nodenet.Bridge)}},
		{name: "host-mode port", networks: []string{"host"}, want: []string{hostID},
			endpoint: ports(swarm.PortConfig{TargetPort: 80, PublishedPort: 80, PublishMode: swarm.PortConfigPublishModeHost})},
		{name: "none", networks: []string{"none"}, err: "could not find the corresponding predefined swarm network"},
		{name: "twice", networks: []string{"host", hostID}, err: "duplicate network attachment"},
		{name: "with bridge", networks: []string{"host", "bridge"}, err: "cannot join other networks"},
		{name: "routing mesh", networks: []string{"host"}, endpoint: ports(swarm.PortConfig{TargetPort: 80, PublishedPort: 8080}),
			err: "cannot publish port 80 through the routing mesh"},
		{name: "other host port", networks: []string{"host"},
			endpoint: ports(swarm.PortConfig{TargetPort: 80, PublishedPort: 8080, PublishMode: swarm.PortConfigPublishModeHost}),
			err:      "cannot be published as port 8080"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := swarm.ServiceSpec{EndpointSpec: tc.endpoint}
			for _, n := range tc.networks {
				spec.TaskTemplate.Networks = append(spec.TaskTemplate.Networks, swarm.NetworkAttachmentConfig{Target: n})
			}
			err := s.View(func(tx store.ReadTx) error { return resolveNetworks(tx, &spec) })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("networks %v: got %v, want an error with %q", tc.networks, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, na := range spec.TaskTemplate.Networks {
				got = append(got, na.Target)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("targets %v, want %v", got, tc.want)
			}
			if n := serviceNetworks(spec); len(n) != 0 {
				t.Fatalf("swarm networks of the spec: %v, want none (no VIPs, no addresses)", n)
			}
		})
	}
}
