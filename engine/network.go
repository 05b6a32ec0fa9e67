package engine

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-project/berth/errdefs"
	berthnet "github.com/berth-project/berth/network"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
)

// nsModePrefix starts Podman's network mode ns:PATH: the network
// namespace pinned at PATH (by its owner, who also sets it up).
const nsModePrefix = "ns:"

// joinsNetns: the mode puts a container in a network namespace it does
// not own (container:NAME, ns:PATH).
func joinsNetns(mode ctypes.NetworkMode) bool {
	return strings.HasPrefix(string(mode), "container:") || strings.HasPrefix(string(mode), nsModePrefix)
}

// networkName is the network a container's mode puts it on: the default
// bridge for "", "default" and "bridge", a user network by name, and ""
// for none, host, container:<id> and ns:<path>, which get no sandbox.
func networkName(hc *ctypes.HostConfig) string {
	switch mode := string(hc.NetworkMode); {
	case mode == "", mode == "default", mode == berthnet.DefaultName:
		return berthnet.DefaultName
	case mode == "none", mode == "host", joinsNetns(hc.NetworkMode):
		return ""
	default:
		return mode
	}
}

// checkNetwork refuses a network mode naming no network, and ports
// published where no bridge is (docker's messages); it returns docker's
// warning for ports a host-network container cannot publish.
func (e *Engine) checkNetwork(hc *ctypes.HostConfig, nc *network.NetworkingConfig) ([]string, error) {
	name := networkName(hc)
	publishes := len(hc.PortBindings) > 0 || hc.PublishAllPorts
	if path, ok := strings.CutPrefix(string(hc.NetworkMode), nsModePrefix); ok {
		if _, err := os.Stat(path); err != nil {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("--network ns:%s: no network namespace there", path))
		}
	}
	if name == "" {
		switch {
		case publishes && hc.NetworkMode == "host":
			hc.PortBindings, hc.PublishAllPorts = nil, false
			return []string{"Published ports are discarded when using host network mode"}, nil
		case publishes:
			return nil, errdefs.New(errdefs.ErrInvalid, "conflicting options: port publishing and the container type network mode")
		}
		return nil, nil
	}
	if e.o.Network == nil {
		return nil, errdefs.New(errdefs.ErrUnavailable, "bridge networking is not set up in this berthd")
	}
	n, err := e.o.Network.Get(name)
	if errdefs.NotFound(err) {
		// Not 404: the docker CLI answers a 404 from create by pulling
		// the image.
		return nil, errdefs.New(errdefs.ErrInvalid, err.Error())
	}
	if err != nil {
		return nil, err
	}
	if n.Driver != "bridge" {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("network %s: use --network %s", name, n.Name))
	}
	if ep := endpointConfig(nc, n); ep != nil && ep.IPAMConfig != nil && ep.IPAMConfig.IPv4Address.IsValid() && n.Name == berthnet.DefaultName {
		return nil, errdefs.New(errdefs.ErrInvalid, "user specified IP address is supported on user defined networks only")
	}
	_, err = portBindings(hc, nil)
	return nil, err
}

// checkBandwidth validates the bandwidth label at create.
func checkBandwidth(cfg *ctypes.Config, hc *ctypes.HostConfig) error {
	if _, err := bandwidthOf(cfg); err != nil {
		return err
	}
	if cfg.Labels[BandwidthLabel] != "" && networkName(hc) == "" {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("label %s: network mode %s gives the container no interface of its own to limit", BandwidthLabel, hc.NetworkMode))
	}
	return nil
}

// endpointConfig is the request's endpoint settings for network n, by
// name or ID.
func endpointConfig(nc *network.NetworkingConfig, n berthnet.Network) *network.EndpointSettings {
	if nc == nil {
		return nil
	}
	if ep := nc.EndpointsConfig[n.Name]; ep != nil {
		return ep
	}
	if ep := nc.EndpointsConfig["default"]; ep != nil && n.Name == berthnet.DefaultName {
		return ep // the docker CLI's key for the default network mode
	}
	return nc.EndpointsConfig[n.ID]
}

