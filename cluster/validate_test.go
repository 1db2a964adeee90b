package cluster

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/orchestrator"
)

func specWith(change func(*swarm.ServiceSpec)) swarm.ServiceSpec {
	spec := swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "web"},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "busybox"}}}
	change(&spec)
	return orchestrator.SpecDefaults(spec)
}

func count(n uint64) *uint64 { return &n }

// Each bound and each refused value answers 400 naming the field and, for a
// bound, the limit; the values around them pass.
func TestValidateServiceSpec(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*swarm.ServiceSpec)
		want   string // "" = valid
	}{
		{"plain", func(*swarm.ServiceSpec) {}, ""},
		{"replicas at the limit", func(s *swarm.ServiceSpec) {
			s.Mode.Replicated = &swarm.ReplicatedService{Replicas: count(orchestrator.MaxReplicas)}
		}, ""},
		{"replicas 2^64-1", func(s *swarm.ServiceSpec) {
			s.Mode.Replicated = &swarm.ReplicatedService{Replicas: count(1<<64 - 1)}
		}, "ServiceSpec: replicas 18446744073709551615 is more than shoal's limit of 10000 tasks per service"},
		{"replicas 100000000", func(s *swarm.ServiceSpec) {
			s.Mode.Replicated = &swarm.ReplicatedService{Replicas: count(100000000)}
		}, "replicas 100000000 is more than shoal's limit of 10000"},
		{"job completions", func(s *swarm.ServiceSpec) {
			s.Mode.ReplicatedJob = &swarm.ReplicatedJob{TotalCompletions: count(10001)}
		}, "TotalCompletions 10001 is more than shoal's limit of 10000"},
		{"job concurrency", func(s *swarm.ServiceSpec) {
			s.Mode.ReplicatedJob = &swarm.ReplicatedJob{MaxConcurrent: count(20000)}
		}, "is more than shoal's limit of 10000"},
		{"200 KiB environment", func(s *swarm.ServiceSpec) {
			s.TaskTemplate.ContainerSpec.Env = []string{"A=" + strings.Repeat("a", 200<<10)}
		}, ""},
		{"2 MB environment", func(s *swarm.ServiceSpec) {
			s.TaskTemplate.ContainerSpec.Env = []string{"A=" + strings.Repeat("a", 2<<20)}
		}, "more than shoal's limit of 262144 bytes (256 KiB)"},
		{"big labels", func(s *swarm.ServiceSpec) {
			s.Labels = map[string]string{"l": strings.Repeat("a", 300<<10)}
		}, "more than shoal's limit of 262144 bytes"},
		{"replicas times spec", func(s *swarm.ServiceSpec) {
			s.Mode.Replicated = &swarm.ReplicatedService{Replicas: count(1000)}
			s.TaskTemplate.ContainerSpec.Args = []string{strings.Repeat("a", 100<<10)}
		}, "more than shoal's limit of 67108864 bytes (64 MiB) per service"},
		{"malformed constraint", func(s *swarm.ServiceSpec) {
			s.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.role=manager"}}
		}, "rpc error: code = Unknown desc = constraint expected one operator from ==, !="},
		{"constraint on no attribute", func(s *swarm.ServiceSpec) {
			s.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.nonsense==x"}}
		}, `rpc error: code = InvalidArgument desc = invalid constraint "node.nonsense==x"`},
		{"invalid reference", func(s *swarm.ServiceSpec) { s.TaskTemplate.ContainerSpec.Image = "UPPER::bad@@" },
			`rpc error: code = InvalidArgument desc = ContainerSpec: "UPPER::bad@@" is not a valid repository/tag`},
		{"upper-case repository", func(s *swarm.ServiceSpec) { s.TaskTemplate.ContainerSpec.Image = "Busybox" },
			`"Busybox" is not a valid repository/tag`},
		{"short digest", func(s *swarm.ServiceSpec) { s.TaskTemplate.ContainerSpec.Image = "busybox@sha256:abc" },
			`"busybox@sha256:abc" is not a valid repository/tag`},
		{"registry, path, tag", func(s *swarm.ServiceSpec) {
			s.TaskTemplate.ContainerSpec.Image = "localhost:5000/a/b:1.2"
		}, ""},
		{"digest", func(s *swarm.ServiceSpec) {
			s.TaskTemplate.ContainerSpec.Image = "busybox:1.36@sha256:" + strings.Repeat("ab", 32)
		}, ""},
		{"volume ..", func(s *swarm.ServiceSpec) {
			s.TaskTemplate.ContainerSpec.Mounts = []mount.Mount{{Type: mount.TypeVolume, Source: "../x", Target: "/x"}}
		}, `ContainerSpec: invalid volume mount source "../x": includes invalid characters for a local volume name`},
		{"volume with a slash", func(s *swarm.ServiceSpec) {
			s.TaskTemplate.ContainerSpec.Mounts = []mount.Mount{{Type: mount.TypeVolume, Source: "a/b", Target: "/x"}}
		}, `invalid volume mount source "a/b"`},
		{"named and anonymous volumes", func(s *swarm.ServiceSpec) {
			s.TaskTemplate.ContainerSpec.Mounts = []mount.Mount{{Type: mount.TypeVolume, Source: "data.v1", Target: "/x"}, {Type: mount.TypeVolume, Target: "/y"}}
		}, ""},
		{"bind ..", func(s *swarm.ServiceSpec) {
			s.TaskTemplate.ContainerSpec.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: "/tmp/../etc", Target: "/x"}}
		}, `ContainerSpec: invalid bind mount source, must not contain "..": /tmp/../etc`},
		{"bind ending in ..", func(s *swarm.ServiceSpec) {
			s.TaskTemplate.ContainerSpec.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: "/tmp/..", Target: "/x"}}
		}, `must not contain ".."`},
		{"bind with dots in a name", func(s *swarm.ServiceSpec) {
			s.TaskTemplate.ContainerSpec.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: "/srv/..data", Target: "/x"}}
		}, ""},
	} {
		spec := specWith(c.change)
		err := validateServiceSpec(&spec)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && err == nil:
			t.Errorf("%s: accepted", c.name)
		case c.want != "" && !strings.Contains(err.Error(), c.want):
			t.Errorf("%s: %q, want it to contain %q", c.name, err, c.want)
		case c.want != "" && strings.Contains(c.want, "code = Unknown") && isInvalid(err):
			t.Errorf("%s: %v is an InvalidParameter error; dockerd answers 500", c.name, err)
		case c.want != "" && !strings.Contains(c.want, "code = Unknown") && !isInvalid(err):
			t.Errorf("%s: %v is not an InvalidParameter error", c.name, err)
		}
	}
}

func isInvalid(err error) bool {
	ip, ok := err.(interface{ InvalidParameter() bool })
	return ok && ip.InvalidParameter()
}
