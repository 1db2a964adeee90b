package orchestrator

import (
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
)

// SpecDefaults returns spec with the defaults dockerd stores on create and update
// (its API-to-swarmkit conversion), compared field by field with dockerd 20.10 (see
// docs/conformance.md): labels {}, one replica, a replicated job's MaxConcurrent 1
// and TotalCompletions = MaxConcurrent, the task template's defaults (see
// TaskDefaults), an update or rollback config's failure action and order, and an
// endpoint spec's resolution mode and port protocol and publish mode. What the
// client left out stays out: a nil update config, restart policy or endpoint spec
// stays nil (inspect's insertDefaults shows those). It never changes what was set,
// and SpecDefaults(SpecDefaults(s)) equals SpecDefaults(s). Pointers that it fills
// are fresh copies: spec's own are not written to.
func SpecDefaults(spec swarm.ServiceSpec) swarm.ServiceSpec {
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	spec.Mode = modeDefaults(spec.Mode)
	spec.TaskTemplate = TaskDefaults(spec.TaskTemplate)
	spec.UpdateConfig = updateConfigDefaults(spec.UpdateConfig)
	spec.RollbackConfig = updateConfigDefaults(spec.RollbackConfig)
	if ep := spec.EndpointSpec; ep != nil {
		e := *ep
		if e.Mode == "" {
			e.Mode = swarm.ResolutionModeVIP
		}
		e.Ports = PortDefaults(e.Ports)
		spec.EndpointSpec = &e
	}
	return spec
}

// TaskDefaults returns t with the defaults dockerd stores in a task template: the
// runtime "container", the container's isolation "default", and a restart
// policy's condition "any" and MaxAttempts 0 (its delay and window stay unset).
func TaskDefaults(t swarm.TaskSpec) swarm.TaskSpec {
	if cs := t.ContainerSpec; cs != nil {
		c := *cs
		if c.Isolation == "" {
			c.Isolation = container.IsolationDefault
		}
		t.ContainerSpec = &c
		if t.Runtime == "" {
			t.Runtime = swarm.RuntimeContainer
		}
	}
	if rp := t.RestartPolicy; rp != nil {
		p := *rp
		if p.Condition == "" {
			p.Condition = swarm.RestartPolicyConditionAny
		}
		if p.MaxAttempts == nil {
			var zero uint64
			p.MaxAttempts = &zero
		}
		t.RestartPolicy = &p
	}
	return t
}

// PortDefaults returns ports with each one's protocol (tcp) and publish mode
// (ingress) filled in.
func PortDefaults(ports []swarm.PortConfig) []swarm.PortConfig {
	if ports == nil {
		return nil
	}
	out := make([]swarm.PortConfig, len(ports))
	for i, p := range ports {
		if p.Protocol == "" {
			p.Protocol = network.TCP
		}
		if p.PublishMode == "" {
			p.PublishMode = swarm.PortConfigPublishModeIngress
		}
		out[i] = p
	}
	return out
}

// modeDefaults sets a missing mode to one replica, a replicated service's missing
// count to 1, and a replicated job's MaxConcurrent to 1 and TotalCompletions to
// MaxConcurrent, as dockerd stores them.
func modeDefaults(m swarm.ServiceMode) swarm.ServiceMode {
	one := uint64(1)
	switch {
	case m.Global != nil, m.GlobalJob != nil:
	case m.ReplicatedJob != nil:
		j := *m.ReplicatedJob
		if j.MaxConcurrent == nil {
			j.MaxConcurrent = &one
		}
		if j.TotalCompletions == nil {
			total := *j.MaxConcurrent
			j.TotalCompletions = &total
		}
		m.ReplicatedJob = &j
	case m.Replicated != nil && m.Replicated.Replicas != nil:
	default:
		m.Replicated = &swarm.ReplicatedService{Replicas: &one}
	}
	return m
}

// updateConfigDefaults fills a given update or rollback config's failure action
// (pause) and order (stop-first); its parallelism, delay and monitor stay as sent.
func updateConfigDefaults(cfg *swarm.UpdateConfig) *swarm.UpdateConfig {
	if cfg == nil {
		return nil
	}
	c := *cfg
	if c.FailureAction == "" {
		c.FailureAction = swarm.UpdateFailureActionPause
	}
	if c.Order == "" {
		c.Order = swarm.UpdateOrderStopFirst
	}
	return &c
}
