package cluster

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/orchestrator"
	"github.com/shoal-project/shoal/cluster/scheduler"
)

// validName is swarmkit's rule for service names: a DNS name component.
var validName = regexp.MustCompile(`^[a-zA-Z0-9](?:[-_a-zA-Z0-9]{0,61}[a-zA-Z0-9])?$`)

// validVolumeName is the local volume driver's rule for volume names (Docker's).
var validVolumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// minMemory is the smallest memory limit a task may have (swarmkit's).
const minMemory = 4 << 20

// validateServiceSpec refuses a spec Docker would refuse, naming the field, and
// what shoal bounds (see limits.go). It changes nothing.
func validateServiceSpec(spec *swarm.ServiceSpec) error {
	if !validName.MatchString(spec.Name) {
		return errInvalidf("rpc error: code = InvalidArgument desc = name must be valid as a DNS name component: %q", spec.Name)
	}
	tt := spec.TaskTemplate
	if tt.PluginSpec != nil || tt.NetworkAttachmentSpec != nil {
		return errInvalidf("rpc error: code = InvalidArgument desc = TaskSpec: only container tasks are supported")
	}
	if err := validateContainerSpec(tt.ContainerSpec); err != nil {
		return err
	}
	if err := validateResources(tt.Resources); err != nil {
		return err
	}
	if err := validateRestartPolicy(tt.RestartPolicy); err != nil {
		return err
	}
	if err := validatePlacement(tt.Placement); err != nil {
		return err
	}
	if err := validateMode(spec.Mode); err != nil {
		return err
	}
	if err := validateUpdateConfig("update", spec.UpdateConfig); err != nil {
		return err
	}
	if err := validateUpdateConfig("rollback", spec.RollbackConfig); err != nil {
		return err
	}
	if err := validateEndpoint(spec.EndpointSpec); err != nil {
		return err
	}
	return validateWeight(spec)
}

func validateContainerSpec(cs *swarm.ContainerSpec) error {
	if cs == nil {
		return errInvalidf("mismatched Runtime and *Spec fields")
	}
	if strings.TrimSpace(cs.Image) == "" {
		return errInvalidf("rpc error: code = InvalidArgument desc = ContainerSpec: image reference must be provided")
	}
	if _, err := reference.ParseNormalizedNamed(cs.Image); err != nil {
		return errInvalidf("rpc error: code = InvalidArgument desc = ContainerSpec: %q is not a valid repository/tag", cs.Image)
	}
	if cs.TTY {
		// A task's terminal would be held by the daemon, and lost when it restarts
		// while the task runs on (see docs/design.md): refused up front rather than
		// a task rejected over and over.
		return errInvalidf("rpc error: code = InvalidArgument desc = ContainerSpec: a TTY for a task's main process (--tty) is not supported by shoal; docker exec -t gives one to a running task")
	}
	if err := validateMounts(cs.Mounts); err != nil {
		return err
	}
	if cs.StopGracePeriod != nil && *cs.StopGracePeriod < 0 {
		return errInvalidf("rpc error: code = InvalidArgument desc = ContainerSpec: StopGracePeriod cannot be negative")
	}
	if hc := cs.Healthcheck; hc != nil {
		if hc.Interval < 0 || hc.Timeout < 0 || hc.StartPeriod < 0 || hc.Retries < 0 {
			return errInvalidf("rpc error: code = InvalidArgument desc = ContainerSpec: Healthcheck durations and retries cannot be negative")
		}
		if len(hc.Test) == 1 && (hc.Test[0] == "CMD" || hc.Test[0] == "CMD-SHELL") {
			return errInvalidf("rpc error: code = InvalidArgument desc = ContainerSpec: Healthcheck %s needs a command", hc.Test[0])
		}
	}
	return nil
}

