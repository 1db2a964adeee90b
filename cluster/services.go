package cluster

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/agent"
	"github.com/shoal-project/shoal/cluster/orchestrator"
	"github.com/shoal-project/shoal/cluster/store"
)

// CreateService fills spec with dockerd's defaults, validates it and stores a new
// service; the orchestrator makes its tasks.
func (c *Cluster) CreateService(ctx context.Context, spec swarm.ServiceSpec, encodedAuth string) (swarm.ServiceCreateResponse, error) {
	if spec.Name == "" {
		spec.Name = randomName()
	}
	spec = orchestrator.SpecDefaults(spec)
	if err := validateServiceSpec(&spec); err != nil {
		return swarm.ServiceCreateResponse{}, err
	}
	svc := &swarm.Service{ID: store.NewID(), Spec: spec}
	if isJob(spec.Mode) {
		svc.JobStatus = &swarm.JobStatus{LastExecution: time.Now().UTC()}
	}
	err := c.updateAllocating(ctx, func(tx store.Tx) error {
		svc.Spec, svc.Endpoint = spec, swarm.Endpoint{}
		if _, err := tx.ServiceByName(spec.Name); err == nil {
			return errServiceExists(spec.Name)
		}
		if err := resolveReferences(tx, &svc.Spec); err != nil {
			return err
		}
		if err := resolveNetworks(tx, &svc.Spec); err != nil {
			return err
		}
		if err := resolvePorts(tx, svc, nil); err != nil {
			return err
		}
		svc.Endpoint.Spec = endpointSpecShown(spec, swarm.Endpoint{})
		if err := allocateVIPs(tx, svc); err != nil {
			return err
		}
		if err := tx.CreateService(svc); err != nil {
			return err
		}
		return setRegistryAuth(tx, svc.ID, encodedAuth)
	})
	if err != nil {
		// Two creates of one name that both passed the check above: the store
		// refuses the second when it applies it. Docker's words either way.
		if isConflict(err) && c.serviceNameTaken(spec.Name) {
			return swarm.ServiceCreateResponse{}, errServiceExists(spec.Name)
		}
		return swarm.ServiceCreateResponse{}, err
	}
	return swarm.ServiceCreateResponse{ID: svc.ID}, nil
}

// serviceNameTaken reports whether a service is named name.
func (c *Cluster) serviceNameTaken(name string) bool {
	return c.view(func(tx store.ReadTx) error {
		_, err := tx.ServiceByName(name)
		return err
	}) == nil
}

// endpointOf is the endpoint a service spec asks for: its mode and ports, with
// Docker's defaults (vip, tcp, ingress) filled in.
func endpointOf(spec swarm.ServiceSpec) swarm.Endpoint {
	ep := swarm.Endpoint{Spec: swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP}}
	if spec.EndpointSpec != nil {
		ep.Spec = *spec.EndpointSpec
		if ep.Spec.Mode == "" {
			ep.Spec.Mode = swarm.ResolutionModeVIP
		}
		ep.Spec.Ports = orchestrator.PortDefaults(ep.Spec.Ports)
		ep.Ports = orchestrator.PortDefaults(spec.EndpointSpec.Ports)
	}
	return ep
}

// endpointSpecShown is the Endpoint.Spec of a service with spec whose endpoint was
// before, as dockerd's allocator leaves it: empty until the service has something
// to allocate (a published port, or virtual IPs: vip mode on a network), then a
// copy of the spec's endpoint (kept, as dockerd keeps it, once the ports are
// gone); empty again when the spec has no endpoint at all.
func endpointSpecShown(spec swarm.ServiceSpec, before swarm.Endpoint) swarm.EndpointSpec {
	had := before.Spec.Mode != "" || len(before.Spec.Ports) > 0 || len(before.Ports) > 0
	if spec.EndpointSpec == nil {
		return swarm.EndpointSpec{}
	}
	ep := endpointOf(spec).Spec
	vips := ep.Mode != swarm.ResolutionModeDNSRR && len(serviceNetworks(spec)) > 0
	if len(ep.Ports) == 0 && !vips && !had {
		return swarm.EndpointSpec{}
	}
	return ep
}

func isJob(m swarm.ServiceMode) bool { return m.ReplicatedJob != nil || m.GlobalJob != nil }

// Services lists the services; with status, each carries its task counts.
func (c *Cluster) Services(ctx context.Context, withStatus bool) ([]swarm.Service, error) {
	var out []swarm.Service
	err := c.view(func(tx store.ReadTx) error {
		services, err := tx.Services()
		if err != nil {
			return err
		}
		ready, err := readyNodes(tx)
		if err != nil {
			return err
		}
		for _, s := range services {
			v := shown(*s)
			if withStatus {
				if err := fillStatus(tx, &v, ready); err != nil {
					return err
				}
			}
			out = append(out, v)
		}
		return nil
	})
	return out, err
}

// readyNodes tells which nodes are ready, by ID.
func readyNodes(tx store.ReadTx) (map[string]bool, error) {
	nodes, err := tx.Nodes()
	ready := map[string]bool{}
	for _, n := range nodes {
		ready[n.ID] = n.Status.State == swarm.NodeStateReady
	}
	return ready, err
}

