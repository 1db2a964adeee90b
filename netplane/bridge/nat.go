package bridge

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Names of the chains in the Network's nftables table.
const (
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
	chainPublished   = "published"
)

var loopbackNet = netip.MustParsePrefix("127.0.0.0/8")

// ipsStatusDstNAT is IPS_DST_NAT from the kernel's conntrack status bits.
const ipsStatusDstNAT = 0x20

// natRuleset is everything the nftables table holds, derived from the Network's state.
type natRuleset struct {
	table  string
	bridge string
	subnet netip.Prefix
	ports  []publishedPort
	// balanced are the ingress ports of services, each over its tasks.
	balanced []balancedPort
}

// publishedPort is one DNAT from a host port to a sandbox.
type publishedPort struct {
	PortMapping
	IP netip.Addr
}

// apply replaces the table's content with rs in one netlink batch, so the kernel
// switches from the old rules to the new ones atomically and existing connections
// keep their conntrack NAT entries.
func (rs natRuleset) apply(conn *nftables.Conn) error {
	t := &nftables.Table{Name: rs.table, Family: nftables.TableFamilyIPv4}
	conn.AddTable(t)
	conn.FlushTable(t)

	natChain := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return conn.AddChain(&nftables.Chain{
			Name: name, Table: t, Type: nftables.ChainTypeNAT, Hooknum: hook, Priority: prio,
		})
	}
	pre := natChain(chainPrerouting, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
	out := natChain(chainOutput, nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
	post := natChain(chainPostrouting, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	pub := conn.AddChain(&nftables.Chain{Name: chainPublished, Table: t})

	// Only traffic addressed to this host is published; the same rule serves traffic
	// from outside (prerouting) and from the host itself, 127.0.0.1 included (output).
	for _, c := range []*nftables.Chain{pre, out} {
		conn.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: []expr.Any{
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: chainPublished},
		}})
	}

	// Sandboxes reach the outside world with the host's address.
	conn.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: concat(
		matchSaddr(rs.subnet),
		matchIfname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, rs.bridge),
		[]expr.Any{&expr.Masq{}},
	)})
	// 127.0.0.1:<port> on the host was DNATed towards the bridge; the sandbox cannot
	// answer a loopback source, so give it the bridge's address.
	conn.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: concat(
		matchSaddr(loopbackNet),
		matchIfname(expr.MetaKeyOIFNAME, expr.CmpOpEq, rs.bridge),
		[]expr.Any{&expr.Masq{}},
	)})
	// A sandbox reaching a published port of a sandbox on the same bridge: without
	// masquerade the reply would go back over the bridge directly, un-NATed (unless
	// br_netfilter happens to be on). The input interface is not known in postrouting,
	// so the source subnet stands for "came from the bridge".
	conn.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: concat(
		matchSaddr(rs.subnet),
		matchIfname(expr.MetaKeyOIFNAME, expr.CmpOpEq, rs.bridge),
		[]expr.Any{
			&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(ipsStatusDstNAT),
				Xor:  binaryutil.NativeEndian.PutUint32(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
			&expr.Masq{},
		},
	)})

	ports := append([]publishedPort(nil), rs.ports...)
	sort.Slice(ports, func(i, j int) bool {
		if ports[i].HostPort != ports[j].HostPort {
			return ports[i].HostPort < ports[j].HostPort
		}
		return ports[i].Protocol < ports[j].Protocol
	})
	for _, p := range ports {
		conn.AddRule(&nftables.Rule{Table: t, Chain: pub, Exprs: dnatExprs(p)})
	}
	for _, p := range rs.balanced {
		if err := addBalancedRule(conn, t, pub, p); err != nil {
			return err
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("apply nftables table %s: %w", rs.table, err)
	}
	return nil
}

// deleteTable removes the table and everything in it; a missing table is not an error.
func deleteTable(conn *nftables.Conn, name string) error {
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return fmt.Errorf("list nftables tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == name {
			conn.DelTable(t)
			if err := conn.Flush(); err != nil {
				return fmt.Errorf("delete nftables table %s: %w", name, err)
			}
		}
	}
	return nil
}

// dnatExprs matches protocol and destination port and rewrites the destination to the
// sandbox's address and container port.
func dnatExprs(p publishedPort) []expr.Any {
	ip := p.IP.As4()
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protoNumber(p.Protocol)}},
		// The destination port sits at offset 2 in TCP, UDP and SCTP headers alike.
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p.HostPort)},
		&expr.Immediate{Register: 1, Data: ip[:]},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(p.ContainerPort)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4,
			RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}
}

// matchSaddr matches IPv4 packets whose source address is inside prefix.
func matchSaddr(prefix netip.Prefix) []expr.Any {
	mask := make([]byte, 4)
	binary.BigEndian.PutUint32(mask, ^uint32(0)<<(32-prefix.Bits()))
	netAddr := prefix.Masked().Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: netAddr[:]},
	}
}

// matchIfname compares the input or output interface name with name.
func matchIfname(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: ifnameBytes(name)},
	}
}

// ifnameBytes pads an interface name to IFNAMSIZ, as the kernel stores it.
func ifnameBytes(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func protoNumber(proto string) byte {
	switch proto {
	case "udp":
		return unix.IPPROTO_UDP
	case "sctp":
		return unix.IPPROTO_SCTP
	default:
		return unix.IPPROTO_TCP
	}
}

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
