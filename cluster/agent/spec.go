package agent

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/session"
	"github.com/shoal-project/shoal/netplane/bridge"
	"github.com/shoal-project/shoal/runtime/container"
)

// Labels Docker puts on every task container; people filter `docker ps` on them.
const (
	LabelServiceID   = "com.docker.swarm.service.id"
	LabelServiceName = "com.docker.swarm.service.name"
	LabelTask        = "com.docker.swarm.task" // empty: marks a task container
	LabelTaskID      = "com.docker.swarm.task.id"
	LabelTaskName    = "com.docker.swarm.task.name"
	LabelNodeID      = "com.docker.swarm.node.id"
)

// DefaultStopGracePeriod is how long a task gets between its stop signal and SIGKILL.
const DefaultStopGracePeriod = 10 * time.Second

// TaskName is Docker's name for a task: <service>.<slot>, or <service>.<node> for
// global services.
func TaskName(serviceName string, t *swarm.Task) string {
	if t.Slot != 0 {
		return fmt.Sprintf("%s.%d", serviceName, t.Slot)
	}
	return serviceName + "." + t.NodeID
}

// stopGrace is how long task t gets between its stop signal and SIGKILL.
func stopGrace(t *swarm.Task) time.Duration {
	if cs := t.Spec.ContainerSpec; cs != nil && cs.StopGracePeriod != nil {
		return *cs.StopGracePeriod
	}
	return DefaultStopGracePeriod
}

// resourceEnv tells a task's container which generic resources it holds, as
// Docker does: DOCKER_RESOURCE_<KIND>=<named units, comma-separated, or a count>,
// kinds in the order the task holds them.
func resourceEnv(held []swarm.GenericResource) []string {
	var kinds []string
	values := map[string][]string{}
	for _, r := range held {
		var kind, value string
		switch {
		case r.NamedResourceSpec != nil:
			kind, value = r.NamedResourceSpec.Kind, r.NamedResourceSpec.Value
		case r.DiscreteResourceSpec != nil:
			kind, value = r.DiscreteResourceSpec.Kind, strconv.FormatInt(r.DiscreteResourceSpec.Value, 10)
		default:
			continue
		}
		if _, seen := values[kind]; !seen {
			kinds = append(kinds, kind)
		}
		values[kind] = append(values[kind], value)
	}
	env := make([]string, 0, len(kinds))
	for _, kind := range kinds {
		env = append(env, "DOCKER_RESOURCE_"+strings.ToUpper(kind)+"="+strings.Join(values[kind], ","))
	}
	return env
}

// ContainerName is the name of a task's container: <task name>.<task id>.
func ContainerName(serviceName string, t *swarm.Task) string {
	return TaskName(serviceName, t) + "." + t.ID
}

// createRequest translates a task's container spec into a container to create in
// the network sandbox sb.
func createRequest(a session.Assignment, nodeID string, sb bridge.Sandbox) (container.CreateRequest, error) {
	t := a.Task
	if t.Spec.ContainerSpec == nil {
		return container.CreateRequest{}, fmt.Errorf("task has no container spec")
	}
	cs, err := expandTemplates(a, nodeID)
	if err != nil {
		return container.CreateRequest{}, err
	}
	name := ContainerName(a.ServiceName, t)
	graceSeconds := int(stopGrace(t) / time.Second)
	cfg := ctypes.Config{
		Hostname:    cs.Hostname,
		User:        cs.User,
		Env:         slices.Concat(cs.Env, resourceEnv(t.GenericResources)),
		Cmd:         cs.Args,
		Entrypoint:  cs.Command,
		Image:       cs.Image,
		Labels:      taskLabels(a, cs, name, nodeID),
		WorkingDir:  cs.Dir,
		StopSignal:  cs.StopSignal,
		StopTimeout: &graceSeconds,
		Healthcheck: cs.Healthcheck,
		Tty:         cs.TTY,
		OpenStdin:   cs.OpenStdin,
	}
	files, err := taskFiles(a, nodeID, cs)
	if err != nil {
		return container.CreateRequest{}, err
	}
	req := container.CreateRequest{
		Name:       name,
		Config:     cfg,
		HostConfig: hostConfig(cs, t.Spec.Resources),
		NetNSPath:  sb.NetNSPath,
		Files:      files,
	}
	attachSandbox(&req, sb)
	return req, nil
}

