// Package network gives containers their network: Linux bridges, one veth
// pair per container and network, addresses from each network's subnet,
// outbound NAT and published ports in an nftables table of Berth's own,
// and traffic counters. berthd uses it; the runtime only joins the
// network namespace made here (a file under the exec root).
//
// All state — networks, and each container's sandbox (its namespace,
// endpoints and ports) — is one JSON file, rewritten at every change; the
// nftables table is rendered from it. An address is in use exactly while
// a sandbox holding it is in the file, so after a crash Restore releases
// the addresses and ports of containers that are gone.
package network

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-project/berth/errdefs"
	"github.com/google/nftables"
)

// Names of the predefined networks, as docker has them.
const (
	DefaultName = "bridge"
	HostName    = "host"
	NoneName    = "none"
	// DefaultBridge is the default network's Linux bridge.
	DefaultBridge = "berth0"
)

// Network is one network. The predefined host and none networks have no
// subnet and no bridge.
type Network struct {
	ID      string       `json:"id"`
	Name    string       `json:"name"`
	Driver  string       `json:"driver"` // bridge, host or null
	Bridge  string       `json:"bridge,omitempty"`
	Subnet  netip.Prefix `json:"subnet,omitzero"`
	IPRange netip.Prefix `json:"ipRange,omitzero"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
	// Subnet6 and Gateway6 are set on a network created with IPv6.
	Subnet6  netip.Prefix      `json:"subnet6,omitzero"`
	Gateway6 netip.Addr        `json:"gateway6,omitzero"`
	MTU      int               `json:"mtu,omitempty"`
	Internal bool              `json:"internal,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Options  map[string]string `json:"options,omitempty"`
	Created  time.Time         `json:"created"`
}

// A network whose MTU is not set gives its bridge and veths LocalMTU, the
// largest a veth takes, and puts OutboundMTU (docker's default MTU) on
// each container's default route. Traffic that stays on the host —
// container to host, container to container on the bridge — then moves
// in 64 KiB frames as over loopback (at 1500 it runs at ~0.7 of
// loopback's throughput here, at 65535 ~0.98), while what a container
// sends off the host is still cut to 1500-byte packets and advertises
// docker's TCP MSS. A network with an MTU set (com.docker.network.driver.mtu,
// or berthd --mtu for the default one) is that MTU throughout, as docker's.
const (
	LocalMTU    = 65535
	OutboundMTU = 1500
)

// linkMTU is the MTU of n's bridge and veths.
func (n *Network) linkMTU() int {
	if n.MTU == 0 {
		return LocalMTU
	}
	return n.MTU
}

// routeMTU is the MTU on a container's default route through n: 0 (the
// link's) when n's MTU is set.
func (n *Network) routeMTU() int {
	if n.MTU == 0 {
		return OutboundMTU
	}
	return 0
}

// CheckMTU refuses an MTU a veth cannot take.
func CheckMTU(mtu int) error {
	if mtu < 68 || mtu > LocalMTU {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid MTU %d: want 68 to %d", mtu, LocalMTU))
	}
	return nil
}

// Predefined reports whether n is one of bridge, host and none.
func (n *Network) Predefined() bool {
	return n.Name == DefaultName || n.Name == HostName || n.Name == NoneName
}

// Endpoint is a container's interface on one network.
type Endpoint struct {
	ID       string     `json:"id"`
	Network  string     `json:"network"` // network ID
	IfName   string     `json:"ifName"`  // eth0, eth1, ...
	HostVeth string     `json:"hostVeth"`
	IP       netip.Addr `json:"ip"`
	IP6      netip.Addr `json:"ip6,omitzero"`
	MAC      string     `json:"mac"`
	Aliases  []string   `json:"aliases,omitempty"`
}

// PortBinding publishes a container port on the host.
type PortBinding struct {
	Proto    string     `json:"proto"` // tcp or udp
	HostIP   netip.Addr `json:"hostIP,omitzero"`
	HostPort uint16     `json:"hostPort"`
	Port     uint16     `json:"port"`
}

// Sandbox is a container's network namespace and what is in it.
type Sandbox struct {
	ContainerID string        `json:"containerID"`
	Name        string        `json:"name"`
	Netns       string        `json:"netns"`
	Endpoints   []*Endpoint   `json:"endpoints"`
	Ports       []PortBinding `json:"ports,omitempty"`
	// Upstream are the resolvers the embedded DNS server forwards to
	// (docker's --dns); none: the host's.
	Upstream []string `json:"upstream,omitempty"`
	// Bandwidth is the limit SetBandwidth last set.
	Bandwidth Bandwidth `json:"bandwidth,omitzero"`
}

type state struct {
	Networks  map[string]*Network `json:"networks"`
	Sandboxes map[string]*Sandbox `json:"sandboxes"`
	// ForwardSet records that Berth turned ip_forward on (it was 0), so
	// that it is turned off again when Berth's last bridge goes.
	ForwardSet bool `json:"forwardSet,omitempty"`
	// Forward6Set is the same for IPv6 forwarding.
	Forward6Set bool `json:"forward6Set,omitempty"`
}