// fillStatus counts a service's running, desired and completed tasks; ready says
// which nodes' running tasks count.
func fillStatus(tx store.ReadTx, s *swarm.Service, ready map[string]bool) error {
	tasks, err := tx.TasksByService(s.ID)
	if err != nil {
		return err
	}
	st := &swarm.ServiceStatus{}
	for _, t := range tasks {
		if s.JobStatus != nil && (t.JobIteration == nil || t.JobIteration.Index != s.JobStatus.JobIteration.Index) {
			continue // an earlier run of the job, as swarmkit counts
		}
		if t.Status.State == swarm.TaskStateRunning && ready[t.NodeID] {
			st.RunningTasks++
		}
		if t.Status.State == swarm.TaskStateComplete {
			st.CompletedTasks++
		}
		// A global service wants the tasks desired running, and a global job
		// those desired complete that have not completed yet (as swarmkit counts).
		wanted := t.DesiredState == swarm.TaskStateRunning ||
			t.DesiredState == swarm.TaskStateComplete && t.Status.State != swarm.TaskStateComplete
		if wanted && (s.Spec.Mode.Global != nil || s.Spec.Mode.GlobalJob != nil) {
			st.DesiredTasks++
		}
	}
	switch m := s.Spec.Mode; {
	case m.Replicated != nil:
		st.DesiredTasks = 1
		if m.Replicated.Replicas != nil {
			st.DesiredTasks = *m.Replicated.Replicas
		}
	case m.ReplicatedJob != nil:
		st.DesiredTasks = 1
		if m.ReplicatedJob.MaxConcurrent != nil {
			st.DesiredTasks = *m.ReplicatedJob.MaxConcurrent
		} else if m.ReplicatedJob.TotalCompletions != nil {
			st.DesiredTasks = *m.ReplicatedJob.TotalCompletions
		}
	}
	s.ServiceStatus = st
	return nil
}

// Service finds a service by ID, name or unique ID prefix; insertDefaults fills
// the fields Docker fills with its defaults.
func (c *Cluster) Service(ctx context.Context, ref string, insertDefaults bool) (swarm.Service, error) {
	var out swarm.Service
	err := c.view(func(tx store.ReadTx) error {
		s, err := findService(tx, ref)
		if err != nil {
			return err
		}
		out = shown(*s)
		return nil
	})
	if err == nil && insertDefaults {
		// As swarmkit's: the spec only, not the previous one.
		out.Spec = withInsertDefaults(out.Spec)
	}
	return out, err
}

// shown is a service as the API shows it: its specs with the defaults dockerd
// stores, which a store written by an older shoal may lack.
func shown(s swarm.Service) swarm.Service {
	s.Spec = orchestrator.SpecDefaults(s.Spec)
	if s.PreviousSpec != nil {
		prev := orchestrator.SpecDefaults(*s.PreviousSpec)
		s.PreviousSpec = &prev
	}
	return s
}

func findService(tx store.ReadTx, ref string) (*swarm.Service, error) {
	if s, err := tx.Service(ref); err == nil {
		return s, nil
	}
	if s, err := tx.ServiceByName(ref); err == nil {
		return s, nil
	}
	services, err := tx.Services()
	if err != nil {
		return nil, err
	}
	var match []*swarm.Service
	for _, s := range services {
		if strings.HasPrefix(s.ID, ref) {
			match = append(match, s)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return nil, errNotFoundf("service %s not found", ref)
	}
	return nil, errInvalidf("service %s is ambiguous (%d matches found)", ref, len(match))
}

// withInsertDefaults is spec as `docker service inspect` shows it (insertDefaults):
// what the spec leaves out filled with swarmkit's defaults, as swarmkit's
// InterpolateService fills them (compared with dockerd 20.10, docs/conformance.md).
func withInsertDefaults(spec swarm.ServiceSpec) swarm.ServiceSpec {
	tt := &spec.TaskTemplate
	if cs := tt.ContainerSpec; cs != nil {
		c := *cs
		if c.StopGracePeriod == nil {
			d := agent.DefaultStopGracePeriod
			c.StopGracePeriod = &d
		}
		if c.DNSConfig == nil {
			c.DNSConfig = &swarm.DNSConfig{}
		}
		tt.ContainerSpec = &c
	}
	if tt.Resources == nil {
		tt.Resources = &swarm.ResourceRequirements{}
	}
	rp := swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny}
	if tt.RestartPolicy != nil {
		rp = *tt.RestartPolicy
	}
	if rp.Delay == nil {
		d := orchestrator.DefaultRestartDelay
		rp.Delay = &d
	}
	if rp.MaxAttempts == nil {
		var zero uint64
		rp.MaxAttempts = &zero
	}
	tt.RestartPolicy = &rp
	if tt.Placement == nil {
		tt.Placement = &swarm.Placement{}
	}
	u := orchestrator.UpdateDefaults(spec.UpdateConfig)
	spec.UpdateConfig = &u
	r := orchestrator.UpdateDefaults(spec.RollbackConfig)
	spec.RollbackConfig = &r
	return spec
}

