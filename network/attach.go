package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-project/berth/errdefs"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AttachRequest asks for an endpoint on a network.
type AttachRequest struct {
	Network string     // name or ID
	IP      netip.Addr // static address; zero: allocate
	IP6     netip.Addr // static IPv6 address on an IPv6 network
	Aliases []string
}

// Attach makes a container's sandbox: a network namespace pinned under the
// exec root, one veth pair per request (eth0, eth1, ...) with an address,
// the network's link MTU, a MAC derived from the address and, on the
// first, the default route (with the outbound MTU when the network's MTU
// is not set); and the published ports. Bridges are made as needed. On
// error nothing is left: no namespace, veth, address, port or rule.
func (m *Manager) Attach(containerID, name string, reqs []AttachRequest, ports []PortBinding, upstream []string) (Sandbox, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.st.Sandboxes[containerID]; ok {
		return Sandbox{}, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s already has a network sandbox", containerID))
	}
	nets := make([]*Network, len(reqs))
	for i, r := range reqs {
		n, err := m.find(r.Network)
		if err != nil {
			return Sandbox{}, err
		}
		if n.Driver != "bridge" {
			return Sandbox{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("network %s: a container joins the %s network through its network mode, not as an endpoint", n.Name, n.Name))
		}
		nets[i] = n
	}
	bound, held, err := m.reservePorts(ports)
	if err != nil {
		return Sandbox{}, err
	}
	sb := &Sandbox{ContainerID: containerID, Name: name, Netns: filepath.Join(m.netnsDir, containerID), Ports: bound, Upstream: upstream}
	if err := newNetns(sb.Netns); err != nil {
		return Sandbox{}, err
	}
	undo := func() {
		for _, ep := range sb.Endpoints {
			deleteLink(ep.HostVeth)
		}
		_ = removeNetns(sb.Netns)
		closeFds(held)
	}
	for i, n := range nets {
		ep, err := m.addEndpoint(sb, n, reqs[i], i)
		if err != nil {
			undo()
			m.teardownIdle()
			return Sandbox{}, err
		}
		sb.Endpoints = append(sb.Endpoints, ep)
	}
	m.st.Sandboxes[containerID] = sb
	m.held[containerID] = held
	err = m.startDNS(sb)
	if err == nil {
		err = m.commit()
	}
	if err != nil {
		m.stopDNS(containerID)
		delete(m.st.Sandboxes, containerID)
		delete(m.held, containerID)
		undo()
		m.teardownIdle()
		_ = m.commit()
		return Sandbox{}, err
	}
	return *sb, nil
}

// commit renders the rules and saves the state.
func (m *Manager) commit() error {
	if err := m.render(); err != nil {
		return err
	}
	return m.save()
}

// addEndpoint puts one veth pair between n's bridge and the sandbox.
func (m *Manager) addEndpoint(sb *Sandbox, n *Network, r AttachRequest, index int) (*Endpoint, error) {
	if err := m.ensureBridge(n); err != nil {
		return nil, err
	}
	used := m.used(n.ID)
	for _, ep := range sb.Endpoints {
		if ep.Network == n.ID {
			return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container is already attached to network %s", n.Name))
		}
	}
	ip := r.IP
	if ip.IsValid() {
		if err := checkStatic(n.Subnet, n.Gateway, ip, used); err != nil {
			return nil, err
		}
	} else {
		pool := n.Subnet
		if n.IPRange.IsValid() {
			pool = n.IPRange
		}
		var err error
		if ip, err = allocate(n.Subnet, pool, n.Gateway, used); err != nil {
			return nil, err
		}
	}
	ep := &Endpoint{ID: newID(), Network: n.ID, IfName: "eth" + strconv.Itoa(index), IP: ip, MAC: macFor(ip), Aliases: r.Aliases,
		HostVeth: "veth" + newID()[:7]}
	if n.Subnet6.IsValid() {
		var err error
		if r.IP6.IsValid() {
			err = checkStatic(n.Subnet6, n.Gateway6, r.IP6, used)
			ep.IP6 = r.IP6
		} else {
			ep.IP6, err = allocate(n.Subnet6, n.Subnet6, n.Gateway6, used)
		}
		if err != nil {
			return nil, err
		}
	} else if r.IP6.IsValid() {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("network %s has no IPv6: it cannot give %s", n.Name, r.IP6))
	}
	if err := plumb(sb.Netns, n, ep, index == 0); err != nil {
		deleteLink(ep.HostVeth)
		return nil, fmt.Errorf("network %s: %w", n.Name, err)
	}
	return ep, nil
}

