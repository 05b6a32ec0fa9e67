package network

import (
	"net/netip"
	"strings"
	"testing"
)

func TestAllocate(t *testing.T) {
	subnet := netip.MustParsePrefix("10.9.0.0/29") // .0 net, .7 broadcast
	gw := netip.MustParseAddr("10.9.0.1")
	used := map[netip.Addr]bool{}
	var got []string
	for {
		a, err := allocate(subnet, subnet, gw, used)
		if err != nil {
			if !strings.Contains(err.Error(), "no available") {
				t.Fatal(err)
			}
			break
		}
		used[a] = true
		got = append(got, a.String())
	}
	if strings.Join(got, " ") != "10.9.0.2 10.9.0.3 10.9.0.4 10.9.0.5 10.9.0.6" {
		t.Errorf("allocated %v", got)
	}
	delete(used, netip.MustParseAddr("10.9.0.4"))
	if a, _ := allocate(subnet, subnet, gw, used); a.String() != "10.9.0.4" {
		t.Errorf("released address not reused: %v", a)
	}
	// An ip-range narrows the pool.
	r := netip.MustParsePrefix("10.9.0.4/30")
	if a, _ := allocate(subnet, r, gw, map[netip.Addr]bool{}); a.String() != "10.9.0.4" {
		t.Errorf("from range: %v", a)
	}
}

func TestCheckStatic(t *testing.T) {
	subnet := netip.MustParsePrefix("10.9.0.0/24")
	gw := netip.MustParseAddr("10.9.0.1")
	used := map[netip.Addr]bool{netip.MustParseAddr("10.9.0.9"): true}
	for a, want := range map[string]string{
		"10.9.1.5":   "does not belong",
		"10.9.0.1":   "gateway",
		"10.9.0.255": "broadcast",
		"10.9.0.9":   "already in use",
		"10.9.0.10":  "",
	} {
		err := checkStatic(subnet, gw, netip.MustParseAddr(a), used)
		if (want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", a, err, want)
		}
	}
	if l := lastAddr(netip.MustParsePrefix("fd00::/120")); l.String() != "fd00::ff" {
		t.Errorf("last of fd00::/120 = %s", l)
	}
}
