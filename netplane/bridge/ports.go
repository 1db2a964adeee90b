package bridge

import (
	"context"
	"fmt"
	"slices"
)

// The range HostPort 0 is served from, as Docker's default ephemeral range for
// published ports.
const (
	ephemeralFirst uint16 = 30000
	ephemeralLast  uint16 = 32767
)

// PortMapping publishes a container port on a host port.
type PortMapping struct {
	Protocol      string `json:"protocol"`      // "tcp" | "udp" | "sctp"; empty means "tcp"
	HostPort      uint16 `json:"hostPort"`      // 0 = pick a free ephemeral port (30000-32767) and return it
	ContainerPort uint16 `json:"containerPort"` // port inside the sandbox
}

// portKey identifies a host port: one per protocol.
type portKey struct {
	proto string
	port  uint16
}

// portOwner says which sandbox publishes a host port, and to which container port.
type portOwner struct {
	id            string // the sandbox, or for an ingress port the service
	containerPort uint16
	service       bool
}

// PublishPorts DNATs host ports to the sandbox, both for traffic from outside and from
// the host itself (127.0.0.1 included). Publishing a mapping the sandbox already has
// is a no-op, and HostPort 0 reuses the host port already published for the same
// container port. A host port published by another sandbox is a Conflict error.
// Returns the mappings with HostPort filled in.
func (n *Network) PublishPorts(ctx context.Context, id string, ports []PortMapping) ([]PortMapping, error) {
	ports = slices.Clone(ports)
	for i := range ports {
		if err := validateMapping(&ports[i]); err != nil {
			return nil, fmt.Errorf("publish ports of sandbox %s: %w", id, err)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, fmt.Errorf("publish ports of sandbox %s: %w", id, errClosed())
	}
	sb, ok := n.st.Sandboxes[id]
	if !ok {
		return nil, fmt.Errorf("publish ports: %w", errNoSuchSandbox(id))
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("publish ports of sandbox %s: %w", id, err)
	}

	owners := n.portOwners()
	cursor := n.st.LastPort
	result := make([]PortMapping, len(ports))
	var added []PortMapping
	for i, p := range ports {
		if p.HostPort == 0 {
			p.HostPort = reusablePort(sb, p)
		}
		if p.HostPort == 0 {
			port, err := n.allocatePort(p.Protocol, owners)
			if err != nil {
				n.st.LastPort = cursor
				return nil, fmt.Errorf("publish ports of sandbox %s: %w", id, err)
			}
			p.HostPort = port
		}
		key := portKey{p.Protocol, p.HostPort}
		if o, taken := owners[key]; taken {
			if o.service || o.id != id || o.containerPort != p.ContainerPort {
				n.st.LastPort = cursor
				return nil, fmt.Errorf("publish ports of sandbox %s: %w", id, errPortAllocated(p.Protocol, p.HostPort))
			}
		} else {
			owners[key] = portOwner{id: id, containerPort: p.ContainerPort}
			added = append(added, p)
		}
		result[i] = p
	}
	if len(added) == 0 {
		return result, nil
	}

	old := sb.Ports
	sb.Ports = append(slices.Clip(old), added...)
	if err := n.applyNAT(); err != nil {
		sb.Ports, n.st.LastPort = old, cursor
		return nil, fmt.Errorf("publish ports of sandbox %s: %w", id, err)
	}
	if err := n.st.save(n.statePath); err != nil {
		sb.Ports, n.st.LastPort = old, cursor
		if rerr := n.applyNAT(); rerr != nil {
			n.log.Warn("roll back published ports", "sandbox", id, "err", rerr)
		}
		return nil, fmt.Errorf("publish ports of sandbox %s: %w", id, err)
	}
	n.log.Debug("ports published", "sandbox", id, "ports", added)
	return result, nil
}

// Ports returns the mappings published for the sandbox id.
func (n *Network) Ports(id string) ([]PortMapping, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	sb, ok := n.st.Sandboxes[id]
	if !ok {
		return nil, false
	}
	return slices.Clone(sb.Ports), true
}

func validateMapping(p *PortMapping) error {
	switch p.Protocol {
	case "":
		p.Protocol = "tcp"
	case "tcp", "udp", "sctp":
	default:
		return errInvalid("invalid protocol %q: want tcp, udp or sctp", p.Protocol)
	}
	if p.ContainerPort == 0 {
		return errInvalid("invalid container port 0 for host port %d/%s", p.HostPort, p.Protocol)
	}
	return nil
}

// portOwners maps every published host port to its sandbox. Callers hold n.mu.
func (n *Network) portOwners() map[portKey]portOwner {
	owners := map[portKey]portOwner{}
	for id, sb := range n.st.Sandboxes {
		for _, p := range sb.Ports {
			owners[portKey{p.Protocol, p.HostPort}] = portOwner{id: id, containerPort: p.ContainerPort}
		}
	}
	for key, svc := range n.st.Services {
		for _, p := range svc.Ports {
			owners[portKey{p.Protocol, p.PublishedPort}] = portOwner{id: key, containerPort: p.TargetPort, service: true}
		}
	}
	return owners
}

// reusablePort returns the host port sb already publishes for p's container port, or 0.
func reusablePort(sb *sandboxState, p PortMapping) uint16 {
	for _, q := range sb.Ports {
		if q.Protocol == p.Protocol && q.ContainerPort == p.ContainerPort {
			return q.HostPort
		}
	}
	return 0
}

// allocatePort picks the next free ephemeral host port after the cursor, wrapping.
func (n *Network) allocatePort(proto string, owners map[portKey]portOwner) (uint16, error) {
	start := ephemeralFirst
	if last := n.st.LastPort; last >= ephemeralFirst && last < ephemeralLast {
		start = last + 1
	}
	port := start
	for {
		if _, taken := owners[portKey{proto, port}]; !taken {
			n.st.LastPort = port
			return port, nil
		}
		if port == ephemeralLast {
			port = ephemeralFirst
		} else {
			port++
		}
		if port == start {
			return 0, unavailableError{msg: fmt.Sprintf("no free %s host port in %d-%d", proto, ephemeralFirst, ephemeralLast)}
		}
	}
}