// netRef names the network an EndpointsConfig key means: the docker CLI
// keys the default network mode's settings "default".
func netRef(key string) string {
	if key == "default" {
		return berthnet.DefaultName
	}
	return key
}

// portBindings turns -p (and -P over the exposed ports) into the
// network package's bindings; an empty host port means "any free one".
func portBindings(hc *ctypes.HostConfig, exposedPorts network.PortSet) ([]berthnet.PortBinding, error) {
	var out []berthnet.PortBinding
	add := func(p network.Port, b network.PortBinding) error {
		pb := berthnet.PortBinding{Proto: string(p.Proto()), Port: p.Num(), HostIP: b.HostIP}
		if b.HostPort != "" {
			hp, err := strconv.ParseUint(b.HostPort, 10, 16)
			if err != nil {
				return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid host port %q for %s", b.HostPort, p))
			}
			pb.HostPort = uint16(hp)
		}
		if pb.Proto != "tcp" && pb.Proto != "udp" {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid proto %q in %s: tcp and udp are supported", pb.Proto, p))
		}
		if pb.HostIP.IsValid() && !pb.HostIP.Is4() {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("host address %s in %s: IPv4 only", pb.HostIP, p))
		}
		out = append(out, pb)
		return nil
	}
	ports := make([]network.Port, 0, len(hc.PortBindings))
	for p := range hc.PortBindings {
		ports = append(ports, p)
	}
	slices.SortFunc(ports, func(a, b network.Port) int { return strings.Compare(a.String(), b.String()) })
	for _, p := range ports {
		bs := hc.PortBindings[p]
		if len(bs) == 0 {
			bs = []network.PortBinding{{}}
		}
		for _, b := range bs {
			if err := add(p, b); err != nil {
				return nil, err
			}
		}
	}
	if hc.PublishAllPorts {
		for p := range exposedPorts {
			if _, bound := hc.PortBindings[p]; !bound {
				if err := add(p, network.PortBinding{}); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

// attachNetwork makes the sandbox of a container about to start on a
// bridge network; nil for the other modes.
func (e *Engine) attachNetwork(r *Record) (*berthnet.Sandbox, error) {
	name := networkName(r.HostConfig)
	if name == "" || e.o.Network == nil {
		return nil, nil
	}
	n, err := e.o.Network.Get(name)
	if err != nil {
		return nil, err
	}
	// The network of the mode first (eth0, the default route), then those
	// connected to later, by name.
	var reqs []berthnet.AttachRequest
	if !r.LeftPrimary {
		reqs = append(reqs, attachRequest(n, endpointConfig(r.Network, n)))
	}
	if r.Network != nil {
		names := slices.Sorted(maps.Keys(r.Network.EndpointsConfig))
		for _, other := range names {
			o, err := e.o.Network.Get(netRef(other))
			if err != nil {
				return nil, fmt.Errorf("connected network %s: %w", other, err)
			}
			if o.ID != n.ID {
				reqs = append(reqs, attachRequest(o, r.Network.EndpointsConfig[other]))
			}
		}
	}
	if len(reqs) == 0 {
		return nil, nil // left every network: loopback only
	}
	ports, err := portBindings(r.HostConfig, r.Config.ExposedPorts)
	if err != nil {
		return nil, err
	}
	var upstream []string
	for _, a := range r.HostConfig.DNS {
		upstream = append(upstream, a.String())
	}
	sb, err := e.o.Network.Attach(r.ID, strings.TrimPrefix(r.Name, "/"), reqs, ports, upstream)
	if err != nil {
		return nil, err
	}
	if bw, err := bandwidthOf(r.Config); err != nil || bw != (berthnet.Bandwidth{}) {
		if err == nil {
			err = e.o.Network.SetBandwidth(r.ID, bw)
		}
		if err != nil {
			e.detachNetwork(r.ID)
			return nil, err
		}
	}
	for _, ep := range sb.Endpoints {
		e.emitNetwork(events.ActionConnect, ep.Network, r.ID)
	}
	return &sb, nil
}

// attachRequest is the endpoint request for network n from docker's
// endpoint settings (static addresses, aliases).
func attachRequest(n berthnet.Network, ep *network.EndpointSettings) berthnet.AttachRequest {
	req := berthnet.AttachRequest{Network: n.ID}
	if ep != nil {
		if ep.IPAMConfig != nil {
			req.IP, req.IP6 = ep.IPAMConfig.IPv4Address, ep.IPAMConfig.IPv6Address
		}
		req.Aliases = ep.Aliases
	}
	return req
}

// containerAndNetwork resolves the two names a connect or disconnect
// takes.
func (e *Engine) containerAndNetwork(ref, netRef string) (*ctr, berthnet.Network, error) {
	c, err := e.get(ref)
	if err != nil {
		return nil, berthnet.Network{}, err
	}
	if e.o.Network == nil {
		return nil, berthnet.Network{}, errdefs.New(errdefs.ErrUnavailable, "bridge networking is not set up in this berthd")
	}
	n, err := e.o.Network.Get(netRef)
	return c, n, err
}

// ConnectNetwork connects a container to another network (docker network
// connect): recorded for its later starts, and made at once if it runs.
func (e *Engine) ConnectNetwork(ref, netRef string, ep *network.EndpointSettings) error {
	c, n, err := e.containerAndNetwork(ref, netRef)
	if err != nil {
		return err
	}
	primary := networkName(c.rec.HostConfig)
	if primary == "" {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("container %s shares or has no network stack (network mode %s): it cannot be connected to a network", strings.TrimPrefix(c.rec.Name, "/"), c.rec.HostConfig.NetworkMode))
	}
	if n.Driver != "bridge" {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("container cannot be connected to network %s", n.Name))
	}
	p, perr := e.o.Network.Get(primary)
	rejoin := perr == nil && p.ID == n.ID && c.rec.LeftPrimary
	if perr == nil && p.ID == n.ID && !c.rec.LeftPrimary || !rejoin && c.rec.Network != nil && endpointConfig(c.rec.Network, n) != nil {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("endpoint with name %s already exists in network %s", strings.TrimPrefix(c.rec.Name, "/"), n.Name))
	}
	if ep == nil {
		ep = &network.EndpointSettings{}
	}
	if _, ok := e.o.Network.Sandbox(c.rec.ID); ok {
		if _, err := e.o.Network.Connect(c.rec.ID, attachRequest(n, ep)); err != nil {
			return err
		}
	}
	err = e.saveState(c, func(r *Record) {
		nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
		if r.Network != nil {
			maps.Copy(nc.EndpointsConfig, r.Network.EndpointsConfig)
		}
		nc.EndpointsConfig[n.Name] = ep
		r.Network = nc
		if rejoin {
			r.LeftPrimary = false
		}
	})
	if err != nil {
		_ = e.o.Network.Disconnect(c.rec.ID, n.ID)
		return err
	}
	e.emitNetwork(events.ActionConnect, n.ID, c.rec.ID)
	return nil
}

