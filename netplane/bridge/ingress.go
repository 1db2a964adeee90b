package bridge

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ServicePort is a port a service publishes in ingress mode: a connection to the
// node's PublishedPort goes to TargetPort of one of the service's tasks on the node,
// in turn.
type ServicePort struct {
	Protocol      string `json:"protocol"` // "tcp" (default), "udp", "sctp"
	PublishedPort uint16 `json:"publishedPort"`
	TargetPort    uint16 `json:"targetPort"`
}

// serviceState is one service's ingress record in the state file.
type serviceState struct {
	Ports    []ServicePort `json:"ports"`
	Backends []netip.Addr  `json:"backends"`
}

// PublishService sets the ingress ports of service key and the task addresses they
// balance over, replacing what an earlier call set. No ports, or no backends,
// unpublishes the service. A port another service or a sandbox publishes is a
// Conflict.
func (n *Network) PublishService(ctx context.Context, key string, ports []ServicePort, backends []netip.Addr) error {
	ports = slices.Clone(ports)
	for i := range ports {
		if ports[i].Protocol == "" {
			ports[i].Protocol = "tcp"
		}
		if protoNumber(ports[i].Protocol) == 0 || ports[i].PublishedPort == 0 || ports[i].TargetPort == 0 {
			return fmt.Errorf("publish service %s: %w", key, errInvalid("invalid ingress port %+v", ports[i]))
		}
	}
	backends = slices.Clone(backends)
	slices.SortFunc(backends, func(a, b netip.Addr) int { return a.Compare(b) })
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return fmt.Errorf("publish service %s: %w", key, errClosed())
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish service %s: %w", key, err)
	}
	owners := n.portOwners()
	for _, p := range ports {
		if o, taken := owners[portKey{p.Protocol, p.PublishedPort}]; taken && !(o.service && o.id == key) {
			return fmt.Errorf("publish service %s: %w", key, errPortAllocated(p.Protocol, p.PublishedPort))
		}
	}
	old, had := n.st.Services[key]
	if n.st.Services == nil {
		n.st.Services = map[string]*serviceState{}
	}
	if len(ports) == 0 {
		delete(n.st.Services, key)
	} else {
		n.st.Services[key] = &serviceState{Ports: ports, Backends: backends}
	}
	restore := func() {
		if had {
			n.st.Services[key] = old
		} else {
			delete(n.st.Services, key)
		}
	}
	if err := n.applyNAT(); err != nil {
		restore()
		return fmt.Errorf("publish service %s: %w", key, err)
	}
	if err := n.st.save(n.statePath); err != nil {
		restore()
		return fmt.Errorf("publish service %s: %w", key, err)
	}
	return nil
}

// balancedPort is one ingress port with the addresses it balances over.
type balancedPort struct {
	ServicePort
	Backends []netip.Addr
}

// balancedPorts lists the ingress ports of every service that has backends, in a
// stable order.
func (st *state) balancedPorts() []balancedPort {
	var out []balancedPort
	for _, svc := range st.Services {
		if len(svc.Backends) == 0 {
			continue
		}
		for _, p := range svc.Ports {
			out = append(out, balancedPort{ServicePort: p, Backends: svc.Backends})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PublishedPort != out[j].PublishedPort {
			return out[i].PublishedPort < out[j].PublishedPort
		}
		return out[i].Protocol < out[j].Protocol
	})
	return out
}

// addBalancedRule adds the rule that sends p's connections to its backends in
// turn: a round-robin number picks the backend from an anonymous map.
func addBalancedRule(conn *nftables.Conn, t *nftables.Table, chain *nftables.Chain, p balancedPort) error {
	backends := &nftables.Set{
		Table: t, Anonymous: true, Constant: true, IsMap: true,
		KeyType: nftables.TypeInteger, DataType: nftables.TypeIPAddr,
	}
	elems := make([]nftables.SetElement, len(p.Backends))
	for i, ip := range p.Backends {
		a := ip.As4()
		elems[i] = nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(uint32(i)), Val: a[:]}
	}
	if err := conn.AddSet(backends, elems); err != nil {
		return fmt.Errorf("add backends of port %d: %w", p.PublishedPort, err)
	}
	conn.AddRule(&nftables.Rule{Table: t, Chain: chain, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protoNumber(p.Protocol)}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p.PublishedPort)},
		&expr.Numgen{Register: 1, Modulus: uint32(len(p.Backends)), Type: unix.NFT_NG_INCREMENTAL},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: backends.Name, SetID: backends.ID},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(p.TargetPort)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}})
	return nil
}