// plumb makes ep's veth pair: the host end on n's bridge, the other moved
// into the namespace at nsPath and set up there.
func plumb(nsPath string, n *Network, ep *Endpoint, defaultRoute bool) error {
	ns, h, done, err := handleIn(nsPath)
	if err != nil {
		return err
	}
	defer done()
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	mtu := n.linkMTU()
	peer := "tmp" + ep.HostVeth[4:]
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: ep.HostVeth, MTU: mtu, MasterIndex: br.Attrs().Index},
		PeerName:      peer,
		PeerNamespace: netlink.NsFd(int(ns)),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s: %w", ep.HostVeth, err)
	}
	host, err := netlink.LinkByName(ep.HostVeth)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return err
	}
	in, err := h.LinkByName(peer)
	if err != nil {
		return err
	}
	mac, _ := net.ParseMAC(ep.MAC)
	steps := []func() error{
		func() error { return h.LinkSetName(in, ep.IfName) },
		func() error { return h.LinkSetHardwareAddr(in, mac) },
		func() error { return h.LinkSetMTU(in, mtu) },
		func() error {
			return h.AddrAdd(in, &netlink.Addr{IPNet: &net.IPNet{IP: ep.IP.AsSlice(), Mask: net.CIDRMask(n.Subnet.Bits(), 32)}})
		},
		func() error { return h.LinkSetUp(in) },
		func() error {
			lo, err := h.LinkByName("lo")
			if err != nil {
				return err
			}
			return h.LinkSetUp(lo)
		},
	}
	if defaultRoute && !n.Internal {
		steps = append(steps, func() error {
			return h.RouteAdd(&netlink.Route{LinkIndex: in.Attrs().Index, Gw: n.Gateway.AsSlice(), MTU: n.routeMTU()})
		})
	}
	if ep.IP6.IsValid() {
		// No duplicate address detection: the address is Berth's to give,
		// and DAD would hold it unusable for a second or more.
		steps = append(steps, func() error {
			return h.AddrAdd(in, &netlink.Addr{IPNet: &net.IPNet{IP: ep.IP6.AsSlice(), Mask: net.CIDRMask(n.Subnet6.Bits(), 128)}, Flags: unix.IFA_F_NODAD})
		})
		if defaultRoute && !n.Internal {
			steps = append(steps, func() error {
				return h.RouteAdd(&netlink.Route{LinkIndex: in.Attrs().Index, Gw: n.Gateway6.AsSlice(), MTU: n.routeMTU()})
			})
		}
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return fmt.Errorf("set up %s in the container: %w", ep.IfName, err)
		}
	}
	return nil
}

// deleteLink removes a host interface if it exists (its veth peer goes
// with it).
func deleteLink(name string) {
	if l, err := netlink.LinkByName(name); err == nil {
		_ = netlink.LinkDel(l)
	}
}

// Detach removes a container's sandbox: its veths, namespace, addresses,
// ports and rules. A container without one is not an error.
func (m *Manager) Detach(containerID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, ok := m.st.Sandboxes[containerID]
	if !ok {
		return nil
	}
	m.stopDNS(containerID)
	closeFds(m.held[containerID])
	delete(m.held, containerID)
	// Deleting a veth waits for RCU grace periods (tens of ms here): it is
	// done in the background. The pair is already useless — the
	// namespace is gone — and its name is never reused.
	for _, ep := range sb.Endpoints {
		m.unlinking.Add(1)
		go func(name string) {
			defer m.unlinking.Done()
			deleteLink(name)
		}(ep.HostVeth)
	}
	err := removeNetns(sb.Netns)
	delete(m.st.Sandboxes, containerID)
	m.teardownIdle()
	return errors.Join(err, m.commit())
}