func validateRestartPolicy(rp *swarm.RestartPolicy) error {
	if rp == nil {
		return nil
	}
	switch rp.Condition {
	case "", swarm.RestartPolicyConditionNone, swarm.RestartPolicyConditionOnFailure, swarm.RestartPolicyConditionAny:
	default:
		return errInvalidf("invalid RestartCondition: %q", rp.Condition)
	}
	if rp.Delay != nil && *rp.Delay < 0 {
		return errInvalidf("rpc error: code = InvalidArgument desc = TaskSpec: restart-delay cannot be negative")
	}
	if rp.Window != nil && *rp.Window < 0 {
		return errInvalidf("rpc error: code = InvalidArgument desc = TaskSpec: restart-window cannot be negative")
	}
	return nil
}

func validatePlacement(p *swarm.Placement) error {
	if p == nil {
		return nil
	}
	for _, c := range p.Constraints {
		key, _, _, err := scheduler.ParseConstraint(c)
		if err != nil {
			// As dockerd passes swarmkit's parse error on: code Unknown, a 500.
			return errUnknownf("%v", err)
		}
		if !scheduler.ValidConstraintKey(key) {
			return errInvalidf("rpc error: code = InvalidArgument desc = invalid constraint %q", c)
		}
	}
	for _, pref := range p.Preferences {
		if pref.Spread == nil || !scheduler.ValidConstraintKey(pref.Spread.SpreadDescriptor) {
			return errInvalidf("rpc error: code = InvalidArgument desc = invalid placement preference: spread descriptor must name a node label")
		}
	}
	return nil
}

// validateUpdateConfig checks an update or rollback config (name says which).
func validateUpdateConfig(name string, cfg *swarm.UpdateConfig) error {
	if cfg == nil {
		return nil
	}
	if cfg.Delay < 0 {
		return errInvalidf("rpc error: code = InvalidArgument desc = TaskSpec: %s-delay cannot be negative", name)
	}
	if cfg.Monitor < 0 {
		return errInvalidf("rpc error: code = InvalidArgument desc = TaskSpec: %s-monitor cannot be negative", name)
	}
	if cfg.MaxFailureRatio < 0 || cfg.MaxFailureRatio > 1 {
		return errInvalidf("rpc error: code = InvalidArgument desc = TaskSpec: %s-maxfailureratio cannot be less than 0 or bigger than 1", name)
	}
	switch cfg.FailureAction {
	case "", swarm.UpdateFailureActionPause, swarm.UpdateFailureActionContinue, swarm.UpdateFailureActionRollback:
	default:
		return errInvalidf("unrecognized update failure action %s", cfg.FailureAction) // dockerd says "update" for rollbacks too
	}
	switch cfg.Order {
	case "", swarm.UpdateOrderStopFirst, swarm.UpdateOrderStartFirst:
	default:
		return errInvalidf("unrecognized update order %s", cfg.Order)
	}
	return nil
}

func validateMode(m swarm.ServiceMode) error {
	n := 0
	for _, set := range []bool{m.Replicated != nil, m.Global != nil, m.ReplicatedJob != nil, m.GlobalJob != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		return errInvalidf("must specify only one service mode")
	}
	if j := m.ReplicatedJob; j != nil && j.MaxConcurrent != nil && j.TotalCompletions != nil && *j.MaxConcurrent > *j.TotalCompletions {
		return errInvalidf("rpc error: code = InvalidArgument desc = ServiceSpec: MaxConcurrent cannot be greater than TotalCompletions")
	}
	for _, c := range []struct {
		name  string
		count *uint64
	}{
		{"replicas", replicaField(m.Replicated)},
		{"TotalCompletions", jobField(m.ReplicatedJob, func(j *swarm.ReplicatedJob) *uint64 { return j.TotalCompletions })},
		{"MaxConcurrent", jobField(m.ReplicatedJob, func(j *swarm.ReplicatedJob) *uint64 { return j.MaxConcurrent })},
	} {
		if c.count != nil && *c.count > orchestrator.MaxReplicas {
			return errInvalidf("rpc error: code = InvalidArgument desc = ServiceSpec: %s %d is more than shoal's limit of %d tasks per service", c.name, *c.count, orchestrator.MaxReplicas)
		}
	}
	return nil
}

func replicaField(r *swarm.ReplicatedService) *uint64 {
	if r == nil {
		return nil
	}
	return r.Replicas
}

func jobField(j *swarm.ReplicatedJob, field func(*swarm.ReplicatedJob) *uint64) *uint64 {
	if j == nil {
		return nil
	}
	return field(j)
}