// DisconnectNetwork undoes ConnectNetwork. The network a container was
// created on (its network mode) cannot be left: berthd would have no
// network to give it at the next start.
func (e *Engine) DisconnectNetwork(ref, netRef string) error {
	c, n, err := e.containerAndNetwork(ref, netRef)
	if err != nil {
		return err
	}
	if p, err := e.o.Network.Get(networkName(c.rec.HostConfig)); err == nil && p.ID == n.ID && !c.rec.LeftPrimary {
		// The network of its mode: a container that is not running leaves
		// it (Compose disconnects and reconnects with aliases before the
		// start); a running one keeps it, its first interface.
		if _, running := e.o.Network.Sandbox(c.rec.ID); running {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("container %s is running on network %s, its first: berthd cannot disconnect it from that one while it runs (stop it first)", strings.TrimPrefix(c.rec.Name, "/"), n.Name))
		}
		return e.saveState(c, func(r *Record) {
			r.LeftPrimary = true
			if r.Network != nil {
				nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
				for k, v := range r.Network.EndpointsConfig {
					if k != n.Name && k != n.ID {
						nc.EndpointsConfig[k] = v
					}
				}
				r.Network = nc
			}
		})
	}
	if c.rec.Network == nil || endpointConfig(c.rec.Network, n) == nil {
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("container %s is not connected to network %s", strings.TrimPrefix(c.rec.Name, "/"), n.Name))
	}
	if _, ok := e.o.Network.Sandbox(c.rec.ID); ok {
		if err := e.o.Network.Disconnect(c.rec.ID, n.ID); err != nil {
			return err
		}
	}
	err = e.saveState(c, func(r *Record) {
		nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
		for k, v := range r.Network.EndpointsConfig {
			if k != n.Name && k != n.ID {
				nc.EndpointsConfig[k] = v
			}
		}
		r.Network = nc
	})
	if err == nil {
		e.emitNetwork(events.ActionDisconnect, n.ID, c.rec.ID)
	}
	return err
}