// Settle waits until the veths of removed sandboxes are deleted.
func (m *Manager) Settle() { m.unlinking.Wait() }

// Restore reconciles the state with the containers that run (after a
// berthd restart or crash): the sandboxes of the others are removed, and
// the rules are rendered again.
func (m *Manager) Restore(running func(containerID string) bool) error {
	m.mu.Lock()
	var gone []string
	for cid := range m.st.Sandboxes {
		if !running(cid) {
			gone = append(gone, cid)
		}
	}
	m.mu.Unlock()
	var errs []error
	for _, cid := range gone {
		errs = append(errs, m.Detach(cid))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, sb := range m.st.Sandboxes {
		errs = append(errs, m.startDNS(sb))
		// berthd restarted: hold the running containers' ports again.
		if _, ok := m.held[sb.ContainerID]; !ok {
			for _, p := range sb.Ports {
				fd, _, err := holdPort(p)
				if err != nil {
					m.log.Warn("published port taken while berthd was down", "container", sb.ContainerID, "port", p.HostPort, "err", err)
					continue
				}
				m.held[sb.ContainerID] = append(m.held[sb.ContainerID], fd)
			}
		}
	}
	if len(m.st.Sandboxes) > 0 || m.hasUserBridges() {
		errs = append(errs, m.commit())
	}
	return errors.Join(errs...)
}

// Counters are one interface's traffic, seen from inside the container.
type Counters struct {
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// Stats returns each endpoint's counters by interface name (eth0, ...),
// read inside the container's namespace, as the container sees them.
func (m *Manager) Stats(containerID string) map[string]Counters {
	sb, ok := m.Sandbox(containerID)
	if !ok {
		return nil
	}
	_, h, done, err := handleIn(sb.Netns)
	if err != nil {
		return nil
	}
	defer done()
	out := map[string]Counters{}
	for _, ep := range sb.Endpoints {
		l, err := h.LinkByName(ep.IfName)
		if err != nil || l.Attrs().Statistics == nil {
			continue
		}
		s := l.Attrs().Statistics
		out[ep.IfName] = Counters{
			RxBytes: s.RxBytes, RxPackets: s.RxPackets, RxErrors: s.RxErrors, RxDropped: s.RxDropped,
			TxBytes: s.TxBytes, TxPackets: s.TxPackets, TxErrors: s.TxErrors, TxDropped: s.TxDropped,
		}
	}
	return out
}

// reservePorts checks that every binding's host port is free — not
// published by another container, not bound by a host process — and
// picks ephemeral ports for those without one.
func (m *Manager) reservePorts(ports []PortBinding) (_ []PortBinding, _ []int, err error) {
	var out []PortBinding
	var fds []int
	defer func() {
		if err != nil {
			closeFds(fds)
		}
	}()
	for _, p := range ports {
		if p.Proto != "tcp" && p.Proto != "udp" {
			return nil, nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid proto %q: tcp and udp are supported", p.Proto))
		}
		if p.HostIP.IsValid() && !p.HostIP.Is4() {
			return nil, nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("host address %s: IPv4 only", p.HostIP))
		}
		for _, q := range out {
			if clash(p, q) {
				return nil, nil, portInUse(p)
			}
		}
		for _, sb := range m.st.Sandboxes {
			for _, q := range sb.Ports {
				if clash(p, q) {
					return nil, nil, portInUse(p)
				}
			}
		}
		fd, port, err := holdPort(p)
		if err != nil {
			return nil, nil, bindError(p, err)
		}
		fds = append(fds, fd)
		p.HostPort = uint16(port)
		out = append(out, p)
	}
	return out, fds, nil
}

// holdPort binds a socket to a published port's host address, as dockerd
// holds one: while it is open no host program can bind the port and then
// silently lose its traffic to the container's DNAT. The socket is bound,
// never listening: it accepts nothing. It returns the socket and the port
// (the one the kernel picked, for port 0).
func holdPort(p PortBinding) (int, int, error) {
	typ := unix.SOCK_STREAM
	if p.Proto == "udp" {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, 0, err
	}
	sa := &unix.SockaddrInet4{Port: int(p.HostPort)}
	if p.HostIP.IsValid() {
		sa.Addr = p.HostIP.As4()
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	return fd, got.(*unix.SockaddrInet4).Port, nil
}

func closeFds(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

func clash(p, q PortBinding) bool {
	if p.Proto != q.Proto || p.HostPort == 0 || p.HostPort != q.HostPort {
		return false
	}
	any := func(a netip.Addr) bool { return !a.IsValid() || a.IsUnspecified() }
	return any(p.HostIP) || any(q.HostIP) || p.HostIP == q.HostIP
}

func hostAddr(p PortBinding) string {
	host := "0.0.0.0"
	if p.HostIP.IsValid() {
		host = p.HostIP.String()
	}
	return fmt.Sprintf("%s:%d", host, p.HostPort)
}

// portInUse is docker's message for a port another container publishes.
func portInUse(p PortBinding) error {
	return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("Bind for %s failed: port is already allocated", hostAddr(p)))
}

func bindError(p PortBinding, err error) error {
	if errors.Is(err, unix.EADDRINUSE) {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("failed to bind host port %s/%s: address already in use", hostAddr(p), p.Proto))
	}
	if errors.Is(err, unix.EADDRNOTAVAIL) {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("failed to bind host port %s/%s: %s is not an address of this host", hostAddr(p), p.Proto, p.HostIP))
	}
	return fmt.Errorf("publish %s/%s: %w", hostAddr(p), p.Proto, err)
}

