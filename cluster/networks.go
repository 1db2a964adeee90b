package cluster

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/dispatcher"
	"github.com/shoal-project/shoal/cluster/ipam"
	"github.com/shoal-project/shoal/cluster/nodenet"
	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/taskstate"
)

// Overlay networks are swarm objects in the replicated store (moby's
// swarm.Network): the network's subnet and gateway are allocated when it is
// created, in the same write, so inspect shows them at once; service VIPs and
// task addresses come from that subnet (cluster/ipam).

// OverlayDriver is the one driver of swarm-scoped networks.
const OverlayDriver = "overlay"

// IngressName is the routing-mesh network every swarm has from its init.
const IngressName = "ingress"

// ingressSubnet is Docker's subnet for the ingress network.
var ingressSubnet = netip.MustParsePrefix("10.0.0.0/24")

// validNetworkName is the rule dockerd applies to network names.
var validNetworkName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// NetworkRequest is what a user asks of a new overlay network.
type NetworkRequest struct {
	Name       string
	Labels     map[string]string
	Options    map[string]string
	Internal   bool
	Attachable bool
	Ingress    bool
	// Subnet, Range and Gateway are the first IPAM config; zero values are
	// chosen (a subnet from the swarm's default address pools).
	Subnet  netip.Prefix
	Range   netip.Prefix
	Gateway netip.Addr
	// IPAMDriver and IPAMOptions are kept as given (only "default" works).
	IPAMDriver  string
	IPAMOptions map[string]string
}

// CreateNetwork stores a new overlay network with its subnet allocated and
// returns its ID.
func (c *Cluster) CreateNetwork(ctx context.Context, req NetworkRequest) (string, error) {
	if err := validateNetworkRequest(req); err != nil {
		return "", err
	}
	if c.isWorker() {
		return "", forbiddenError{msgWorkerNet}
	}
	n := &swarm.Network{ID: store.NewID()}
	err := c.update(ctx, func(tx store.Tx) error {
		if _, err := tx.NetworkByName(req.Name); err == nil {
			return conflictError{fmt.Sprintf("network with name %s already exists", req.Name)}
		}
		all, err := tx.Networks()
		if err != nil {
			return err
		}
		if req.Ingress {
			for _, o := range all {
				if o.Spec.Ingress {
					return conflictError{fmt.Sprintf("rpc error: code = AlreadyExists desc = ingress network (%s) is already present", o.ID)}
				}
			}
		}
		cl, err := tx.Cluster()
		if err != nil {
			return err
		}
		built, err := newNetwork(req, cl, all, time.Now().UTC())
		if err != nil {
			return err
		}
		built.ID = n.ID
		*n = *built
		return tx.CreateNetwork(n)
	})
	if err != nil {
		if isConflict(err) && c.networkNameTaken(req.Name) {
			return "", conflictError{fmt.Sprintf("network with name %s already exists", req.Name)}
		}
		return "", err
	}
	return n.ID, nil
}

func (c *Cluster) networkNameTaken(name string) bool {
	return c.view(func(tx store.ReadTx) error {
		_, err := tx.NetworkByName(name)
		return err
	}) == nil
}

// validateNetworkRequest refuses what dockerd refuses before allocating.
func validateNetworkRequest(req NetworkRequest) error {
	if req.Name == "" || !validNetworkName.MatchString(req.Name) {
		return errInvalidf("rpc error: code = InvalidArgument desc = name must be valid as a DNS name component")
	}
	if len(req.Name) > 63 {
		return errInvalidf("rpc error: code = InvalidArgument desc = name must be valid as a DNS name component")
	}
	if req.IPAMDriver != "" && req.IPAMDriver != "default" {
		return errInvalidf("rpc error: code = InvalidArgument desc = ipam driver %s is not supported by shoal: only the default one is", req.IPAMDriver)
	}
	if req.Subnet.IsValid() && !req.Subnet.Addr().Is4() {
		return errNotImplementedf("IPv6 overlay networks are not supported by shoal")
	}
	if !req.Subnet.IsValid() && (req.Range.IsValid() || req.Gateway.IsValid()) {
		return errInvalidf("rpc error: code = InvalidArgument desc = an ip range or gateway needs a subnet")
	}
	return nil
}