// detachNetwork removes a container's sandbox, if it has one, and
// reports the disconnections.
func (e *Engine) detachNetwork(id string) {
	e.emitDisconnects(id, e.leaveNetworks(id))
}

// emitDisconnects reports that container id left the networks nets.
func (e *Engine) emitDisconnects(id string, nets []string) {
	for _, n := range nets {
		e.emitNetwork(events.ActionDisconnect, n, id)
	}
}

// leaveNetworks removes a container's sandbox, if it has one, and returns
// the networks it was on.
func (e *Engine) leaveNetworks(id string) []string {
	if e.o.Network == nil {
		return nil
	}
	sb, had := e.o.Network.Sandbox(id)
	if err := e.o.Network.Detach(id); err != nil {
		e.log.Warn("remove the network sandbox", "id", id, "err", err)
		return nil
	}
	var nets []string
	if had {
		for _, ep := range sb.Endpoints {
			nets = append(nets, ep.Network)
		}
	}
	return nets
}

// networkSettings is docker's NetworkSettings for r: its sandbox's
// endpoints and published ports while it runs, the networks it will join
// otherwise.
func (e *Engine) networkSettings(r Record) *ctypes.NetworkSettings {
	ns := &ctypes.NetworkSettings{Networks: map[string]*network.EndpointSettings{}, Ports: network.PortMap{}}
	name := networkName(r.HostConfig)
	if name == "" {
		if mode := string(r.HostConfig.NetworkMode); mode == "none" || mode == "host" {
			ns.Networks[mode] = &network.EndpointSettings{}
		}
		return ns
	}
	if e.o.Network == nil {
		return ns
	}
	byID := map[string]*network.EndpointSettings{}
	var names []string
	if !r.LeftPrimary {
		names = append(names, name)
	}
	if r.Network != nil {
		names = append(names, slices.Sorted(maps.Keys(r.Network.EndpointsConfig))...)
	}
	for _, nm := range names {
		n, err := e.o.Network.Get(netRef(nm))
		if err != nil || byID[n.ID] != nil {
			continue
		}
		eps := &network.EndpointSettings{NetworkID: n.ID}
		if ep := endpointConfig(r.Network, n); ep != nil {
			eps.IPAMConfig, eps.Aliases = ep.IPAMConfig, ep.Aliases
		}
		ns.Networks[n.Name], byID[n.ID] = eps, eps
	}
	sb, ok := e.o.Network.Sandbox(r.ID)
	if !ok {
		return ns
	}
	ns.SandboxID, ns.SandboxKey = r.ID, sb.Netns
	for _, ep := range sb.Endpoints {
		eps, n := byID[ep.Network], berthnet.Network{}
		if got, err := e.o.Network.Get(ep.Network); err == nil {
			n = got
		}
		if eps == nil {
			eps = &network.EndpointSettings{NetworkID: n.ID}
			ns.Networks[n.Name] = eps
		}
		mac, _ := net.ParseMAC(ep.MAC)
		eps.EndpointID, eps.IPAddress, eps.Gateway, eps.IPPrefixLen, eps.MacAddress = ep.ID, ep.IP, n.Gateway, n.Subnet.Bits(), network.HardwareAddr(mac)
		eps.DNSNames = append([]string{strings.TrimPrefix(r.Name, "/"), r.ID[:12]}, ep.Aliases...)
		if ep.IP6.IsValid() {
			eps.GlobalIPv6Address, eps.GlobalIPv6PrefixLen, eps.IPv6Gateway = ep.IP6, n.Subnet6.Bits(), n.Gateway6
		}
	}
	for _, p := range sb.Ports {
		port, ok := network.PortFrom(p.Port, network.IPProtocol(p.Proto))
		if !ok {
			continue
		}
		hip := p.HostIP
		if !hip.IsValid() {
			hip = netip.IPv4Unspecified()
		}
		ns.Ports[port] = append(ns.Ports[port], network.PortBinding{HostIP: hip, HostPort: strconv.Itoa(int(p.HostPort))})
	}
	return ns
}

