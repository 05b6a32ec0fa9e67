package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/berth-project/berth/errdefs"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// candidatePools are the subnets networks get when none is asked for, in
// order (docker's default address pools): the default network takes the
// first free one.
func candidatePools() []netip.Prefix {
	var out []netip.Prefix
	for i := 17; i <= 31; i++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16))
	}
	for i := 0; i < 256; i += 16 {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 20))
	}
	return out
}

// taken lists the subnets in use: other networks' and the host's routes
// (a network must not shadow a route the host has).
func (m *Manager) taken(except string) []netip.Prefix {
	var out []netip.Prefix
	for id, n := range m.st.Networks {
		if id != except && n.Subnet.IsValid() {
			out = append(out, n.Subnet)
		}
	}
	routes, _ := netlink.RouteList(nil, netlink.FAMILY_V4)
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		if p, ok := netip.AddrFromSlice(r.Dst.IP); ok {
			if ones, _ := r.Dst.Mask.Size(); ones > 0 { // a default route is 0.0.0.0/0
				out = append(out, netip.PrefixFrom(p.Unmap(), ones))
			}
		}
	}
	return out
}

func overlapsAny(p netip.Prefix, list []netip.Prefix) (netip.Prefix, bool) {
	for _, q := range list {
		if p.Overlaps(q) {
			return q, true
		}
	}
	return netip.Prefix{}, false
}

// ensureBridge makes n's Linux bridge if it is missing (the default one is
// made on first use, and again after a reboot), with the gateway address,
// up; and turns on IPv4 forwarding, remembering to turn it off again.
// The default bridge is removed only by RemoveDefaultBridge.
func (m *Manager) ensureBridge(n *Network) error {
	if !n.Subnet.IsValid() {
		taken := m.taken(n.ID)
		for _, p := range candidatePools() {
			if _, clash := overlapsAny(p, taken); !clash {
				n.Subnet, n.Gateway = p, p.Addr().Next()
				break
			}
		}
		if !n.Subnet.IsValid() {
			return errdefs.New(errdefs.ErrUnavailable, "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")
		}
	}
	if err := m.checkOwner(n.Bridge); err != nil {
		return err
	}
	if _, err := netlink.LinkByName(n.Bridge); err != nil {
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.Bridge, MTU: n.linkMTU()}}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create bridge %s: %w", n.Bridge, err)
		}
	}
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return err
	}
	if m.o.Owner != "" && br.Attrs().Alias != m.o.Owner {
		if err := netlink.LinkSetAlias(br, m.o.Owner); err != nil {
			return fmt.Errorf("bridge %s: mark it as this daemon's: %w", n.Bridge, err)
		}
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: n.Gateway.AsSlice(), Mask: net.CIDRMask(n.Subnet.Bits(), 32)}}
	if err := netlink.AddrReplace(br, addr); err != nil {
		return fmt.Errorf("bridge %s: address %s: %w", n.Bridge, addr, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return err
	}
	// Published ports reach containers from the host's 127.0.0.1.
	if err := writeSysctl("net/ipv4/conf/"+n.Bridge+"/route_localnet", "1"); err != nil {
		return err
	}
	if n.Subnet6.IsValid() {
		if err := writeSysctl("net/ipv6/conf/"+n.Bridge+"/disable_ipv6", "0"); err != nil {
			return fmt.Errorf("bridge %s: enable IPv6: %w", n.Bridge, err)
		}
		addr6 := &netlink.Addr{IPNet: &net.IPNet{IP: n.Gateway6.AsSlice(), Mask: net.CIDRMask(n.Subnet6.Bits(), 128)}, Flags: unix.IFA_F_NODAD}
		if err := netlink.AddrReplace(br, addr6); err != nil {
			return fmt.Errorf("bridge %s: address %s: %w", n.Bridge, addr6, err)
		}
		if readSysctl("net/ipv6/conf/all/forwarding") != "1" {
			if err := writeSysctl("net/ipv6/conf/all/forwarding", "1"); err != nil {
				return fmt.Errorf("turn on IPv6 forwarding: %w", err)
			}
			m.st.Forward6Set = true
		}
	}
	if readSysctl("net/ipv4/ip_forward") != "1" {
		if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
			return fmt.Errorf("turn on IPv4 forwarding: %w", err)
		}
		m.st.ForwardSet = true
	}
	return nil
}

