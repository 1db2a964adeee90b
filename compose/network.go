package compose

import (
	"fmt"
	"net/netip"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/network"
)

// networkCreate is the request that creates a stack's network: overlay and
// swarm-scoped unless the file says otherwise, labelled with the stack.
func networkCreate(stack, key string, n types.NetworkConfig) (Network, error) {
	if n.External {
		return Network{Key: key, External: true, Create: network.CreateRequest{Name: n.Name}}, nil
	}
	driver := n.Driver
	if driver == "" {
		driver = "overlay"
	}
	req := network.CreateRequest{
		Name:       n.Name,
		Driver:     driver,
		Scope:      "swarm",
		EnableIPv4: n.EnableIPv4,
		EnableIPv6: n.EnableIPv6,
		Internal:   n.Internal,
		Attachable: n.Attachable,
		Options:    n.DriverOpts,
		Labels:     withNamespace(stack, n.Labels),
	}
	if n.Ipam.Driver != "" || len(n.Ipam.Config) > 0 {
		ipam := &network.IPAM{Driver: n.Ipam.Driver, Options: n.Ipam.Options}
		for _, pool := range n.Ipam.Config {
			c, err := ipamConfig(pool)
			if err != nil {
				return Network{}, err
			}
			ipam.Config = append(ipam.Config, c)
		}
		req.IPAM = ipam
	}
	return Network{Key: key, Create: req}, nil
}

func ipamConfig(pool *types.IPAMPool) (network.IPAMConfig, error) {
	var c network.IPAMConfig
	if pool == nil {
		return c, nil
	}
	var err error
	if pool.Subnet != "" {
		if c.Subnet, err = netip.ParsePrefix(pool.Subnet); err != nil {
			return c, fmt.Errorf("ipam subnet: %w", err)
		}
	}
	if pool.IPRange != "" {
		if c.IPRange, err = netip.ParsePrefix(pool.IPRange); err != nil {
			return c, fmt.Errorf("ipam ip_range: %w", err)
		}
	}
	if pool.Gateway != "" {
		if c.Gateway, err = netip.ParseAddr(pool.Gateway); err != nil {
			return c, fmt.Errorf("ipam gateway: %w", err)
		}
	}
	for name, addr := range pool.AuxiliaryAddresses {
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return c, fmt.Errorf("ipam aux_address %s: %w", name, err)
		}
		if c.AuxAddress == nil {
			c.AuxAddress = map[string]netip.Addr{}
		}
		c.AuxAddress[name] = a
	}
	return c, nil
}