// BandwidthLabel is Berth's bandwidth option as a container label, so
// that the docker CLI can pass it too (--label io.berth.bandwidth=10mbit):
// a rate for both directions, or "egress=10mbit,ingress=2mbit".
const BandwidthLabel = "io.berth.bandwidth"

// bandwidthOf reads the label; none is no limit.
func bandwidthOf(cfg *ctypes.Config) (berthnet.Bandwidth, error) {
	v := cfg.Labels[BandwidthLabel]
	if v == "" {
		return berthnet.Bandwidth{}, nil
	}
	return berthnet.ParseBandwidth(v)
}

// SetBandwidth changes a container's bandwidth limit (its label, kept
// for later starts) and, if it runs, applies it at once. "" removes the
// limit.
func (e *Engine) SetBandwidth(ref, spec string) error {
	var bw berthnet.Bandwidth
	if spec != "" {
		var err error
		if bw, err = berthnet.ParseBandwidth(spec); err != nil {
			return err
		}
	}
	c, err := e.get(ref)
	if err != nil {
		return err
	}
	if networkName(c.rec.HostConfig) == "" {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("container %s has no network interface of its own (network mode %s) to limit", strings.TrimPrefix(c.rec.Name, "/"), c.rec.HostConfig.NetworkMode))
	}
	if err := e.saveState(c, func(r *Record) {
		labels := map[string]string{}
		maps.Copy(labels, r.Config.Labels)
		if spec == "" {
			delete(labels, BandwidthLabel)
		} else {
			labels[BandwidthLabel] = spec
		}
		cfg := *r.Config
		cfg.Labels = labels
		r.Config = &cfg
	}); err != nil {
		return err
	}
	if _, ok := e.o.Network.Sandbox(c.rec.ID); !ok {
		return nil // applied at the next start
	}
	return e.o.Network.SetBandwidth(c.rec.ID, bw)
}

// NetworkCounters are a running container's traffic counters by
// interface (stats' networks field); nil without a sandbox.
func (e *Engine) NetworkCounters(id string) map[string]ctypes.NetworkStats {
	if e.o.Network == nil {
		return nil
	}
	var out map[string]ctypes.NetworkStats
	for ifname, n := range e.o.Network.Stats(id) {
		if out == nil {
			out = map[string]ctypes.NetworkStats{}
		}
		out[ifname] = ctypes.NetworkStats{
			RxBytes: n.RxBytes, RxPackets: n.RxPackets, RxErrors: n.RxErrors, RxDropped: n.RxDropped,
			TxBytes: n.TxBytes, TxPackets: n.TxPackets, TxErrors: n.TxErrors, TxDropped: n.TxDropped,
		}
	}
	return out
}
