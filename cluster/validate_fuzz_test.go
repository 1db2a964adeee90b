package cluster

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/orchestrator"
)

// FuzzServiceSpec feeds arbitrary services/create and services/update bodies
// through what the API does with them (decode, fill dockerd's defaults,
// validate): a spec is refused with an invalid-parameter error (a 400), or
// with dockerd's 500 where dockerd answers one (a malformed constraint), or
// accepted within shoal's bounds, never a panic.
func FuzzServiceSpec(f *testing.F) {
	for _, seed := range []string{
		`{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"busybox","Args":["sleep","1"]}}}`,
		`{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"UPPER::bad@@"}}}`,
		`{"Name":"j","Mode":{"ReplicatedJob":{"MaxConcurrent":2,"TotalCompletions":18446744073709551615}},"TaskTemplate":{"ContainerSpec":{"Image":"busybox"}}}`,
		`{"Name":"w","Mode":{"Replicated":{"Replicas":100000000}},"TaskTemplate":{"ContainerSpec":{"Image":"busybox"}}}`,
		`{"Name":"g","Mode":{"Global":{}},"TaskTemplate":{"ContainerSpec":{"Image":"busybox","Mounts":[{"Type":"bind","Source":"/a/../b","Target":"/x"}]}}}`,
		`{"Name":"p","TaskTemplate":{"ContainerSpec":{"Image":"busybox"},"Placement":{"Constraints":["node.role==manager","x"]},"Resources":{"Limits":{"MemoryBytes":1}}},"EndpointSpec":{"Ports":[{"TargetPort":80,"PublishedPort":80,"Protocol":"sctp"}]}}`,
		`{"Name":"u","TaskTemplate":{"ContainerSpec":{"Image":"busybox"},"RestartPolicy":{"Condition":"bogus","Delay":-1}},"UpdateConfig":{"Parallelism":1,"FailureAction":"x","MaxFailureRatio":2}}`,
		`{"Name":"","TaskTemplate":{}}`, `null`, `[]`, `{"Name":"a-b"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var spec swarm.ServiceSpec
		if json.Unmarshal(body, &spec) != nil {
			return // the API's 400 for a body that is not a spec
		}
		spec = orchestrator.SpecDefaults(spec)
		err := validateServiceSpec(&spec)
		if err != nil {
			var ip interface{ InvalidParameter() bool }
			if !errors.As(err, &ip) && !errors.As(err, new(unknownError)) {
				t.Fatalf("spec %s refused with %T %v, not an invalid parameter", body, err, err)
			}
			return
		}
		if r := spec.Mode.Replicated; r != nil && r.Replicas != nil && *r.Replicas > orchestrator.MaxReplicas {
			t.Fatalf("spec %s accepted with %d replicas", body, *r.Replicas)
		}
		data, err := json.Marshal(spec)
		if err != nil {
			t.Fatalf("accepted spec %s does not encode: %v", body, err)
		}
		if len(data) > MaxSpecBytes {
			t.Fatalf("accepted spec of %d bytes", len(data))
		}
		_ = orchestrator.TaskDefaults(spec.TaskTemplate)
	})
}