// ownerPrefix starts the alias berthd writes on its bridges.
const ownerPrefix = "berthd "

// OwnerOf is the alias a daemon with data root dataRoot writes on its
// bridges.
func OwnerOf(dataRoot string) string { return ownerPrefix + dataRoot }

// checkOwner refuses a bridge another berthd made (its alias names that
// daemon): two daemons on one bridge mix their subnets and rules.
func (m *Manager) checkOwner(bridge string) error {
	l, err := netlink.LinkByName(bridge)
	if err != nil {
		return nil // not there: ours to make
	}
	alias := l.Attrs().Alias
	if m.o.Owner != "" && strings.HasPrefix(alias, ownerPrefix) && alias != m.o.Owner && ownerRunning(strings.TrimPrefix(alias, ownerPrefix)) {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("bridge %s belongs to another berthd (data root %s): give this daemon a bridge of its own (--bridge, --bip)", bridge, strings.TrimPrefix(alias, ownerPrefix)))
	}
	if _, isBridge := l.(*netlink.Bridge); !isBridge {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("%s is a %s interface, not a bridge berthd can use", bridge, l.Type()))
	}
	return nil
}

// ownerRunning reports whether the berthd of dataRoot runs: it holds the
// lock of its data root for as long as it does. A bridge left by one that
// is gone is taken over.
func ownerRunning(dataRoot string) bool {
	f, err := os.Open(filepath.Join(dataRoot, "lock"))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// hasUserBridges reports whether a user-defined bridge network exists.
func (m *Manager) hasUserBridges() bool {
	for _, n := range m.st.Networks {
		if n.Driver == "bridge" && !n.Predefined() {
			return true
		}
	}
	return false
}

// hasIPv6Networks reports whether a network has an IPv6 subnet.
func (m *Manager) hasIPv6Networks() bool {
	for _, n := range m.st.Networks {
		if n.Subnet6.IsValid() {
			return true
		}
	}
	return false
}

// teardownIdle turns IPv4 forwarding off again if Berth turned it on and
// no container nor user network of Berth's needs it. The default bridge
// stays once made, as docker0 does: making and deleting it around every
// container would cost each start and exit tens of milliseconds.
func (m *Manager) teardownIdle() {
	def := m.byName(DefaultName)
	if m.st.ForwardSet && len(m.used(def.ID)) == 0 && !m.hasUserBridges() {
		if err := writeSysctl("net/ipv4/ip_forward", "0"); err == nil {
			m.st.ForwardSet = false
		}
	}
	if m.st.Forward6Set && !m.hasIPv6Networks() {
		if err := writeSysctl("net/ipv6/conf/all/forwarding", "0"); err == nil {
			m.st.Forward6Set = false
		}
	}
}

// CreateOptions are docker's network create request, for the bridge
// driver.
type CreateOptions struct {
	Name     string
	Driver   string // "" or bridge
	Subnet   string
	IPRange  string
	Gateway  string
	Internal bool
	Labels   map[string]string
	Options  map[string]string
	// IPv6 adds an IPv6 subnet (Subnet6, required) and gateway.
	IPv6     bool
	Subnet6  string
	Gateway6 string
}

var validNetName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Create makes a user-defined bridge network and its bridge
// (br-<id prefix>). Errors name the field at fault; nothing is left.
func (m *Manager) Create(o CreateOptions) (Network, error) {
	if o.Driver != "" && o.Driver != "bridge" {
		return Network{}, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("plugin %q not found: berthd has only the bridge network driver", o.Driver))
	}
	if !validNetName.MatchString(o.Name) {
		return Network{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid network name %q", o.Name))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byName(o.Name) != nil {
		return Network{}, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("network with name %s already exists", o.Name))
	}
	n := &Network{ID: newID(), Name: o.Name, Driver: "bridge", Internal: o.Internal, Labels: o.Labels, Options: o.Options, Created: time.Now().UTC()}
	n.Bridge = "br-" + n.ID[:12]
	if v := o.Options["com.docker.network.driver.mtu"]; v != "" {
		mtu, err := strconv.Atoi(v)
		if err != nil {
			return Network{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid MTU %q: want a number from 68 to 65535", v))
		}
		if err := CheckMTU(mtu); err != nil {
			return Network{}, err
		}
		n.MTU = mtu
	}
	if o.Subnet != "" {
		p, err := netip.ParsePrefix(o.Subnet)
		if err != nil || !p.Addr().Is4() {
			return Network{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid subnet %q: want an IPv4 CIDR such as 10.1.0.0/24", o.Subnet))
		}
		if p.Bits() > 30 {
			return Network{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("subnet %s is too small: it needs room for a gateway and a container", p))
		}
		n.Subnet = p.Masked()
		if q, clash := overlapsAny(n.Subnet, m.taken("")); clash {
			return Network{}, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("invalid pool request: Pool overlaps with other one on this address space (%s overlaps %s)", n.Subnet, q))
		}
		n.Gateway = n.Subnet.Addr().Next()
	} else if o.Gateway != "" || o.IPRange != "" {
		return Network{}, errdefs.New(errdefs.ErrInvalid, "gateway and ip-range need a subnet")
	}
	if o.Gateway != "" {
		g, err := netip.ParseAddr(o.Gateway)
		if err != nil || !n.Subnet.Contains(g) {
			return Network{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid gateway %q: it must be an address in %s", o.Gateway, n.Subnet))
		}
		n.Gateway = g
	}
	if o.IPv6 || o.Subnet6 != "" {
		p, err := netip.ParsePrefix(o.Subnet6)
		if !o.IPv6 || err != nil || !p.Addr().Is6() || p.Addr().Is4In6() || p.Bits() > 120 {
			return Network{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("IPv6: give --ipv6 with an IPv6 --subnet such as fd00:1::/64 (got %q)", o.Subnet6))
		}
		n.Subnet6 = p.Masked()
		for _, q := range m.st.Networks {
			if q.Subnet6.IsValid() && q.Subnet6.Overlaps(n.Subnet6) {
				return Network{}, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("invalid pool request: Pool overlaps with other one on this address space (%s overlaps %s)", n.Subnet6, q.Subnet6))
			}
		}
		n.Gateway6 = n.Subnet6.Addr().Next()
		if o.Gateway6 != "" {
			g, err := netip.ParseAddr(o.Gateway6)
			if err != nil || !n.Subnet6.Contains(g) {
				return Network{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid gateway %q: it must be an address in %s", o.Gateway6, n.Subnet6))
			}
			n.Gateway6 = g
		}
	}
	if o.IPRange != "" {
		r, err := netip.ParsePrefix(o.IPRange)
		if err != nil || !n.Subnet.Contains(r.Addr()) || r.Bits() < n.Subnet.Bits() {
			return Network{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid ip-range %q: it must lie within %s", o.IPRange, n.Subnet))
		}
		n.IPRange = r.Masked()
	}
	if err := m.ensureBridge(n); err != nil {
		deleteLink(n.Bridge)
		return Network{}, err
	}
	m.st.Networks[n.ID] = n
	if err := m.commit(); err != nil {
		delete(m.st.Networks, n.ID)
		deleteLink(n.Bridge)
		m.teardownIdle()
		_ = m.commit()
		return Network{}, err
	}
	return *n, nil
}

// Remove deletes a user-defined network and its bridge; one with
// containers attached, or a predefined one, is refused.
func (m *Manager) Remove(ref string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.find(ref)
	if err != nil {
		return err
	}
	if n.Predefined() {
		return errdefs.New(errdefs.ErrForbidden, fmt.Sprintf("%s is a pre-defined network and cannot be removed", n.Name))
	}
	if len(m.used(n.ID)) > 0 {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("error while removing network: network %s has active endpoints", n.Name))
	}
	deleteLink(n.Bridge)
	delete(m.st.Networks, n.ID)
	m.teardownIdle()
	return m.commit()
}

// Prune removes every user-defined network without containers and
// returns their names.
func (m *Manager) Prune() ([]string, error) {
	var names []string
	for _, n := range m.List() {
		if n.Predefined() {
			continue
		}
		if len(m.Endpoints(n.ID)) > 0 {
			continue
		}
		if err := m.Remove(n.ID); err != nil {
			return names, err
		}
		names = append(names, n.Name)
	}
	return names, nil
}

// RemoveDefaultBridge deletes the default bridge if no container uses it
// (for an administrator cleaning up, and for tests).
func (m *Manager) RemoveDefaultBridge() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.used(m.byName(DefaultName).ID)) > 0 {
		return errdefs.New(errdefs.ErrConflict, "the default bridge is in use")
	}
	m.unlinking.Wait()
	deleteLink(m.byName(DefaultName).Bridge)
	return nil
}