// writeSysctl sets a /proc/sys value, e.g. "net/ipv4/ip_forward".
func writeSysctl(key, value string) error {
	return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0)
}

func readSysctl(key string) string {
	b, _ := os.ReadFile(filepath.Join("/proc/sys", key))
	return strings.TrimSpace(string(b))
}

// Connect adds an endpoint on another network to a running container's
// sandbox (the next ethN); without a sandbox it is ErrConflict. On error
// nothing is left.
func (m *Manager) Connect(containerID string, r AttachRequest) (Endpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, ok := m.st.Sandboxes[containerID]
	if !ok {
		return Endpoint{}, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s has no network sandbox to connect", containerID))
	}
	n, err := m.find(r.Network)
	if err != nil {
		return Endpoint{}, err
	}
	if n.Driver != "bridge" {
		return Endpoint{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("network %s cannot be connected to: only bridge networks can", n.Name))
	}
	index := 0
	for _, ep := range sb.Endpoints {
		if i, err := strconv.Atoi(strings.TrimPrefix(ep.IfName, "eth")); err == nil && i >= index {
			index = i + 1
		}
	}
	ep, err := m.addEndpoint(sb, n, r, index)
	if err != nil {
		m.teardownIdle()
		return Endpoint{}, err
	}
	sb.Endpoints = append(sb.Endpoints, ep)
	err = m.startDNS(sb)
	if err == nil {
		err = m.commit()
	}
	if err != nil {
		sb.Endpoints = sb.Endpoints[:len(sb.Endpoints)-1]
		deleteLink(ep.HostVeth)
		_ = m.commit()
		return Endpoint{}, err
	}
	return *ep, nil
}

// Disconnect removes a running container's endpoint on network ref.
func (m *Manager) Disconnect(containerID, ref string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, ok := m.st.Sandboxes[containerID]
	if !ok {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s has no network sandbox", containerID))
	}
	n, err := m.find(ref)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(sb.Endpoints, func(ep *Endpoint) bool { return ep.Network == n.ID })
	if i < 0 {
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("container %s is not connected to network %s", containerID, n.Name))
	}
	deleteLink(sb.Endpoints[i].HostVeth)
	sb.Endpoints = slices.Delete(sb.Endpoints, i, i+1)
	if !m.needsDNS(sb) {
		m.stopDNS(containerID)
	}
	m.teardownIdle()
	return m.commit()
}
