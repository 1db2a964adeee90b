package bridge

import (
	"fmt"
	"net"
	"net/netip"
)

// gatewayOf returns the bridge's own address: the first address of the subnet.
func gatewayOf(subnet netip.Prefix) netip.Addr {
	return subnet.Masked().Addr().Next()
}

// lastUsable returns the highest address of subnet that is not the broadcast address.
func lastUsable(subnet netip.Prefix) netip.Addr {
	a := subnet.Masked().Addr().As4()
	hostBits := 32 - subnet.Bits()
	for i := 3; i >= 0 && hostBits > 0; i-- {
		n := min(hostBits, 8)
		a[i] |= byte(1<<n - 1)
		hostBits -= n
	}
	return netip.AddrFrom4(a).Prev()
}

// allocateIP picks the next free address after the cursor, wrapping around, and
// records it as the new cursor. Addresses in use are those of st's sandboxes.
func (st *state) allocateIP() (netip.Addr, error) {
	used := make(map[netip.Addr]bool, len(st.Sandboxes))
	for _, sb := range st.Sandboxes {
		used[sb.IP] = true
	}
	first := gatewayOf(st.Subnet).Next()
	last := lastUsable(st.Subnet)
	start := first
	if st.LastIP.IsValid() && st.Subnet.Contains(st.LastIP) && st.LastIP.Less(last) && !st.LastIP.Less(first) {
		start = st.LastIP.Next()
	}
	a := start
	for {
		if !used[a] {
			st.LastIP = a
			return a, nil
		}
		if a == last {
			a = first
		} else {
			a = a.Next()
		}
		if a == start {
			return netip.Addr{}, unavailableError{msg: fmt.Sprintf("no free address in %s", st.Subnet)}
		}
	}
}

// macFor derives a locally administered MAC from an IPv4 address, as Docker does, so
// the same address always carries the same MAC and neighbours' ARP caches stay valid.
func macFor(ip netip.Addr) net.HardwareAddr {
	a := ip.As4()
	return net.HardwareAddr{0x02, 0x42, a[0], a[1], a[2], a[3]}
}