// Manager owns the networks of one berthd.
type Manager struct {
	mu       sync.Mutex
	file     string
	netnsDir string
	log      *slog.Logger
	st       state
	dns      map[string]*net.UDPConn // embedded resolver sockets, by container
	// rendered is the rule set last written to nftables: an unchanged one
	// is not written again (a transaction costs an RCU grace period).
	rendered string
	fw       firewallState
	o        Options
	// held are the sockets binding each container's published ports.
	held map[string][]int
	// unlinking counts host veths being deleted in the background.
	unlinking sync.WaitGroup
}

// Options make a daemon's networks its own, beside other daemons on the
// host: its default bridge, that bridge's address, and the names of its
// nftables tables and iptables chain.
type Options struct {
	// Bridge is the default network's Linux bridge (dockerd's --bridge);
	// "" is DefaultBridge.
	Bridge string
	// BIP is the default bridge's address and prefix (dockerd's --bip,
	// "172.30.0.1/24"); invalid: picked from the default pools.
	BIP netip.Prefix
	// Table names the nftables tables; "" is "berth".
	Table string
	// ForwardChain names the iptables chain (see firewall.go); "" is
	// "BERTH-FORWARD".
	ForwardChain string
	// Owner is written on the bridges this daemon makes (their alias), so
	// that another daemon refuses to take them; "" leaves them unmarked.
	Owner string
	// ForwardPorts, if set, is told every host port published, whenever
	// they change: a rootless daemon's namespace is not the host's, and
	// this forwards the ports from the host into it (their host address
	// is the forwarder's to honour; the rules here take any).
	ForwardPorts func([]HostPort) error
}

// HostPort is a port published on the host, and the container address
// it leads to.
type HostPort struct {
	Proto  string // tcp or udp
	HostIP netip.Addr
	Port   uint16
	Target netip.AddrPort
}

// Open loads the state under root (made if missing) and keeps sandbox
// namespaces in netnsDir, with the default options. It changes nothing
// on the host.
func Open(root, netnsDir string, log *slog.Logger) (*Manager, error) {
	return OpenWith(root, netnsDir, log, Options{})
}

