package overlay

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Chains of the relay, present while it is.
const (
	chainRelay = "relay" // filter, prerouting after DNAT: marks relayed connections' packets
	chainInput = "input" // filter, input: the relay's port from the mesh only
)

// Conntrack directions, as ct direction loads them (one byte).
const (
	ctDirOriginal = 0
	ctDirReply    = 1
)

// relayPrerouting marks the packets of relayed connections so that policy
// routing sends them on (see relay.go):
//   - on the published port's node, a new connection DNATed to a backend of
//     Relay.Backends, from outside the ingress network, gets that backend's
//     node's markIngress (every packet of it: routing is per packet);
//   - on the same node, its replies arriving from the relay get the sending
//     peer's markIngress too, so that the reverse path check finds the
//     ingress subnet behind the relay;
//   - on the task's node, a connection arriving from the relay gets the
//     sending peer's markTask, kept in its conntrack mark, and its replies
//     from the task get it back.
//
// The sending peer is known by the inner frame's source MAC, made from its
// mesh address.
func (rs ruleset) relayPrerouting(conn *nftables.Conn, t *nftables.Table, add func(...[]expr.Any)) error {
	r := rs.state.Relay
	in, hasIngress := rs.ingress()
	notRelay := []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifnameBytes(RelayDevice)}}
	if len(r.Backends) > 0 && hasIngress {
		backends := &nftables.Set{Table: t, Anonymous: true, Constant: true, IsMap: true,
			KeyType: nftables.TypeIPAddr, DataType: nftables.TypeMark}
		var elems []nftables.SetElement
		for b, node := range r.Backends {
			a := b.As4()
			elems = append(elems, nftables.SetElement{Key: a[:],
				Val: binaryutil.NativeEndian.PutUint32(rs.relayMark(markIngress, node))})
		}
		if err := conn.AddSet(backends, elems); err != nil {
			return fmt.Errorf("add relayed backends: %w", err)
		}
		add(notRelay, ctDirection(ctDirOriginal), ctStatus(ipsDstNAT),
			matchAddr(offSaddr, expr.CmpOpNeq, in.Subnet),
			[]expr.Any{
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offDaddr, Len: 4},
				&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: backends.Name, SetID: backends.ID},
				&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
			})
	}
	for _, c := range []struct {
		dir uint8
		tag uint32
	}{{ctDirReply, markIngress}, {ctDirOriginal, markTask}} {
		peers := &nftables.Set{Table: t, Anonymous: true, Constant: true, IsMap: true,
			KeyType: nftables.TypeEtherAddr, DataType: nftables.TypeMark}
		var elems []nftables.SetElement
		for _, a := range r.Peers {
			elems = append(elems, nftables.SetElement{Key: relayMAC(a),
				Val: binaryutil.NativeEndian.PutUint32(rs.relayMark(c.tag, a))})
		}
		if len(elems) == 0 {
			continue
		}
		if err := conn.AddSet(peers, elems); err != nil {
			return fmt.Errorf("add relay peers: %w", err)
		}
		set := []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
			&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: peers.Name, SetID: peers.ID},
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
		}
		if c.dir == ctDirOriginal {
			set = append(set, &expr.Ct{Key: expr.CtKeyMARK, SourceRegister: true, Register: 1})
		}
		add(matchIfname(expr.MetaKeyIIFNAME, RelayDevice), ctDirection(c.dir), set)
	}
	// Replies of the task's node's relayed connections, from its tasks.
	add(matchIfnamePrefix(expr.MetaKeyIIFNAME, hostEndPrefix), ctDirection(ctDirReply), []expr.Any{
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 2, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(markTagMask), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 2, Data: binaryutil.NativeEndian.PutUint32(markTask)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	})
	return nil
}

// relayInput drops the relay's port unless it comes through WireGuard: a
// packet sent to it from anywhere else would be decapsulated with whatever
// inner source its sender chose.
func (rs ruleset) relayInput(add func(...[]expr.Any)) {
	add(matchL4Proto(unix.IPPROTO_UDP), []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(RelayPort)},
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifnameBytes(rs.state.Device)},
	}, verdict(expr.VerdictDrop))
}

// relayClamp fits TCP's MSS to the relay's smaller MTU in the SYNs that
// leave through it, so neither end sends what the relay cannot carry whole.
func relayClamp() []expr.Any {
	return concat(matchIfname(expr.MetaKeyOIFNAME, RelayDevice), matchL4Proto(unix.IPPROTO_TCP), []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x02}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0}},
		&expr.Rt{Register: 1, Key: expr.RtTCPMSS},
		&expr.Exthdr{SourceRegister: 1, Type: 2, Offset: 2, Len: 2, Op: expr.ExthdrOpTcpopt},
	})
}

// relayIsolate: relayed connections reach the ingress network's tasks, from
// the relay on the task's node, into it on the published port's node.
func (rs ruleset) relayIsolate(add func(...[]expr.Any)) {
	in, ok := rs.ingress()
	if !ok {
		return
	}
	add(matchIfname(expr.MetaKeyIIFNAME, RelayDevice), ctDirection(ctDirOriginal),
		matchAddr(offDaddr, expr.CmpOpEq, in.Subnet), verdict(expr.VerdictAccept))
	add(matchIfname(expr.MetaKeyOIFNAME, RelayDevice), ctStatus(ipsDstNAT),
		matchAddr(offDaddr, expr.CmpOpEq, in.Subnet), verdict(expr.VerdictAccept))
}

func ctDirection(dir uint8) []expr.Any {
	return []expr.Any{&expr.Ct{Key: expr.CtKeyDIRECTION, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{dir}}}
}

func ifnameBytes(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}
