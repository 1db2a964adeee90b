// Package ipam hands out the addresses of the swarm's overlay networks: a subnet
// for each network (from the swarm's default address pools, or the one the user
// gave), and in each subnet one address per service VIP and per task attachment.
// It keeps nothing of its own: a Space is built from what the replicated store
// already says is taken (networks, services' VIPs, live tasks' attachments), so a
// new leader knows exactly what its predecessor allocated.
package ipam

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrExhausted is returned when a subnet or pool has no free address left.
var ErrExhausted = errors.New("no free address")

// Subnet is one network's address space: every address of Range (the whole
// subnet when no range was given) but the network and broadcast addresses and the
// gateway may be handed out.
type Subnet struct {
	Prefix  netip.Prefix
	Range   netip.Prefix
	Gateway netip.Addr
	used    map[netip.Addr]bool
}

// NewSubnet describes a subnet with gateway (the subnet's first address when not
// valid) and an optional range inside it.
func NewSubnet(prefix, rng netip.Prefix, gateway netip.Addr) (*Subnet, error) {
	prefix = prefix.Masked()
	if !prefix.Addr().Is4() {
		return nil, fmt.Errorf("subnet %s: only IPv4 subnets are supported", prefix)
	}
	if prefix.Bits() > 30 {
		return nil, fmt.Errorf("subnet %s: too small for tasks (at most /30)", prefix)
	}
	if !rng.IsValid() {
		rng = prefix
	}
	rng = rng.Masked()
	if !prefix.Contains(rng.Addr()) || rng.Bits() < prefix.Bits() {
		return nil, fmt.Errorf("ip range %s is not inside subnet %s", rng, prefix)
	}
	if !gateway.IsValid() {
		gateway = prefix.Addr().Next()
	}
	if !prefix.Contains(gateway) {
		return nil, fmt.Errorf("gateway %s is not inside subnet %s", gateway, prefix)
	}
	return &Subnet{Prefix: prefix, Range: rng, Gateway: gateway, used: map[netip.Addr]bool{}}, nil
}

// Use marks addr taken. It reports false when it already was.
func (s *Subnet) Use(addr netip.Addr) bool {
	if s.used[addr] {
		return false
	}
	s.used[addr] = true
	return true
}

// Free reports whether addr can be handed out.
func (s *Subnet) Free(addr netip.Addr) bool {
	return s.Range.Contains(addr) && addr != s.Gateway && addr != s.Prefix.Addr() &&
		addr != lastAddr(s.Prefix) && !s.used[addr]
}

// Allocate takes the first free address after cursor (wrapping around), so that a
// released address is not handed out again at once: connections and DNS answers
// that still name it die out first. An invalid cursor starts at the range's start.
func (s *Subnet) Allocate(cursor netip.Addr) (netip.Addr, error) {
	first, last := s.Range.Addr(), lastAddr(s.Range)
	start := cursor
	if !start.IsValid() || !s.Range.Contains(start) {
		start = last
	}
	a := start
	for {
		a = a.Next()
		if !a.IsValid() || !s.Range.Contains(a) {
			a = first
		}
		if s.Free(a) {
			s.used[a] = true
			return a, nil
		}
		if a == start {
			return netip.Addr{}, fmt.Errorf("subnet %s: %w", s.Prefix, ErrExhausted)
		}
	}
}

// lastAddr is the last address of p (its broadcast address for IPv4).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Overlaps reports whether a and b share an address.
func Overlaps(a, b netip.Prefix) bool { return a.Overlaps(b) }

// NextSubnet picks the first subnet of size bits from pools that overlaps none of
// taken: how a network created without --subnet gets one.
func NextSubnet(pools []netip.Prefix, bits int, taken []netip.Prefix) (netip.Prefix, error) {
	for _, pool := range pools {
		pool = pool.Masked()
		if bits < pool.Bits() || bits > 30 || !pool.Addr().Is4() {
			continue
		}
		step := uint32(1) << (32 - bits)
		count := uint64(1) << (bits - pool.Bits())
		b := pool.Addr().As4()
		base := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	candidates:
		for i := uint64(0); i < count; i++ {
			v := base + uint32(i)*step
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), bits)
			for _, t := range taken {
				if t.Overlaps(p) {
					continue candidates
				}
			}
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network: %w", ErrExhausted)
}