// newNetwork builds the stored network for req, its subnet checked against (or
// picked clear of) every other network's, the node bridge's and the mesh's.
func newNetwork(req NetworkRequest, cl *swarm.Swarm, others []*swarm.Network, now time.Time) (*swarm.Network, error) {
	taken := append(ipam.Prefixes(others), dispatcher.MeshRange)
	subnet := req.Subnet.Masked()
	if req.Subnet.IsValid() {
		for _, t := range taken {
			if t.Overlaps(subnet) {
				return nil, errInvalidf("rpc error: code = InvalidArgument desc = invalid pool request: Pool overlaps with other one on this address space")
			}
		}
	} else {
		pools, bits := defaultPools(cl)
		p, err := ipam.NextSubnet(pools, bits, taken)
		if err != nil {
			return nil, errInvalidf("rpc error: code = ResourceExhausted desc = %v", err)
		}
		subnet = p
	}
	sub, err := ipam.NewSubnet(subnet, req.Range, req.Gateway)
	if err != nil {
		return nil, errInvalidf("rpc error: code = InvalidArgument desc = %v", err)
	}
	spec := swarm.NetworkSpec{
		Annotations:         swarm.Annotations{Name: req.Name, Labels: orEmpty(req.Labels)},
		DriverConfiguration: &swarm.Driver{Name: OverlayDriver, Options: orEmpty(req.Options)},
		Internal:            req.Internal,
		Attachable:          req.Attachable,
		Ingress:             req.Ingress,
		Scope:               "swarm",
	}
	if req.Subnet.IsValid() || req.IPAMDriver != "" || len(req.IPAMOptions) > 0 {
		spec.IPAMOptions = &swarm.IPAMOptions{Driver: swarm.Driver{Name: "default", Options: req.IPAMOptions}}
		if req.Subnet.IsValid() {
			spec.IPAMOptions.Configs = []swarm.IPAMConfig{{Subnet: req.Subnet, Range: req.Range, Gateway: req.Gateway}}
		}
	}
	return &swarm.Network{
		Meta:        swarm.Meta{CreatedAt: now, UpdatedAt: now},
		Spec:        spec,
		DriverState: swarm.Driver{Name: OverlayDriver, Options: maps.Clone(orEmpty(req.Options))},
		IPAMOptions: &swarm.IPAMOptions{
			Driver:  swarm.Driver{Name: "default", Options: allocatedIPAMOptions(req.IPAMOptions)},
			Configs: []swarm.IPAMConfig{{Subnet: sub.Prefix, Range: rangeShown(req.Range), Gateway: sub.Gateway}},
		},
	}, nil
}

// allocatedIPAMOptions are the IPAM driver options an allocated network shows:
// those given, with serial allocation (addresses handed out after the last one
// given, as shoal's allocator does) said as swarmkit's allocator says it; none
// when none were given, as swarmkit leaves them.
func allocatedIPAMOptions(given map[string]string) map[string]string {
	if len(given) == 0 {
		return nil
	}
	out := maps.Clone(given)
	out["com.docker.network.ipam.serial"] = "true"
	return out
}

