package agent

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/netplane/bridge"
)

// refreshIngress publishes the ingress ports of a service over the addresses of its
// tasks that run on this node, when that set changed. The ports come from the
// service's tasks, as the cluster resolved them.
func (a *Agent) refreshIngress(ctx context.Context, serviceID string) {
	var (
		ports    []bridge.ServicePort
		backends []netip.Addr
	)
	for id, t := range a.tasks {
		if t.a.Task == nil || t.a.Task.ServiceID != serviceID || t.removed {
			continue
		}
		if ports == nil {
			ports = ingressPorts(t.a.Task)
		}
		if t.reported != swarm.TaskStateRunning || t.exited {
			continue
		}
		if sb, ok := a.cfg.Network.Sandbox(id); ok {
			backends = append(backends, sb.IP)
		}
	}
	slices.SortFunc(backends, func(x, y netip.Addr) int { return x.Compare(y) })
	if len(backends) == 0 {
		ports = nil
	}
	key := ""
	if len(ports) > 0 {
		key = fmt.Sprint(ports, backends)
	}
	if a.ingress[serviceID] == key {
		return // unchanged, or nothing published before and nothing to publish now
	}
	if err := a.cfg.Network.PublishService(ctx, serviceID, ports, backends); err != nil {
		a.log.Warn("publish ingress ports", "service", serviceID, "err", err)
		return
	}
	if len(ports) == 0 {
		delete(a.ingress, serviceID)
		return
	}
	a.ingress[serviceID] = key
}

// ingressPorts are the task's ports published in ingress mode.
func ingressPorts(t *swarm.Task) []bridge.ServicePort {
	var out []bridge.ServicePort
	for _, p := range t.Status.PortStatus.Ports {
		if p.PublishMode != swarm.PortConfigPublishModeIngress || p.PublishedPort == 0 {
			continue
		}
		out = append(out, bridge.ServicePort{Protocol: string(p.Protocol), PublishedPort: uint16(p.PublishedPort), TargetPort: uint16(p.TargetPort)})
	}
	return out
}
