package agent

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/session"
	"github.com/shoal-project/shoal/netplane/bridge"
)

// refreshIngress publishes the ingress ports of a service over the addresses of its
// running tasks, when that set changed: those on this node at their bridge
// address (the client's address reaches them unchanged) and, once the overlay
// view and the mesh are there, those on other nodes at their ingress-network
// address (the routing mesh). The ports come from the service's tasks, as the
// cluster resolved them, else from the view (a node with none of its tasks).
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
	if svc := a.viewService(serviceID); svc != nil {
		if ports == nil {
			for _, p := range svc.Ports {
				ports = append(ports, bridge.ServicePort{Protocol: p.Protocol, PublishedPort: p.Published, TargetPort: p.Target})
			}
		}
		backends = append(backends, a.remoteIngressBackends(serviceID)...)
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

// viewService is a service's entry in the overlay view, nil without one.
func (a *Agent) viewService(id string) *session.ServiceEndpoint {
	if a.view == nil {
		return nil
	}
	for i := range a.view.Services {
		if a.view.Services[i].ID == id {
			return &a.view.Services[i]
		}
	}
	return nil
}

// remoteIngressBackends are the ingress-network addresses of a service's
// running tasks on other nodes, when this node can reach them: it has an
// overlay plane and a mesh interface.
func (a *Agent) remoteIngressBackends(serviceID string) []netip.Addr {
	if a.view == nil || a.cfg.Overlay == nil || a.cfg.MeshDevice == nil || a.cfg.MeshDevice() == "" {
		return nil
	}
	ingress := ""
	for _, n := range a.view.Networks {
		if n.Ingress {
			ingress = n.ID
		}
	}
	var out []netip.Addr
	for _, t := range a.view.Tasks {
		if t.ServiceID != serviceID || !t.Running || t.NodeID == a.cfg.NodeID {
			continue
		}
		if addr, ok := t.Addrs[ingress]; ok && ingress != "" {
			out = append(out, addr)
		}
	}
	return out
}