// taskLabels are the container's labels: the service's container labels and
// Docker's com.docker.swarm.* ones.
func taskLabels(a session.Assignment, cs *swarm.ContainerSpec, name, nodeID string) map[string]string {
	labels := maps.Clone(cs.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelServiceID] = a.Task.ServiceID
	labels[LabelServiceName] = a.ServiceName
	labels[LabelTask] = ""
	labels[LabelTaskID] = a.Task.ID
	labels[LabelTaskName] = name
	labels[LabelNodeID] = nodeID
	return labels
}

// hostConfig is the node-side configuration of a task's container.
func hostConfig(cs *swarm.ContainerSpec, r *swarm.ResourceRequirements) ctypes.HostConfig {
	host := ctypes.HostConfig{
		Mounts:         cs.Mounts,
		ReadonlyRootfs: cs.ReadOnly,
		CapAdd:         cs.CapabilityAdd,
		CapDrop:        cs.CapabilityDrop,
		Sysctls:        cs.Sysctls,
		Init:           cs.Init,
		GroupAdd:       cs.Groups,
		OomScoreAdj:    int(cs.OomScoreAdj),
	}
	host.Ulimits = cs.Ulimits
	host.SecurityOpt = securityOpt(cs.Privileges)
	for _, h := range cs.Hosts {
		// Swarm writes "IP host..." (hosts-file order); containers want "host:IP".
		fields := strings.Fields(h)
		if len(fields) >= 2 {
			for _, hn := range fields[1:] {
				host.ExtraHosts = append(host.ExtraHosts, hn+":"+fields[0])
			}
		}
	}
	if d := cs.DNSConfig; d != nil {
		host.DNS = d.Nameservers
		host.DNSSearch = d.Search
		host.DNSOptions = d.Options
	}
	if r != nil {
		if l := r.Limits; l != nil {
			host.Memory = l.MemoryBytes
			host.NanoCPUs = l.NanoCPUs
			if l.Pids > 0 {
				pids := l.Pids
				host.PidsLimit = &pids
			}
		}
		if res := r.Reservations; res != nil {
			host.MemoryReservation = res.MemoryBytes
		}
	}
	return host
}

// attachSandbox records the task's network endpoint (address, gateway, MAC) in req.
func attachSandbox(req *container.CreateRequest, sb bridge.Sandbox) {
	if !sb.IP.IsValid() {
		return
	}
	req.IPAddress = sb.IP.String()
	if sb.Prefix.IsValid() {
		req.IPAddress = netip.PrefixFrom(sb.IP, sb.Prefix.Bits()).String()
	}
	req.NetworkID = bridge.NetworkID(bridge.NetworkName)
	if sb.Gateway.IsValid() {
		req.Gateway = sb.Gateway.String()
	}
	if len(sb.MAC) > 0 {
		req.MacAddress = sb.MAC.String()
	}
}

// securityOpt turns a service's privileges into the container's security
// options, as dockerd's swarm executor does: seccomp mode and no-new-privileges.
func securityOpt(p *swarm.Privileges) []string {
	if p == nil {
		return nil
	}
	var opts []string
	if s := p.Seccomp; s != nil {
		switch s.Mode {
		case swarm.SeccompModeUnconfined:
			opts = append(opts, "seccomp=unconfined")
		case swarm.SeccompModeCustom:
			opts = append(opts, "seccomp="+string(s.Profile))
		}
	}
	if p.NoNewPrivileges {
		opts = append(opts, "no-new-privileges")
	}
	return opts
}
