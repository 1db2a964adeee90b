package compose

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
)

// applyDeploy sets what `deploy:` (and the service-level `restart:` and
// `scale:`) say: mode, resources, restart, update and rollback, placement.
func applyDeploy(spec *swarm.ServiceSpec, svc types.ServiceConfig) error {
	d := svc.Deploy
	if d == nil {
		d = &types.DeployConfig{}
	}
	for k, v := range d.Labels {
		spec.Labels[k] = v
	}
	mode, err := serviceMode(d.Mode, svc)
	if err != nil {
		return err
	}
	spec.Mode = mode

	tt := &spec.TaskTemplate
	tt.Resources = resources(d.Resources)
	if tt.RestartPolicy, err = restartCondition(svc.Restart); err != nil {
		return err
	}
	if rp := d.RestartPolicy; rp != nil {
		tt.RestartPolicy = &swarm.RestartPolicy{
			Condition:   swarm.RestartPolicyCondition(rp.Condition),
			Delay:       (*time.Duration)(rp.Delay),
			MaxAttempts: rp.MaxAttempts,
			Window:      (*time.Duration)(rp.Window),
		}
	}
	pl := d.Placement
	if len(pl.Constraints) > 0 || len(pl.Preferences) > 0 || pl.MaxReplicas > 0 {
		tt.Placement = &swarm.Placement{Constraints: pl.Constraints, MaxReplicas: pl.MaxReplicas}
		for _, pref := range pl.Preferences {
			tt.Placement.Preferences = append(tt.Placement.Preferences,
				swarm.PlacementPreference{Spread: &swarm.SpreadOver{SpreadDescriptor: pref.Spread}})
		}
	}
	if svc.Logging != nil && svc.Logging.Driver != "" {
		tt.LogDriver = &swarm.Driver{Name: svc.Logging.Driver, Options: svc.Logging.Options}
	}
	spec.UpdateConfig = updateConfig(d.UpdateConfig)
	spec.RollbackConfig = updateConfig(d.RollbackConfig)
	return nil
}

func serviceMode(mode string, svc types.ServiceConfig) (swarm.ServiceMode, error) {
	switch mode {
	case "global":
		return swarm.ServiceMode{Global: &swarm.GlobalService{}}, nil
	case "global-job":
		return swarm.ServiceMode{GlobalJob: &swarm.GlobalJob{}}, nil
	case "replicated-job":
		n := uint64(svc.GetScale())
		return swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{MaxConcurrent: &n, TotalCompletions: &n}}, nil
	case "", "replicated":
		scale := svc.GetScale()
		if scale < 0 {
			return swarm.ServiceMode{}, fmt.Errorf("replicas %d: must not be negative", scale)
		}
		n := uint64(scale)
		return swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &n}}, nil
	}
	return swarm.ServiceMode{}, fmt.Errorf("deploy.mode %q: unknown mode", mode)
}

func resources(r types.Resources) *swarm.ResourceRequirements {
	if r.Limits == nil && r.Reservations == nil {
		return nil
	}
	out := &swarm.ResourceRequirements{}
	if l := r.Limits; l != nil {
		out.Limits = &swarm.Limit{NanoCPUs: nanoCPUs(l.NanoCPUs), MemoryBytes: int64(l.MemoryBytes), Pids: l.Pids}
	}
	if res := r.Reservations; res != nil {
		out.Reservations = &swarm.Resources{NanoCPUs: nanoCPUs(res.NanoCPUs), MemoryBytes: int64(res.MemoryBytes)}
		for _, g := range res.GenericResources {
			if d := g.DiscreteResourceSpec; d != nil {
				out.Reservations.GenericResources = append(out.Reservations.GenericResources,
					swarm.GenericResource{DiscreteResourceSpec: &swarm.DiscreteGenericResource{Kind: d.Kind, Value: d.Value}})
			}
		}
	}
	return out
}

func nanoCPUs(c types.NanoCPUs) int64 {
	// through the decimal text, so that 0.1 is 100000000 and not 99999999
	f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(c), 'f', -1, 32), 64)
	return int64(f*1e9 + 0.5)
}

// updateConfig fills a missing parallelism with 1, as the docker CLI does:
// swarm reads 0 as all tasks at once.
func updateConfig(u *types.UpdateConfig) *swarm.UpdateConfig {
	if u == nil {
		return nil
	}
	out := &swarm.UpdateConfig{
		Parallelism:     1,
		Delay:           time.Duration(u.Delay),
		FailureAction:   swarm.FailureAction(u.FailureAction),
		Monitor:         time.Duration(u.Monitor),
		MaxFailureRatio: u.MaxFailureRatio,
		Order:           swarm.UpdateOrder(u.Order),
	}
	if u.Parallelism != nil {
		out.Parallelism = *u.Parallelism
	}
	return out
}

// endpoint is the service's resolution mode and published ports.
func endpoint(svc types.ServiceConfig) (*swarm.EndpointSpec, error) {
	var mode swarm.ResolutionMode
	if svc.Deploy != nil {
		mode = swarm.ResolutionMode(svc.Deploy.EndpointMode)
	}
	var ports []swarm.PortConfig
	for _, p := range svc.Ports {
		pc := swarm.PortConfig{
			Name:        p.Name,
			Protocol:    network.IPProtocol(p.Protocol),
			TargetPort:  p.Target,
			PublishMode: swarm.PortConfigPublishMode(p.Mode),
		}
		if pc.Protocol == "" {
			pc.Protocol = network.TCP
		}
		if pc.PublishMode == "" {
			pc.PublishMode = swarm.PortConfigPublishModeIngress
		}
		if p.Published != "" {
			n, err := strconv.ParseUint(p.Published, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("port %s: published port must be a single port: %w", p.Published, err)
			}
			pc.PublishedPort = uint32(n)
		}
		ports = append(ports, pc)
	}
	if mode == "" && len(ports) == 0 {
		return nil, nil
	}
	return &swarm.EndpointSpec{Mode: mode, Ports: ports}, nil
}

func fileMode(m uint32) os.FileMode { return os.FileMode(m) }