// UpdateService replaces a service's spec (compare-and-set on version), or rolls
// it back to its previous spec. A changed task template starts a rolling update.
func (c *Cluster) UpdateService(ctx context.Context, ref string, version uint64, spec swarm.ServiceSpec, opts ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error) {
	rollback := opts.Rollback == "previous"
	if opts.Rollback != "" && !rollback {
		return swarm.ServiceUpdateResponse{}, errInvalidf("unrecognized rollback option %s", opts.Rollback)
	}
	if !rollback {
		spec = orchestrator.SpecDefaults(spec)
		if err := validateServiceSpec(&spec); err != nil {
			return swarm.ServiceUpdateResponse{}, err
		}
	}
	err := c.updateAllocating(ctx, func(tx store.Tx) error {
		svc, err := findService(tx, ref)
		if err != nil {
			return err
		}
		if svc.Version.Index != version {
			return store.ErrOutOfSequence
		}
		now := time.Now().UTC()
		before := svc.Endpoint
		cur := orchestrator.SpecDefaults(svc.Spec)
		if rollback {
			if svc.PreviousSpec == nil {
				return errInvalidf("rpc error: code = FailedPrecondition desc = service %s does not have a previous spec", svc.ID)
			}
			spec = orchestrator.SpecDefaults(*svc.PreviousSpec)
			svc.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateRollbackStarted, StartedAt: &now, Message: "manually requested rollback"}
		} else {
			if spec.Name != cur.Name {
				return errNotImplementedf("rpc error: code = Unimplemented desc = renaming services is not supported")
			}
			if modeName(spec.Mode) != modeName(cur.Mode) {
				return errNotImplementedf("rpc error: code = Unimplemented desc = service mode change is not allowed")
			}
			if err := resolveReferences(tx, &spec); err != nil {
				return err
			}
			if err := resolveNetworks(tx, &spec); err != nil {
				return err
			}
			svc.UpdateStatus = nil
			// Both specs carry the stored defaults, so a spec read from an older
			// store compares equal to itself sent back unchanged.
			if !jsonEqual(spec.TaskTemplate, cur.TaskTemplate) || !reflect.DeepEqual(endpointOf(spec).Ports, endpointOf(cur).Ports) {
				svc.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateUpdating, StartedAt: &now, Message: "update in progress"}
			}
		}
		svc.PreviousSpec = &cur
		svc.Spec = spec
		if err := resolvePorts(tx, svc, before.Ports); err != nil {
			return err
		}
		svc.Endpoint.Spec = endpointSpecShown(spec, before)
		if err := allocateVIPs(tx, svc); err != nil {
			return err
		}
		if isJob(spec.Mode) {
			it := uint64(1)
			if svc.JobStatus != nil {
				it = svc.JobStatus.JobIteration.Index + 1
			}
			svc.JobStatus = &swarm.JobStatus{JobIteration: swarm.Version{Index: it}, LastExecution: now}
			svc.UpdateStatus = nil
		}
		if err := tx.UpdateService(svc); err != nil {
			return err
		}
		// Like dockerd: new credentials replace the kept ones unless the client
		// asks to keep the previous spec's.
		if opts.RegistryAuthFrom != string(swarm.RegistryAuthFromPreviousSpec) && opts.EncodedRegistryAuth != "" {
			return setRegistryAuth(tx, svc.ID, opts.EncodedRegistryAuth)
		}
		return nil
	})
	if err != nil {
		return swarm.ServiceUpdateResponse{}, err
	}
	return swarm.ServiceUpdateResponse{}, nil
}

func modeName(m swarm.ServiceMode) string {
	switch {
	case m.Global != nil:
		return "global"
	case m.ReplicatedJob != nil:
		return "replicated-job"
	case m.GlobalJob != nil:
		return "global-job"
	}
	return "replicated"
}

func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// RemoveService deletes a service; the orchestrator stops and removes its tasks.
func (c *Cluster) RemoveService(ctx context.Context, ref string) error {
	return c.update(ctx, func(tx store.Tx) error {
		svc, err := findService(tx, ref)
		if err != nil {
			return err
		}
		if err := setRegistryAuth(tx, svc.ID, ""); err != nil {
			return err
		}
		return tx.DeleteService(svc.ID)
	})
}

var (
	nameLeft  = []string{"admiring", "brave", "calm", "eager", "focused", "gallant", "happy", "jolly", "keen", "lucid", "nifty", "quirky", "serene", "vibrant", "zealous"}
	nameRight = []string{"archimedes", "bohr", "curie", "darwin", "euler", "fermi", "galileo", "hopper", "kepler", "lovelace", "noether", "pascal", "turing", "volta", "wright"}
)

// randomName is a Docker-style name for a service created without one.
func randomName() string {
	return nameLeft[rand.IntN(len(nameLeft))] + "_" + nameRight[rand.IntN(len(nameRight))]
}
