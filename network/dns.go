package network

import (
	"bufio"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// The embedded DNS server, as docker's 127.0.0.11: a container on a
// user-defined network gets a UDP socket bound to 127.0.0.11:53 in its
// own namespace, opened and served by berthd. Names of containers (name,
// short ID, aliases) on the networks the asking container is on resolve
// to their addresses there; other names are forwarded to the host's
// resolvers, from berthd's namespace.

// DNSAddr is the resolver address containers on user networks use.
const DNSAddr = "127.0.0.11"

// needsDNS reports whether the sandbox is on a user-defined network.
func (m *Manager) needsDNS(sb *Sandbox) bool {
	for _, ep := range sb.Endpoints {
		if n := m.st.Networks[ep.Network]; n != nil && !n.Predefined() {
			return true
		}
	}
	return false
}

// startDNS opens the sandbox's resolver socket and serves it until
// stopDNS. Callers hold mu.
func (m *Manager) startDNS(sb *Sandbox) error {
	if !m.needsDNS(sb) || m.dns[sb.ContainerID] != nil {
		return nil
	}
	conn, err := listenUDPIn(sb.Netns, DNSAddr+":53")
	if err != nil {
		return err
	}
	if m.dns == nil {
		m.dns = map[string]*net.UDPConn{}
	}
	m.dns[sb.ContainerID] = conn
	go m.serveDNS(sb.ContainerID, conn)
	return nil
}

// stopDNS closes a sandbox's resolver socket. Callers hold mu.
func (m *Manager) stopDNS(containerID string) {
	if c := m.dns[containerID]; c != nil {
		c.Close()
		delete(m.dns, containerID)
	}
}

// listenUDPIn binds a UDP socket in the network namespace at nsPath.
func listenUDPIn(nsPath, addr string) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := RunIn(nsPath, func() error {
		ua, err := net.ResolveUDPAddr("udp4", addr)
		if err == nil {
			c, err = net.ListenUDP("udp4", ua)
		}
		return err
	})
	return c, err
}

func (m *Manager) serveDNS(containerID string, conn *net.UDPConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			return // closed
		}
		q := append([]byte(nil), buf[:n]...)
		go func() {
			if reply := m.answer(containerID, q); reply != nil {
				_, _ = conn.WriteToUDP(reply, from)
			}
		}()
	}
}

// answer builds the reply to one query: from the container table, or
// from the host's resolvers.
func (m *Manager) answer(containerID string, query []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	addrs, known := m.lookup(containerID, q.Name.String())
	if !known {
		return forward(query, m.upstreamOf(containerID))
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true})
	b.EnableCompression()
	_ = b.StartQuestions()
	_ = b.Question(q)
	_ = b.StartAnswers()
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 600}
	for _, a := range addrs {
		switch {
		case a.Is4() && (q.Type == dnsmessage.TypeA || q.Type == dnsmessage.TypeALL):
			_ = b.AResource(rh, dnsmessage.AResource{A: a.As4()})
		case a.Is6() && (q.Type == dnsmessage.TypeAAAA || q.Type == dnsmessage.TypeALL):
			_ = b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// lookup resolves name (a container's name, short ID or alias) among the
// containers sharing a user-defined network with the asking one.
func (m *Manager) lookup(containerID, name string) ([]netip.Addr, bool) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	m.mu.Lock()
	defer m.mu.Unlock()
	self := m.st.Sandboxes[containerID]
	if self == nil {
		return nil, false
	}
	var out []netip.Addr
	for _, mine := range self.Endpoints {
		if n := m.st.Networks[mine.Network]; n == nil || n.Predefined() {
			continue
		}
		for cid, sb := range m.st.Sandboxes {
			for _, ep := range sb.Endpoints {
				if ep.Network != mine.Network {
					continue
				}
				names := append([]string{strings.ToLower(sb.Name), cid[:min(12, len(cid))]}, ep.Aliases...)
				for _, n := range names {
					if strings.EqualFold(n, name) {
						out = append(out, ep.IP)
						if ep.IP6.IsValid() {
							out = append(out, ep.IP6)
						}
						break
					}
				}
			}
		}
	}
	return out, len(out) > 0
}

// upstreamOf lists the resolvers a container's queries go to: its own
// (--dns), else the host's.
func (m *Manager) upstreamOf(containerID string) []string {
	m.mu.Lock()
	sb := m.st.Sandboxes[containerID]
	var own []string
	if sb != nil {
		own = sb.Upstream
	}
	m.mu.Unlock()
	if len(own) > 0 {
		var out []string
		for _, s := range own {
			out = append(out, net.JoinHostPort(s, "53"))
		}
		return out
	}
	return hostResolvers()
}

// hostResolvers lists the host's resolvers (from /etc/resolv.conf).
func hostResolvers() []string {
	f, err := os.Open("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" {
			out = append(out, net.JoinHostPort(fields[1], "53"))
		}
	}
	return out
}

// forward relays a query to the servers in turn and returns the first
// reply; nil (the client times out) if none answers.
func forward(query []byte, servers []string) []byte {
	for _, srv := range servers {
		c, err := net.DialTimeout("udp", srv, 2*time.Second)
		if err != nil {
			continue
		}
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write(query); err != nil {
			c.Close()
			continue
		}
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		c.Close()
		if err == nil {
			return buf[:n]
		}
	}
	return nil
}
