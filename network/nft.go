package network

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Berth's packet rules live in nftables tables of its own daemon (see
// Options.Table: "berth" for the default one), in family ip and, while a
// network has IPv6, in family ip6 — nowhere else. The table is rendered
// whole from the manager's state and replaced in one netlink transaction
// at every change, so it never drifts from the state, even after a crash.

// natNet is what the table needs to know of one bridge network.
type natNet struct {
	bridge   string
	subnet   netip.Prefix
	subnet6  netip.Prefix // invalid without IPv6
	internal bool
}

// portRule is one published port: traffic for a local address (hostIP,
// or any when invalid) and hostPort goes to addr:port.
type portRule struct {
	proto    uint8 // unix.IPPROTO_TCP or _UDP
	hostIP   netip.Addr
	hostPort uint16
	addr     netip.Addr
	port     uint16
}

// renderTable replaces the tables with the rules for nets and ports, in
// one transaction; a family with no network is deleted.
func renderTable(c *nftables.Conn, tableName string, nets []natNet, ports []portRule) error {
	var nets6 []natNet
	for _, n := range nets {
		if n.subnet6.IsValid() {
			nets6 = append(nets6, n)
		}
	}
	renderFamily(c, tableName, nftables.TableFamilyIPv4, nets, ports)
	renderFamily(c, tableName, nftables.TableFamilyIPv6, nets6, nil)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: replace the %s tables: %w", tableName, err)
	}
	return nil
}

// renderFamily queues the table of one family. IPv6 has no published
// ports (they are IPv4 here).
func renderFamily(c *nftables.Conn, tableName string, family nftables.TableFamily, nets []natNet, ports []portRule) {
	t := &nftables.Table{Family: family, Name: tableName}
	c.AddTable(t) // create if missing, so the delete or flush below cannot fail
	if len(nets) == 0 {
		c.DelTable(t)
		return
	}
	c.FlushTable(t)
	v6 := family == nftables.TableFamilyIPv6
	accept := nftables.ChainPolicyAccept
	chain := func(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		ch := &nftables.Chain{Name: name, Table: t}
		if hook != nil {
			ch.Type, ch.Hooknum, ch.Priority, ch.Policy = typ, hook, prio, &accept
		}
		return c.AddChain(ch)
	}
	post := chain("postrouting", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	fwd := chain("forward", nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter)
	rule := func(ch *nftables.Chain, parts ...[]expr.Any) {
		var e []expr.Any
		for _, p := range parts {
			e = append(e, p...)
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: e})
	}
	masq := []expr.Any{&expr.Masq{}}

	if !v6 {
		// Published ports: traffic to a local address, from outside or
		// from the host itself.
		pre := chain("prerouting", nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
		out := chain("output", nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
		pub := chain("ports", "", nil, nil)
		for _, ch := range []*nftables.Chain{pre, out} {
			rule(ch, fibLocalDaddr(), []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: pub.Name}})
		}
		for _, p := range ports {
			var e []expr.Any
			if p.hostIP.IsValid() && !p.hostIP.IsUnspecified() {
				e = append(e, matchAddr(false, netip.PrefixFrom(p.hostIP, 32))...)
			}
			e = append(e,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p.proto}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be16(p.hostPort)},
				&expr.Immediate{Register: 1, Data: p.addr.AsSlice()},
				&expr.Immediate{Register: 2, Data: be16(p.port)},
				&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
			)
			rule(pub, e)
		}
	}
	for _, n := range nets {
		inB, outB := ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, n.bridge), ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.bridge)
		notIn, notOut := ifname(expr.MetaKeyIIFNAME, expr.CmpOpNeq, n.bridge), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, n.bridge)
		// Outbound NAT, and (IPv4) the host's own loopback traffic DNATed
		// to a container: its 127.0.0.1 source cannot leave on a bridge.
		subnet := n.subnet
		if v6 {
			subnet = n.subnet6
		}
		if !n.internal {
			rule(post, matchAddr(true, subnet), notOut, masq)
		}
		if !v6 {
			rule(post, matchAddr(true, netip.MustParsePrefix("127.0.0.0/8")), outB, masq)
			// Hairpin: a container reaching a port published by another
			// on its own bridge, through a host address. The reply would
			// go straight back over the bridge from the wrong address;
			// from the bridge's gateway it comes back through the host.
			rule(post, matchAddr(true, n.subnet), outB, dnatted(), masq)
		}
		// Networks do not reach each other.
		for _, o := range nets {
			if o.bridge != n.bridge {
				rule(fwd, inB, ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, o.bridge), verdict(expr.VerdictDrop))
			}
		}
		if n.internal {
			rule(fwd, inB, notOut, verdict(expr.VerdictDrop))
			rule(fwd, outB, notIn, verdict(expr.VerdictDrop))
			continue
		}
		rule(fwd, inB, verdict(expr.VerdictAccept))
		rule(fwd, outB, verdict(expr.VerdictAccept))
	}
}

// dnatted matches connections whose destination was rewritten by DNAT
// ("ct status dnat").
func dnatted() []expr.Any {
	const ipsDstNat = 1 << 5 // IPS_DST_NAT
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binary.NativeEndian.AppendUint32(nil, ipsDstNat), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// fibLocalDaddr matches packets whose destination is an address of this
// host ("fib daddr type local").
func fibLocalDaddr() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, unix.RTN_LOCAL)},
	}
}

// matchAddr matches the source (src) or destination address of the
// network header against p, IPv4 or IPv6 by p's family.
func matchAddr(src bool, p netip.Prefix) []expr.Any {
	size, offset := uint32(4), uint32(16)
	if src {
		offset = 12
	}
	if p.Addr().Is6() {
		size, offset = 16, 24
		if src {
			offset = 8
		}
	}
	mask := make([]byte, size)
	for i := 0; i < p.Bits(); i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: size},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: size, Mask: mask, Xor: make([]byte, size)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Masked().Addr().AsSlice()},
	}
}

// ifname compares the input or output interface name.
func ifname(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: ifnameBytes(name)},
	}
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

func ifnameBytes(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
