package network

import (
	"fmt"
	"net/netip"

	"github.com/berth-project/berth/errdefs"
)

// allocate returns the lowest free address of pool (the network's
// ip-range, or its subnet) that is not in used, not the network's own
// address, its gateway or (for IPv4) its broadcast address.
func allocate(subnet, pool netip.Prefix, gateway netip.Addr, used map[netip.Addr]bool) (netip.Addr, error) {
	last := lastAddr(subnet)
	for a := pool.Masked().Addr(); pool.Contains(a); a = a.Next() {
		if a == subnet.Masked().Addr() || a == gateway || (a.Is4() && a == last) || used[a] {
			continue
		}
		return a, nil
	}
	return netip.Addr{}, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("no available IPv4 addresses on this network's address pools: %s", pool))
}

// checkStatic checks that a requested address is usable on the network.
func checkStatic(subnet netip.Prefix, gateway, a netip.Addr, used map[netip.Addr]bool) error {
	switch {
	case !subnet.Contains(a):
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid address %s: it does not belong to any of this network's subnets (%s)", a, subnet))
	case a == subnet.Masked().Addr() || a == gateway || (a.Is4() && a == lastAddr(subnet)):
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid address %s: it is the network's own, gateway or broadcast address", a))
	case used[a]:
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("Address already in use: %s", a))
	}
	return nil
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	host := len(b)*8 - p.Bits()
	for i := len(b) - 1; i >= 0 && host > 0; i-- {
		n := min(host, 8)
		b[i] |= byte(1<<n - 1)
		host -= n
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
