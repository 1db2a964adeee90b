package overlay

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Chains of the Plane's table.
const (
	chainGuard       = "guard"       // filter, prerouting: sources a task may not send
	chainForward     = "forward"     // filter: jumps to isolate for overlay traffic
	chainIsolate     = "isolate"     // what overlay traffic may pass; the rest is dropped
	chainPrerouting  = "prerouting"  // nat: VIPs to their backends
	chainPostrouting = "postrouting" // nat: hairpinned VIP connections, the routing mesh's masquerade
)

// ipsDstNAT is IPS_DST_NAT from the kernel's conntrack status bits: the
// connection's destination was rewritten (a published port, here).
const ipsDstNAT = 0x20

// icmpPortUnreachable is ICMP's destination-unreachable code 3: what a host
// without a listener answers, so clients fail at once.
const icmpPortUnreachable = 3

// ruleset is the whole content of the Plane's table for one State.
type ruleset struct {
	table string
	mesh  netip.Prefix
	state State
}

// apply replaces the table's content with rs in one netlink batch.
func (rs ruleset) apply(conn *nftables.Conn) error {
	t := &nftables.Table{Name: rs.table, Family: nftables.TableFamilyIPv4}
	conn.AddTable(t)
	conn.FlushTable(t)
	accept := nftables.ChainPolicyAccept
	guard := conn.AddChain(&nftables.Chain{Name: chainGuard, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw, Policy: &accept})
	forward := conn.AddChain(&nftables.Chain{Name: chainForward, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	isolate := conn.AddChain(&nftables.Chain{Name: chainIsolate, Table: t})
	pre := conn.AddChain(&nftables.Chain{Name: chainPrerouting, Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
	post := conn.AddChain(&nftables.Chain{Name: chainPostrouting, Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})

	rule := func(c *nftables.Chain, parts ...[]expr.Any) {
		conn.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: concat(parts...)})
	}
	rule(guard, guardRule()...)
	if relayActive(rs.state) {
		rule(forward, relayClamp())
	}
	rs.forwardRules(func(parts ...[]expr.Any) { rule(forward, parts...) })
	rs.isolateRules(func(parts ...[]expr.Any) { rule(isolate, parts...) })
	if relayActive(rs.state) {
		relay := conn.AddChain(&nftables.Chain{Name: chainRelay, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(*nftables.ChainPriorityNATDest + 10), Policy: &accept})
		if err := rs.relayPrerouting(conn, t, func(parts ...[]expr.Any) { rule(relay, parts...) }); err != nil {
			return err
		}
		input := conn.AddChain(&nftables.Chain{Name: chainInput, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
		rs.relayInput(func(parts ...[]expr.Any) { rule(input, parts...) })
	}
	if err := rs.vipRules(conn, t, func(parts ...[]expr.Any) { rule(pre, parts...) }); err != nil {
		return err
	}
	rs.hairpinRules(func(parts ...[]expr.Any) { rule(post, parts...) })
	if in, ok := rs.ingress(); ok && rs.state.Device != "" {
		// Published ports of this node balanced to tasks of others: the reply
		// must come back here to be un-NATed, so the task must see this
		// node's mesh address.
		rule(post, matchIfname(expr.MetaKeyOIFNAME, rs.state.Device),
			matchAddr(offDaddr, expr.CmpOpEq, in.Subnet),
			matchAddr(offSaddr, expr.CmpOpNeq, in.Subnet),
			matchAddr(offSaddr, expr.CmpOpNeq, rs.mesh),
			[]expr.Any{&expr.Masq{}})
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("write nftables table %s: %w", rs.table, err)
	}
	return nil
}

// guardRule drops what a task sends from a source that is not routed back
// through its host end: another task's address, an unused one of its
// network, any other. It is the reverse path filter's strict check ("fib
// saddr . iif oif missing drop"), in the Plane's own table so that no sysctl
// weakens it (the kernel applies the larger of conf/all/rp_filter and the
// host end's, and anything may rewrite the host end's after it is made). In
// prerouting at raw priority, so a spoofed packet makes no conntrack entry.
// The counter shows what it dropped.
func guardRule() [][]expr.Any {
	return [][]expr.Any{
		matchIfnamePrefix(expr.MetaKeyIIFNAME, hostEndPrefix),
		{
			&expr.Fib{Register: 1, FlagSADDR: true, FlagIIF: true, ResultOIF: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
			&expr.Counter{},
		},
		verdict(expr.VerdictDrop),
	}
}

// forwardRules: replies pass; VIPs without backends are refused at once, not
// left to time out; everything to or from an overlay goes through isolate.
func (rs ruleset) forwardRules(add func(...[]expr.Any)) {
	add(ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), verdict(expr.VerdictAccept))
	for _, v := range rs.state.VIPs {
		if len(v.Backends) > 0 {
			continue
		}
		dst := matchAddr(offDaddr, expr.CmpOpEq, netip.PrefixFrom(v.Addr, 32))
		add(dst, matchL4Proto(unix.IPPROTO_TCP), []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}})
		add(dst, []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: icmpPortUnreachable}})
	}
	jump := []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chainIsolate}}
	add(matchIfnamePrefix(expr.MetaKeyIIFNAME, hostEndPrefix), jump)
	add(matchIfnamePrefix(expr.MetaKeyOIFNAME, hostEndPrefix), jump)
	if d := rs.state.Device; d != "" {
		add(matchIfname(expr.MetaKeyIIFNAME, d), jump)
		add(matchIfname(expr.MetaKeyOIFNAME, d), jump)
	}
	if relayActive(rs.state) {
		add(matchIfname(expr.MetaKeyIIFNAME, RelayDevice), jump)
		add(matchIfname(expr.MetaKeyOIFNAME, RelayDevice), jump)
	}
}