func validateResources(r *swarm.ResourceRequirements) error {
	if r == nil {
		return nil
	}
	if l := r.Limits; l != nil {
		if l.MemoryBytes != 0 && l.MemoryBytes < minMemory {
			return errInvalidf("rpc error: code = InvalidArgument desc = invalid memory value %d: Must be at least 4MiB", l.MemoryBytes)
		}
		if l.NanoCPUs < 0 || (l.NanoCPUs != 0 && l.NanoCPUs < 1e6) {
			return errInvalidf("rpc error: code = InvalidArgument desc = invalid cpu value %g: Must be at least 0.001", float64(l.NanoCPUs)/1e9)
		}
		if l.Pids < 0 {
			return errInvalidf("rpc error: code = InvalidArgument desc = invalid pids limit %d: cannot be negative", l.Pids)
		}
	}
	if res := r.Reservations; res != nil {
		if res.MemoryBytes < 0 || res.NanoCPUs < 0 {
			return errInvalidf("rpc error: code = InvalidArgument desc = invalid reservations: cannot be negative")
		}
	}
	return nil
}

func validateMounts(mounts []mount.Mount) error {
	seen := map[string]bool{}
	for _, m := range mounts {
		if !path.IsAbs(m.Target) {
			return errInvalidf("rpc error: code = InvalidArgument desc = ContainerSpec: invalid mount target, must be an absolute path: %s", m.Target)
		}
		if seen[m.Target] {
			return errInvalidf("rpc error: code = InvalidArgument desc = ContainerSpec: duplicate mount point: %s", m.Target)
		}
		seen[m.Target] = true
		switch m.Type {
		case mount.TypeBind:
			if !path.IsAbs(m.Source) {
				return errInvalidf("rpc error: code = InvalidArgument desc = ContainerSpec: invalid bind mount source, must be an absolute path: %s", m.Source)
			}
			if strings.Contains(m.Source+"/", "/../") {
				// dockerd takes it and resolves it; shoal refuses what its tasks
				// would be rejected for, or should not reach, up front.
				return errInvalidf("rpc error: code = InvalidArgument desc = ContainerSpec: invalid bind mount source, must not contain \"..\": %s", m.Source)
			}
		case mount.TypeVolume:
			if strings.HasPrefix(m.Source, "/") {
				return errInvalidf("rpc error: code = InvalidArgument desc = ContainerSpec: invalid volume mount source, must not be an absolute path: %s", m.Source)
			}
			if m.Source != "" && !validVolumeName.MatchString(m.Source) {
				// The local driver's words, which dockerd's tasks fail with.
				return errInvalidf("rpc error: code = InvalidArgument desc = ContainerSpec: invalid volume mount source %q: includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", m.Source)
			}
		case mount.TypeTmpfs:
			if m.Source != "" {
				return errInvalidf("rpc error: code = InvalidArgument desc = ContainerSpec: invalid tmpfs source, source must be empty")
			}
		default:
			return errInvalidf("invalid MountType: %q", m.Type)
		}
	}
	return nil
}

func validateEndpoint(ep *swarm.EndpointSpec) error {
	if ep == nil {
		return nil
	}
	switch ep.Mode {
	case "", swarm.ResolutionModeVIP, swarm.ResolutionModeDNSRR:
	default:
		return errInvalidf("invalid resolution mode: %q", ep.Mode)
	}
	seen := map[string]bool{}
	for _, p := range ep.Ports {
		if p.TargetPort == 0 || p.TargetPort > 65535 || p.PublishedPort > 65535 {
			return errInvalidf("rpc error: code = InvalidArgument desc = EndpointSpec: invalid port %d:%d", p.PublishedPort, p.TargetPort)
		}
		if p.PublishedPort == 0 {
			continue
		}
		proto := string(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		key := fmt.Sprintf("%s/%d", proto, p.PublishedPort)
		if seen[key] {
			return errInvalidf("rpc error: code = InvalidArgument desc = EndpointSpec: duplicate published ports provided")
		}
		seen[key] = true
	}
	return nil
}