// OpenWith is Open with o. A default bridge or address that changed since
// the last start is taken up if no container uses the default network.
func OpenWith(root, netnsDir string, log *slog.Logger, o Options) (*Manager, error) {
	if o.Bridge == "" {
		o.Bridge = DefaultBridge
	}
	if o.Table == "" {
		o.Table = "berth"
	}
	if o.ForwardChain == "" {
		o.ForwardChain = forwardChain
	}
	for _, d := range []string{root, netnsDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	m := &Manager{file: filepath.Join(root, "network.json"), netnsDir: netnsDir, log: log, o: o, held: map[string][]int{},
		st: state{Networks: map[string]*Network{}, Sandboxes: map[string]*Sandbox{}}}
	b, err := os.ReadFile(m.file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err == nil {
		if err := json.Unmarshal(b, &m.st); err != nil {
			return nil, fmt.Errorf("%s: %w", m.file, err)
		}
	}
	changed := false
	for _, pre := range []struct{ name, driver string }{{DefaultName, "bridge"}, {HostName, "host"}, {NoneName, "null"}} {
		if m.byName(pre.name) == nil {
			n := &Network{ID: newID(), Name: pre.name, Driver: pre.driver, Created: time.Now().UTC()}
			if pre.name == DefaultName {
				n.Bridge = o.Bridge
			}
			m.st.Networks[n.ID] = n
			changed = true
		}
	}
	def := m.byName(DefaultName)
	if len(m.used(def.ID)) == 0 {
		if def.Bridge != o.Bridge {
			def.Bridge, def.Subnet, def.Gateway = o.Bridge, netip.Prefix{}, netip.Addr{}
			changed = true
		}
		if o.BIP.IsValid() && (def.Gateway != o.BIP.Addr() || def.Subnet != o.BIP.Masked()) {
			def.Subnet, def.Gateway = o.BIP.Masked(), o.BIP.Addr()
			changed = true
		}
	} else if def.Bridge != o.Bridge || o.BIP.IsValid() && def.Gateway != o.BIP.Addr() {
		log.Warn("the default network keeps its bridge and address while containers use it", "bridge", def.Bridge, "gateway", def.Gateway)
	}
	def.Options = map[string]string{"com.docker.network.bridge.default_bridge": "true", "com.docker.network.bridge.name": def.Bridge}
	if err := m.checkOwner(def.Bridge); err != nil {
		return nil, err
	}
	if changed {
		if err := m.save(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// save writes the state (callers hold mu, except Open).
func (m *Manager) save() error {
	b, err := json.MarshalIndent(&m.st, "", " ")
	if err != nil {
		return err
	}
	tmp := m.file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, m.file)
}

// SetDefaultMTU sets the default network's MTU (berthd --mtu), or with 0
// leaves it unset (LocalMTU on the links, OutboundMTU on the default
// route). Containers attached from then on get it; the bridge follows
// the MTU of its ports.
func (m *Manager) SetDefaultMTU(mtu int) error {
	if mtu != 0 {
		if err := CheckMTU(mtu); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.byName(DefaultName)
	if n.MTU == mtu {
		return nil
	}
	n.MTU = mtu
	return m.save()
}

func (m *Manager) byName(name string) *Network {
	for _, n := range m.st.Networks {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// find resolves a network by full ID, name, or unique ID prefix.
func (m *Manager) find(ref string) (*Network, error) {
	if n, ok := m.st.Networks[ref]; ok {
		return n, nil
	}
	if n := m.byName(ref); n != nil {
		return n, nil
	}
	var found *Network
	for id, n := range m.st.Networks {
		if ref != "" && strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("network %s is ambiguous", ref))
			}
			found = n
		}
	}
	if found == nil {
		return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("network %s not found", ref))
	}
	return found, nil
}

// Get returns a copy of the network named or identified by ref.
func (m *Manager) Get(ref string) (Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.find(ref)
	if err != nil {
		return Network{}, err
	}
	return *n, nil
}

// List returns copies of every network, by name.
func (m *Manager) List() []Network {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Network
	for _, n := range m.st.Networks {
		out = append(out, *n)
	}
	slices.SortFunc(out, func(a, b Network) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Sandbox returns a copy of a container's sandbox, if it has one.
func (m *Manager) Sandbox(containerID string) (Sandbox, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, ok := m.st.Sandboxes[containerID]
	if !ok {
		return Sandbox{}, false
	}
	cp := *sb
	cp.Endpoints = nil
	for _, ep := range sb.Endpoints {
		e := *ep
		cp.Endpoints = append(cp.Endpoints, &e)
	}
	return cp, true
}

// Endpoints lists, for a network, the sandboxes attached to it with their
// endpoint there.
func (m *Manager) Endpoints(networkID string) map[string]Endpoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]Endpoint{}
	for cid, sb := range m.st.Sandboxes {
		for _, ep := range sb.Endpoints {
			if ep.Network == networkID {
				out[cid] = *ep
			}
		}
	}
	return out
}

// used is the set of addresses taken on a network.
func (m *Manager) used(networkID string) map[netip.Addr]bool {
	u := map[netip.Addr]bool{}
	for _, sb := range m.st.Sandboxes {
		for _, ep := range sb.Endpoints {
			if ep.Network == networkID {
				u[ep.IP] = true
				if ep.IP6.IsValid() {
					u[ep.IP6] = true
				}
			}
		}
	}
	return u
}

// render replaces the nftables table with the rules the state needs.
func (m *Manager) render() error {
	var nets []natNet
	var ports []portRule
	live := map[string]bool{}
	for _, sb := range m.st.Sandboxes {
		for _, ep := range sb.Endpoints {
			live[ep.Network] = true
		}
	}
	for _, n := range m.st.Networks {
		// The default bridge exists only while a container uses it.
		if n.Driver == "bridge" && (n.Name != DefaultName || live[n.ID]) && n.Subnet.IsValid() {
			nets = append(nets, natNet{bridge: n.Bridge, subnet: n.Subnet, subnet6: n.Subnet6, internal: n.Internal})
		}
	}
	slices.SortFunc(nets, func(a, b natNet) int { return strings.Compare(a.bridge, b.bridge) })
	var bridges []string
	for _, n := range nets {
		bridges = append(bridges, n.bridge)
	}
	m.syncFirewall(bridges)
	slices.SortFunc(ports, func(a, b portRule) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	for _, sb := range m.st.Sandboxes {
		if len(sb.Endpoints) == 0 {
			continue
		}
		for _, p := range sb.Ports {
			proto := uint8(6)
			if p.Proto == "udp" {
				proto = 17
			}
			ports = append(ports, portRule{proto: proto, hostIP: p.HostIP, hostPort: p.HostPort, addr: sb.Endpoints[0].IP, port: p.Port})
		}
	}
	if m.o.ForwardPorts != nil {
		var fwd []HostPort
		for i, p := range ports {
			fwd = append(fwd, HostPort{Proto: map[uint8]string{6: "tcp", 17: "udp"}[p.proto], HostIP: p.hostIP, Port: p.hostPort, Target: netip.AddrPortFrom(p.addr, p.port)})
			ports[i].hostIP = netip.Addr{}
		}
		if err := m.o.ForwardPorts(fwd); err != nil {
			return err
		}
	}
	want := fmt.Sprint(nets, ports)
	if want == m.rendered {
		return nil
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	defer c.CloseLasting()
	if err := renderTable(c, m.o.Table, nets, ports); err != nil {
		m.rendered = ""
		return err
	}
	m.rendered = want
	return nil
}

// macFor derives a locally administered MAC address from an IPv4 address,
// as docker does (02:42 and the address).
func macFor(a netip.Addr) string {
	b := a.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}.String()
}