// isolateRules: a network's tasks reach each other only; the ingress network
// and the mesh reach each other; published ports reach ingress tasks of
// other nodes. The rest is dropped.
func (rs ruleset) isolateRules(add func(...[]expr.Any)) {
	for _, n := range rs.state.Networks {
		add(matchAddr(offSaddr, expr.CmpOpEq, n.Subnet), matchAddr(offDaddr, expr.CmpOpEq, n.Subnet), verdict(expr.VerdictAccept))
	}
	if in, ok := rs.ingress(); ok {
		add(matchAddr(offSaddr, expr.CmpOpEq, rs.mesh), matchAddr(offDaddr, expr.CmpOpEq, in.Subnet), verdict(expr.VerdictAccept))
		add(matchAddr(offSaddr, expr.CmpOpEq, in.Subnet), matchAddr(offDaddr, expr.CmpOpEq, rs.mesh), verdict(expr.VerdictAccept))
		if d := rs.state.Device; d != "" {
			add(matchIfname(expr.MetaKeyOIFNAME, d), matchAddr(offDaddr, expr.CmpOpEq, in.Subnet),
				ctStatus(ipsDstNAT), verdict(expr.VerdictAccept))
		}
	}
	if relayActive(rs.state) {
		rs.relayIsolate(add)
	}
	add(verdict(expr.VerdictDrop))
}

// vipRules DNATs each VIP with backends to one of them in turn: a
// round-robin number picks the backend from an anonymous map. All ports go;
// conntrack keeps a connection on the backend it got.
func (rs ruleset) vipRules(conn *nftables.Conn, t *nftables.Table, add func(...[]expr.Any)) error {
	for _, v := range rs.state.VIPs {
		if len(v.Backends) == 0 {
			continue
		}
		backends := &nftables.Set{Table: t, Anonymous: true, Constant: true, IsMap: true,
			KeyType: nftables.TypeInteger, DataType: nftables.TypeIPAddr}
		elems := make([]nftables.SetElement, len(v.Backends))
		for i, b := range v.Backends {
			a := b.As4()
			elems[i] = nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(uint32(i)), Val: a[:]}
		}
		if err := conn.AddSet(backends, elems); err != nil {
			return fmt.Errorf("add backends of VIP %s: %w", v.Addr, err)
		}
		add(matchAddr(offDaddr, expr.CmpOpEq, netip.PrefixFrom(v.Addr, 32)), []expr.Any{
			&expr.Numgen{Register: 1, Modulus: uint32(len(v.Backends)), Type: unix.NFT_NG_INCREMENTAL},
			&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: backends.Name, SetID: backends.ID},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
		})
	}
	return nil
}

// hairpinRules give a task that a VIP sent to itself the network's gateway
// as the source: with its own, it would answer itself directly and never
// through the node that must undo the DNAT. NAT chains see only a
// connection's first packet, so a rule per backend costs little.
func (rs ruleset) hairpinRules(add func(...[]expr.Any)) {
	for _, v := range rs.state.VIPs {
		for _, b := range v.Backends {
			n, ok := rs.networkOf(b)
			if !ok {
				continue
			}
			self := netip.PrefixFrom(b, 32)
			gw := n.Subnet.Addr().Next().As4()
			add(matchAddr(offSaddr, expr.CmpOpEq, self), matchAddr(offDaddr, expr.CmpOpEq, self), []expr.Any{
				&expr.Immediate{Register: 1, Data: gw[:]},
				&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
			})
		}
	}
}

func (rs ruleset) networkOf(a netip.Addr) (Network, bool) {
	for _, n := range rs.state.Networks {
		if n.Subnet.Contains(a) {
			return n, true
		}
	}
	return Network{}, false
}

func (rs ruleset) ingress() (Network, bool) {
	for _, n := range rs.state.Networks {
		if n.Ingress {
			return n, true
		}
	}
	return Network{}, false
}

// deleteTable removes the table and everything in it; a missing table is not
// an error.
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

// Offsets of the addresses in the IPv4 header.
const (
	offSaddr = 12
	offDaddr = 16
)

// matchAddr compares the source or destination address with a prefix.
func matchAddr(offset uint32, op expr.CmpOp, p netip.Prefix) []expr.Any {
	load := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}
	netAddr := p.Masked().Addr().As4()
	cmp := &expr.Cmp{Op: op, Register: 1, Data: netAddr[:]}
	if p.Bits() == 32 {
		return []expr.Any{load, cmp}
	}
	mask := make([]byte, 4)
	binary.BigEndian.PutUint32(mask, ^uint32(0)<<(32-p.Bits()))
	return []expr.Any{load, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)}, cmp}
}

// matchIfname matches an input or output interface by its whole name.
func matchIfname(key expr.MetaKey, name string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameBytes(name)}}
}

// matchIfnamePrefix matches interfaces whose name starts with prefix, as
// nft's "sov*": only the prefix's bytes are compared.
func matchIfnamePrefix(key expr.MetaKey, prefix string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(prefix)}}
}

func matchL4Proto(proto byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}}}
}

// ctState matches connections in any of the given conntrack states.
func ctState(bits uint32) []expr.Any { return ctBits(expr.CtKeySTATE, bits) }

// ctStatus matches connections with any of the given conntrack status bits.
func ctStatus(bits uint32) []expr.Any { return ctBits(expr.CtKeySTATUS, bits) }

func ctBits(key expr.CtKey, bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: key},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

func verdict(kind expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: kind}} }

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
