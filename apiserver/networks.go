package apiserver

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/berth-project/berth/errdefs"
	berthnet "github.com/berth-project/berth/network"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
)

// networkRoutes also holds the build cache's prune, a step of `docker
// system prune` for a part berthd does not have.
func (s *Server) networkRoutes() {
	s.mux.HandleFunc("GET /networks", s.listNetworks)
	s.mux.HandleFunc("POST /networks/create", s.createNetwork)
	s.mux.HandleFunc("POST /networks/prune", s.pruneNetworks)
	s.mux.HandleFunc("GET /networks/{id}", s.inspectNetwork)
	s.mux.HandleFunc("DELETE /networks/{id}", s.removeNetwork)
	s.mux.HandleFunc("POST /networks/{id}/connect", s.connectNetwork)
	s.mux.HandleFunc("POST /networks/{id}/disconnect", s.disconnectNetwork)
}

// networkJSON is docker's shape of a network; with containers, its
// endpoints too (inspect).
func (s *Server) networkJSON(n berthnet.Network, containers bool) network.Inspect {
	out := network.Inspect{Network: network.Network{
		Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver, EnableIPv4: n.Driver == "bridge",
		Internal: n.Internal, Options: n.Options, Labels: n.Labels, IPAM: network.IPAM{Driver: "default", Config: []network.IPAMConfig{}},
	}}
	if out.Options == nil {
		out.Options = map[string]string{}
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if n.Subnet.IsValid() {
		out.IPAM.Config = append(out.IPAM.Config, network.IPAMConfig{Subnet: n.Subnet, IPRange: n.IPRange, Gateway: n.Gateway})
	}
	if n.Subnet6.IsValid() {
		out.EnableIPv6 = true
		out.IPAM.Config = append(out.IPAM.Config, network.IPAMConfig{Subnet: n.Subnet6, Gateway: n.Gateway6})
	}
	if containers {
		out.Containers = map[string]network.EndpointResource{}
		for cid, ep := range s.b.Networks.Endpoints(n.ID) {
			name := cid
			if info, err := s.b.Engine.Inspect(cid, false); err == nil {
				name = strings.TrimPrefix(info.Name, "/")
			}
			mac, _ := net.ParseMAC(ep.MAC)
			res := network.EndpointResource{Name: name, EndpointID: ep.ID, MacAddress: network.HardwareAddr(mac),
				IPv4Address: netip.PrefixFrom(ep.IP, n.Subnet.Bits())}
			if ep.IP6.IsValid() {
				res.IPv6Address = netip.PrefixFrom(ep.IP6, n.Subnet6.Bits())
			}
			out.Containers[cid] = res
		}
	}
	return out
}

func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilters(r.URL.Query().Get("filters"), "name", "id", "driver", "label", "type", "scope", "dangling")
	if err != nil {
		writeError(w, err)
		return
	}
	out := []network.Inspect{}
	for _, n := range s.b.Networks.List() {
		if !matchNetwork(n, f) {
			continue
		}
		out = append(out, s.networkJSON(n, false))
	}
	writeJSON(w, http.StatusOK, out)
}

// matchNetwork applies docker's network filters: name and id by
// substring/prefix, driver, label (key or key=value), type
// (builtin/custom).
func matchNetwork(n berthnet.Network, f filters) bool {
	if v := f["name"]; len(v) > 0 && !slices.ContainsFunc(v, func(x string) bool { return strings.Contains(n.Name, x) }) {
		return false
	}
	if v := f["id"]; len(v) > 0 && !slices.ContainsFunc(v, func(x string) bool { return strings.HasPrefix(n.ID, x) }) {
		return false
	}
	if v := f["driver"]; len(v) > 0 && !slices.Contains(v, n.Driver) {
		return false
	}
	for _, l := range f["label"] {
		k, val, hasVal := strings.Cut(l, "=")
		got, ok := n.Labels[k]
		if !ok || hasVal && got != val {
			return false
		}
	}
	for _, t := range f["type"] {
		if (t == "builtin") != n.Predefined() {
			return false
		}
	}
	return true
}

func (s *Server) inspectNetwork(w http.ResponseWriter, r *http.Request) {
	n, err := s.b.Networks.Get(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.networkJSON(n, true))
}

func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request) {
	var req network.CreateRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	o := berthnet.CreateOptions{Name: req.Name, Driver: req.Driver, Internal: req.Internal, Labels: req.Labels, Options: req.Options,
		IPv6: req.EnableIPv6 != nil && *req.EnableIPv6}
	if req.IPAM != nil {
		if d := req.IPAM.Driver; d != "" && d != "default" {
			writeError(w, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("IPAM driver %q not found: berthd has only the default one", d)))
			return
		}
		var v4, v6 int
		for _, c := range req.IPAM.Config {
			if c.Subnet.IsValid() && c.Subnet.Addr().Is6() {
				v6++
				o.Subnet6 = c.Subnet.String()
				if c.Gateway.IsValid() {
					o.Gateway6 = c.Gateway.String()
				}
				if c.IPRange.IsValid() {
					writeError(w, errdefs.New(errdefs.ErrInvalid, "berthd takes no ip-range for an IPv6 subnet"))
					return
				}
				continue
			}
			v4++
			if c.Subnet.IsValid() {
				o.Subnet = c.Subnet.String()
			}
			if c.IPRange.IsValid() {
				o.IPRange = c.IPRange.String()
			}
			if c.Gateway.IsValid() {
				o.Gateway = c.Gateway.String()
			}
		}
		if v4 > 1 || v6 > 1 {
			writeError(w, errdefs.New(errdefs.ErrInvalid, "berthd takes one IPv4 and one IPv6 subnet per network"))
			return
		}
	}
	n, err := s.b.Networks.Create(o)
	if err != nil {
		writeError(w, err)
		return
	}
	s.b.Engine.Emit(events.NetworkEventType, events.ActionCreate, n.ID, map[string]string{"name": n.Name, "type": n.Driver})
	writeJSON(w, http.StatusCreated, network.CreateResponse{ID: n.ID})
}

func (s *Server) removeNetwork(w http.ResponseWriter, r *http.Request) {
	n, _ := s.b.Networks.Get(r.PathValue("id"))
	if err := s.b.Networks.Remove(r.PathValue("id")); err != nil {
		writeError(w, err)
		return
	}
	s.b.Engine.Emit(events.NetworkEventType, events.ActionDestroy, n.ID, map[string]string{"name": n.Name, "type": n.Driver})
	w.WriteHeader(http.StatusNoContent)
}

// connectNetwork connects a container to the network: recorded for its
// later starts, and made at once if it runs.
func (s *Server) connectNetwork(w http.ResponseWriter, r *http.Request) {
	var req network.ConnectRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := s.b.Engine.ConnectNetwork(req.Container, r.PathValue("id"), req.EndpointConfig); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) disconnectNetwork(w http.ResponseWriter, r *http.Request) {
	var req network.DisconnectRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := s.b.Engine.DisconnectNetwork(req.Container, r.PathValue("id")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// pruneNetworks removes user-defined networks no container uses.
func (s *Server) pruneNetworks(w http.ResponseWriter, r *http.Request) {
	if _, err := parseFilters(r.URL.Query().Get("filters")); err != nil {
		writeError(w, err)
		return
	}
	names, err := s.b.Networks.Prune()
	if err != nil {
		writeError(w, err)
		return
	}
	if names == nil {
		names = []string{}
	}
	writeJSON(w, http.StatusOK, network.PruneReport{NetworksDeleted: names})
}