// rangeShown is the range kept with an allocation: only one the user gave.
func rangeShown(r netip.Prefix) netip.Prefix {
	if r.IsValid() {
		return r.Masked()
	}
	return netip.Prefix{}
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// defaultPools are the swarm's default address pools and subnet size (Docker's
// 10.0.0.0/8 and /24 when init set none).
func defaultPools(cl *swarm.Swarm) ([]netip.Prefix, int) {
	pools := cl.DefaultAddrPool
	if len(pools) == 0 {
		pools = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	}
	bits := int(cl.SubnetSize)
	if bits == 0 {
		bits = DefaultSubnetSize
	}
	return pools, bits
}

// ingressNetwork is the network `swarm init` creates for the routing mesh:
// Docker's 10.0.0.0/24 unless the default address pools leave it out.
func ingressNetwork(cl *swarm.Swarm, now time.Time) (*swarm.Network, error) {
	req := NetworkRequest{Name: IngressName, Ingress: true}
	pools, _ := defaultPools(cl)
	for _, p := range pools {
		if p.Contains(ingressSubnet.Addr()) && p.Bits() <= ingressSubnet.Bits() {
			req.Subnet = ingressSubnet
		}
	}
	n, err := newNetwork(req, cl, nil, now)
	if err != nil {
		return nil, err
	}
	n.ID = store.NewID()
	return n, nil
}

// Networks are the swarm's overlay networks.
func (c *Cluster) Networks(ctx context.Context) ([]swarm.Network, error) {
	if local, ok := c.workerNetworks(); ok {
		out := make([]swarm.Network, len(local))
		for i, n := range local {
			out[i] = *n
		}
		return out, nil
	}
	var out []swarm.Network
	err := c.view(func(tx store.ReadTx) error {
		all, err := tx.Networks()
		for _, n := range all {
			out = append(out, *n)
		}
		return err
	})
	return out, err
}

// Network finds an overlay network by ID, name or unique ID prefix.
func (c *Cluster) Network(ctx context.Context, ref string) (swarm.Network, error) {
	if local, ok := c.workerNetworks(); ok {
		n, err := findNetworkIn(local, ref)
		if err != nil {
			return swarm.Network{}, err
		}
		return *n, nil
	}
	var n *swarm.Network
	err := c.view(func(tx store.ReadTx) error {
		var err error
		n, err = findNetwork(tx, ref)
		return err
	})
	if err != nil {
		return swarm.Network{}, err
	}
	return *n, nil
}

// findNetwork resolves ref as dockerd does: a full ID, a name, a unique ID prefix.
func findNetwork(tx store.ReadTx, ref string) (*swarm.Network, error) {
	if n, err := tx.Network(ref); err == nil {
		return n, nil
	}
	if n, err := tx.NetworkByName(ref); err == nil {
		return n, nil
	}
	all, err := tx.Networks()
	if err != nil {
		return nil, err
	}
	return findNetworkIn(all, ref)
}

// findNetworkIn resolves ref among all: a full ID, a name, a unique ID prefix.
func findNetworkIn(all []*swarm.Network, ref string) (*swarm.Network, error) {
	var match []*swarm.Network
	for _, n := range all {
		if n.ID == ref || n.Spec.Name == ref {
			return n, nil
		}
		if strings.HasPrefix(n.ID, ref) {
			match = append(match, n)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return nil, errNotFoundf("network %s not found", ref)
	}
	return nil, errInvalidf("network %s is ambiguous (%d matches found based on ID prefix)", ref, len(match))
}

// RemoveNetwork deletes an overlay network no service or live task uses. It
// first waits, a bounded time, for the tasks that are leaving the network to
// end (waitNetworkDrained), so a stack's networks go with `docker stack rm`.
func (c *Cluster) RemoveNetwork(ctx context.Context, ref string) error {
	if err := c.waitNetworkDrained(ctx, ref); err != nil {
		return err
	}
	return c.update(ctx, func(tx store.Tx) error {
		n, err := findNetwork(tx, ref)
		if err != nil {
			return err
		}
		if err := networkInUse(tx, n); err != nil {
			return err
		}
		return tx.DeleteNetwork(n.ID)
	})
}

// networkInUse refuses the removal of a network a service is attached to (the
// ingress network: while a service publishes a port through it), or a task that
// has not ended holds an address in, in swarmkit's words.
func networkInUse(tx store.ReadTx, n *swarm.Network) error {
	services, err := tx.Services()
	if err != nil {
		return err
	}
	for _, s := range services {
		if attachedTo(s, n) {
			return errInUseBy(n, s)
		}
	}
	tasks, err := tx.Tasks()
	if err != nil {
		return err
	}
	for _, t := range tasks {
		if !taskstate.Terminal(t.Status.State) && holdsAddress(t, n.ID) {
			return errInvalidf("rpc error: code = FailedPrecondition desc = network %s is in use by task %s", n.ID, t.ID)
		}
	}
	return nil
}

// errInUseBy refuses the removal of n, which service s uses, in swarmkit's
// words (its own for the ingress network).
func errInUseBy(n *swarm.Network, s *swarm.Service) error {
	if n.Spec.Ingress {
		return errInvalidf("rpc error: code = FailedPrecondition desc = ingress network cannot be removed because service %s depends on it", s.ID)
	}
	return errInvalidf("rpc error: code = FailedPrecondition desc = network %s is in use by service %s", n.ID, s.ID)
}

// attachedTo reports whether a service's tasks join n.
func attachedTo(s *swarm.Service, n *swarm.Network) bool {
	if n.Spec.Ingress {
		return publishesIngress(s)
	}
	for _, a := range serviceNetworks(s.Spec) {
		if a.Target == n.ID {
			return true
		}
	}
	return false
}

// serviceNetworks are the swarm networks a service spec attaches its tasks to
// (not the node-local host and bridge networks: no addresses, no virtual IPs).
func serviceNetworks(spec swarm.ServiceSpec) []swarm.NetworkAttachmentConfig {
	return nodenet.SwarmNetworks(spec.TaskTemplate)
}

// publishesIngress reports whether a service publishes a port through the
// routing mesh.
func publishesIngress(s *swarm.Service) bool {
	for _, p := range s.Endpoint.Ports {
		if p.PublishMode == swarm.PortConfigPublishModeIngress || p.PublishMode == "" {
			return true
		}
	}
	return false
}

// PruneNetworks removes every overlay network nothing uses (never ingress) and
// names the removed.
func (c *Cluster) PruneNetworks(ctx context.Context, keep func(swarm.Network) bool) ([]string, error) {
	var removed []string
	err := c.update(ctx, func(tx store.Tx) error {
		removed = nil
		all, err := tx.Networks()
		if err != nil {
			return err
		}
		for _, n := range all {
			if n.Spec.Ingress || (keep != nil && keep(*n)) || networkInUse(tx, n) != nil {
				continue
			}
			if err := tx.DeleteNetwork(n.ID); err != nil {
				return err
			}
			removed = append(removed, n.Spec.Name)
		}
		return nil
	})
	return removed, err
}

// networkRequestFrom reads a create request of the Engine API.
func NetworkRequestFrom(req network.CreateRequest) (NetworkRequest, error) {
	out := NetworkRequest{
		Name: req.Name, Labels: req.Labels, Options: req.Options,
		Internal: req.Internal, Attachable: req.Attachable, Ingress: req.Ingress,
	}
	if req.IPAM == nil {
		return out, nil
	}
	out.IPAMDriver, out.IPAMOptions = req.IPAM.Driver, req.IPAM.Options
	if len(req.IPAM.Config) > 1 {
		return out, errNotImplementedf("shoal overlay networks have one IPv4 subnet: %d IPAM configs given", len(req.IPAM.Config))
	}
	for _, cfg := range req.IPAM.Config {
		out.Subnet, out.Range, out.Gateway = cfg.Subnet, cfg.IPRange, cfg.Gateway
	}
	return out, nil
}
