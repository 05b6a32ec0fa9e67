package network

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"
)

// The tests run in a network namespace of their own: TestMain starts the
// test binary again inside a new one, so bridges, veths, nftables tables
// and sysctls are made there and vanish with it.
const inNetnsEnv = "BERTH_NETWORK_TEST_NETNS"

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		os.Exit(m.Run()) // every test skips itself
	}
	if os.Getenv(inNetnsEnv) == "" {
		cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
		cmd.Env = append(os.Environ(), inNetnsEnv+"=1")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNET}
		if err := cmd.Run(); err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				os.Exit(ee.ExitCode())
			}
			os.Exit(1)
		}
		os.Exit(0)
	}
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

func newManager(t *testing.T) *Manager {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: bridges, veths and nftables are made for real")
	}
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Skip("needs busybox (Debian's busybox-static)")
	}
	dir := t.TempDir()
	m, err := Open(filepath.Join(dir, "state"), filepath.Join(dir, "netns"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for cid := range m.st.Sandboxes {
			m.Detach(cid)
		}
		m.RemoveDefaultBridge()
		for _, n := range m.List() {
			if !n.Predefined() {
				m.Remove(n.ID)
			}
		}
	})
	return m
}

// inNS runs busybox with args in the sandbox's namespace.
func inNS(t *testing.T, sb Sandbox, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("busybox", append([]string{"nsenter", "--net=" + sb.Netns, "busybox"}, args...)...).CombinedOutput()
	return string(out), err
}

func links(t *testing.T) []string {
	ls, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range ls {
		names = append(names, l.Attrs().Name)
	}
	return names
}

func TestDefaultBridgeAndPorts(t *testing.T) {
	m := newManager(t)
	// A new namespace inherits the host's forwarding (on where Docker
	// runs): start from off, in the test's own namespace.
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("0"), 0o644); err != nil {
		t.Fatal(err)
	}
	// An uplink with a default route, as a host has: it overlaps every
	// pool and must not count as taken.
	up := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "uplink0"}, PeerName: "uplink1"}
	if err := netlink.LinkAdd(up); err != nil {
		t.Fatal(err)
	}
	defer netlink.LinkDel(up)
	addr, _ := netlink.ParseAddr("10.200.0.2/24")
	netlink.AddrAdd(up, addr)
	netlink.LinkSetUp(up)
	if err := netlink.RouteAdd(&netlink.Route{Gw: net.ParseIP("10.200.0.1")}); err != nil {
		t.Fatal(err)
	}
	a, err := m.Attach("ca", "alpha", []AttachRequest{{Network: DefaultName}}, []PortBinding{{Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 18080, Port: 80}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Attach("cb", "beta", []AttachRequest{{Network: DefaultName}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Endpoints[0].IP.String() != "172.17.0.2" || b.Endpoints[0].IP.String() != "172.17.0.3" {
		t.Errorf("addresses %s %s", a.Endpoints[0].IP, b.Endpoints[0].IP)
	}
	if out, err := inNS(t, a, "ip", "addr", "show", "eth0"); err != nil || !strings.Contains(out, "inet 172.17.0.2/16") || !strings.Contains(out, "02:42:ac:11:00:02") {
		t.Errorf("eth0 in the sandbox: %v\n%s", err, out)
	}
	if out, err := inNS(t, a, "ip", "route"); err != nil || !strings.Contains(out, "default via 172.17.0.1 dev eth0") {
		t.Errorf("routes: %v\n%s", err, out)
	}
	if out, err := inNS(t, a, "ping", "-c1", "-W2", "172.17.0.3"); err != nil {
		t.Errorf("container to container: %v\n%s", err, out)
	}
	if readSysctl("net/ipv4/ip_forward") != "1" {
		t.Error("forwarding not turned on")
	}

	// A published port, reached from the host's loopback.
	www := t.TempDir()
	os.WriteFile(filepath.Join(www, "index.html"), []byte("hello from alpha\n"), 0o644)
	srv := exec.Command("busybox", "nsenter", "--net="+a.Netns, "busybox", "httpd", "-f", "-p", "80", "-h", www)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	var body []byte
	for i := 0; i < 50; i++ {
		resp, err := (&http.Client{Timeout: time.Second}).Get("http://127.0.0.1:18080/index.html")
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if string(body) != "hello from alpha\n" {
		t.Errorf("published port: %q", body)
	}
	// Hairpin: beta reaches alpha's port published on every host address
	// through the bridge's gateway address. With br_netfilter passing
	// bridged frames to conntrack, the reply would be mended without
	// Berth's rule; it is turned off in this (the test's) namespace so that
	// the rule is what is tested.
	if readSysctl("net/bridge/bridge-nf-call-iptables") != "" {
		if err := writeSysctl("net/bridge/bridge-nf-call-iptables", "0"); err != nil {
			t.Fatal(err)
		}
		defer writeSysctl("net/bridge/bridge-nf-call-iptables", "1")
	}
	h, err := m.Attach("ch", "hair", []AttachRequest{{Network: DefaultName}}, []PortBinding{{Proto: "tcp", HostPort: 18081, Port: 80}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hsrv := exec.Command("busybox", "nsenter", "--net="+h.Netns, "busybox", "httpd", "-f", "-p", "80", "-h", www)
	if err := hsrv.Start(); err != nil {
		t.Fatal(err)
	}
	var hout string
	for i := 0; i < 30 && hout != "hello from alpha\n"; i++ {
		hout, _ = inNS(t, b, "timeout", "2", "busybox", "wget", "-qO-", "http://172.17.0.1:18081/index.html")
		time.Sleep(50 * time.Millisecond)
	}
	if hout != "hello from alpha\n" {
		t.Errorf("hairpin through the gateway address: %q", hout)
	}
	hsrv.Process.Kill()
	hsrv.Wait()
	m.Detach("ch")

	// A published UDP port: a datagram to 127.0.0.1:15353 arrives at port
	// 53 in the container.
	u, err := m.Attach("cu", "udp", []AttachRequest{{Network: DefaultName}}, []PortBinding{{Proto: "udp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 15353, Port: 53}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var uc *net.UDPConn
	if err := RunIn(u.Netns, func() (err error) {
		uc, err = net.ListenUDP("udp4", &net.UDPAddr{Port: 53})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	cc, err := net.Dial("udp4", "127.0.0.1:15353")
	if err != nil {
		t.Fatal(err)
	}
	cc.Write([]byte("over udp"))
	cc.Close()
	uc.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	if n, _, err := uc.ReadFrom(buf); err != nil || string(buf[:n]) != "over udp" {
		t.Errorf("published UDP port: %q %v", buf[:n], err)
	}
	uc.Close()
	m.Detach("cu")
	m.Settle()

	before := len(links(t))
	// The same host port again: docker's error, nothing made.
	if _, err := m.Attach("cc", "gamma", []AttachRequest{{Network: DefaultName}}, []PortBinding{{Proto: "tcp", HostPort: 18080, Port: 80}}, nil); err == nil || !strings.Contains(err.Error(), "port is already allocated") {
		t.Errorf("second publish of 18080: %v", err)
	}
	// A port a host process holds.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	busy := uint16(l.Addr().(*net.TCPAddr).Port)
	if _, err := m.Attach("cc", "gamma", []AttachRequest{{Network: DefaultName}}, []PortBinding{{Proto: "tcp", HostPort: busy, Port: 80}}, nil); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("publishing a port in use: %v", err)
	}
	l.Close()
	if after := len(links(t)); after != before {
		t.Errorf("refused attaches left interfaces: %d → %d", before, after)
	}
	if ents, _ := os.ReadDir(m.netnsDir); len(ents) != 2 {
		t.Errorf("namespaces pinned: %d, want 2", len(ents))
	}
	// Counters: the ping and the HTTP exchange went through eth0.
	if st := m.Stats("ca")["eth0"]; st.RxBytes == 0 || st.TxBytes == 0 || st.RxPackets == 0 {
		t.Errorf("counters %+v", st)
	}

	for _, cid := range []string{"ca", "cb"} {
		if err := m.Detach(cid); err != nil {
			t.Fatal(err)
		}
	}
	m.Settle()
	if ls := strings.Join(links(t), " "); strings.Contains(ls, "veth") {
		t.Errorf("left after detach: %s", ls)
	}
	if err := m.RemoveDefaultBridge(); err != nil || strings.Contains(strings.Join(links(t), " "), DefaultBridge) {
		t.Errorf("the default bridge stays: %v", err)
	}
	if readSysctl("net/ipv4/ip_forward") != "0" {
		t.Error("forwarding not turned off again")
	}
	c, _ := nftables.New()
	if tabs, _ := c.ListTables(); len(tabs) != 0 {
		t.Errorf("nftables tables left: %d", len(tabs))
	}
	if ents, _ := os.ReadDir(m.netnsDir); len(ents) != 0 {
		t.Errorf("namespaces left: %d", len(ents))
	}
}

func TestUserNetworks(t *testing.T) {
	m := newManager(t)
	n1, err := m.Create(CreateOptions{Name: "front", Subnet: "10.77.0.0/24", IPRange: "10.77.0.128/25"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(CreateOptions{Name: "front"}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("name clash: %v", err)
	}
	if _, err := m.Create(CreateOptions{Name: "over", Subnet: "10.77.0.0/16"}); err == nil || !strings.Contains(err.Error(), "Pool overlaps") {
		t.Errorf("overlapping subnet: %v", err)
	}
	if _, err := m.Create(CreateOptions{Name: "gw", Subnet: "10.78.0.0/24", Gateway: "10.79.0.1"}); err == nil || !strings.Contains(err.Error(), "invalid gateway") {
		t.Errorf("gateway outside: %v", err)
	}
	n2, err := m.Create(CreateOptions{Name: "back"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := m.Attach("ca", "alpha", []AttachRequest{{Network: "front"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Endpoints[0].IP.String() != "10.77.0.128" {
		t.Errorf("first address from the ip-range: %s", a.Endpoints[0].IP)
	}
	b, err := m.Attach("cb", "beta", []AttachRequest{{Network: "front", IP: netip.MustParseAddr("10.77.0.9")}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Attach("cx", "x", []AttachRequest{{Network: "front", IP: netip.MustParseAddr("10.77.0.9")}}, nil, nil); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("address handed out twice: %v", err)
	}
	if _, err := m.Attach("cx", "x", []AttachRequest{{Network: "front", IP: netip.MustParseAddr("10.1.0.9")}}, nil, nil); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Errorf("address outside the subnet: %v", err)
	}
	if _, err := m.Attach("cx", "x", []AttachRequest{{Network: "nosuch"}}, nil, nil); err == nil || !strings.Contains(err.Error(), "network nosuch not found") {
		t.Errorf("unknown network: %v", err)
	}
	c, err := m.Attach("cc", "gamma", []AttachRequest{{Network: "back"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := inNS(t, a, "ping", "-c1", "-W2", b.Endpoints[0].IP.String()); err != nil {
		t.Errorf("same network: %v\n%s", err, out)
	}
	if out, err := inNS(t, a, "ping", "-c1", "-W1", c.Endpoints[0].IP.String()); err == nil {
		t.Errorf("reached a container on another network:\n%s", out)
	}
	if err := m.Remove("front"); err == nil || !strings.Contains(err.Error(), "active endpoints") {
		t.Errorf("remove with containers: %v", err)
	}
	if err := m.Remove(DefaultName); err == nil || !strings.Contains(err.Error(), "pre-defined") {
		t.Errorf("remove bridge: %v", err)
	}
	for _, cid := range []string{"ca", "cb", "cc"} {
		m.Detach(cid)
	}
	// Restore after a "crash": a sandbox whose container is gone is
	// released.
	if _, err := m.Attach("cd", "delta", []AttachRequest{{Network: n2.ID}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	m2, err := Open(filepath.Dir(m.file), m.netnsDir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Restore(func(string) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if _, ok := m2.Sandbox("cd"); ok || len(m2.Endpoints(n2.ID)) != 0 {
		t.Error("a dead container's sandbox survived Restore")
	}
	m.st = m2.st // the test's cleanup works on the current state
	m.Settle()
	m2.Settle()
	names, err := m2.Prune()
	if err != nil || strings.Join(names, " ") != "back front" {
		t.Errorf("prune: %v %v", names, err)
	}
	if ls := strings.Join(links(t), " "); strings.Contains(ls, n1.Bridge) || strings.Contains(ls, n2.Bridge) || strings.Contains(ls, "veth") {
		t.Errorf("left: %s", ls)
	}
}

// fakeResolver answers every A query with 192.0.2.7 on 127.0.0.1:53 of
// the test's namespace, standing in for the host's resolvers.
func fakeResolver(t *testing.T) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:53")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true})
			b.StartQuestions()
			b.Question(q)
			b.StartAnswers()
			if q.Type == dnsmessage.TypeA {
				b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 5}, dnsmessage.AResource{A: [4]byte{192, 0, 2, 7}})
			}
			out, _ := b.Finish()
			c.WriteTo(out, from)
		}
	}()
}

func TestEmbeddedDNS(t *testing.T) {
	m := newManager(t)
	fakeResolver(t)
	if _, err := m.Create(CreateOptions{Name: "svc", Subnet: "10.66.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	a, err := m.Attach("ca000000000000", "alpha", []AttachRequest{{Network: "svc", Aliases: []string{"db"}}}, nil, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Attach("cb000000000000", "beta", []AttachRequest{{Network: "svc"}}, nil, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.Attach("cc000000000000", "gamma", []AttachRequest{{Network: DefaultName}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"alpha": a.Endpoints[0].IP.String(), "db": a.Endpoints[0].IP.String(), "ca0000000000": a.Endpoints[0].IP.String(), "beta": b.Endpoints[0].IP.String(), "elsewhere.example": "192.0.2.7"} {
		out, err := inNS(t, b, "nslookup", name, DNSAddr)
		if err != nil || !strings.Contains(out, "Address: "+want) {
			t.Errorf("nslookup %s from beta: %v\n%s", name, err, out)
		}
	}
	// The default bridge has no embedded server, and gamma is on no
	// network with alpha.
	if out, err := inNS(t, c, "nslookup", "alpha", DNSAddr); err == nil {
		t.Errorf("a container on the default bridge resolved alpha:\n%s", out)
	}
	m.Detach("ca000000000000")
	if out, _ := inNS(t, b, "nslookup", "alpha", DNSAddr); strings.Contains(out, a.Endpoints[0].IP.String()) {
		t.Errorf("a removed container still resolves:\n%s", out)
	}
}

// iperf measures, with iperf3 from the sandbox to a server on the
// bridge's gateway (the test's namespace), the bits per second the
// receiver saw after the first second, and the payload bytes sent in all.
// reverse measures the other way.
func iperf(t *testing.T, sb Sandbox, gw string, reverse bool, opts ...string) (float64, uint64) {
	t.Helper()
	srv := exec.Command("iperf3", "-s", "-1", "-B", gw, "-p", "15201")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	// -O 1: the first second (slow start) is left out of the figures.
	if len(opts) == 0 {
		opts = []string{"-t", "5", "-O", "1"}
	}
	args := append([]string{"nsenter", "--net=" + sb.Netns, "iperf3", "-c", gw, "-p", "15201", "-J"}, opts...)
	if reverse {
		args = append(args, "-R")
	}
	var res struct {
		Error     string
		Intervals []struct {
			Sum struct{ Bytes uint64 }
		}
		End struct {
			SumReceived struct {
				Bytes         uint64
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	var out []byte
	for i := 0; ; i++ {
		// iperf3 -J exits 0 even when it could not connect: retry until
		// the server listens.
		out, _ = exec.Command("busybox", args...).Output()
		res.Error = ""
		if err := json.Unmarshal(out, &res); err == nil && res.Error == "" && res.End.SumReceived.BitsPerSecond > 0 {
			break
		}
		if i == 30 {
			t.Fatalf("iperf3:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var total uint64 // the omitted first second included
	for _, iv := range res.Intervals {
		total += iv.Sum.Bytes
	}
	return res.End.SumReceived.BitsPerSecond, total
}

// TestBandwidthLimit: 10 Mbit/s each way holds within 15% (iperf3, both
// ends in namespaces the test owns), a running container's limit can be
// changed, and the counters account for the bytes sent.
func TestBandwidthLimit(t *testing.T) {
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Skip("needs iperf3 (Debian's iperf3)")
	}
	m := newManager(t)
	a, err := m.Attach("ca", "alpha", []AttachRequest{{Network: DefaultName}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	gw := "172.17.0.1"
	if err := m.SetBandwidth("ca", Bandwidth{Egress: 10e6, Ingress: 10e6}); err != nil {
		t.Fatal(err)
	}
	up, _ := iperf(t, a, gw, false)
	down, _ := iperf(t, a, gw, true)
	t.Logf("10 Mbit/s limit: egress %.2f Mbit/s, ingress %.2f Mbit/s", up/1e6, down/1e6)
	for dir, got := range map[string]float64{"egress": up, "ingress": down} {
		if got < 8.5e6 || got > 11.5e6 {
			t.Errorf("%s under 10 Mbit/s: %.2f Mbit/s", dir, got/1e6)
		}
	}
	if err := m.SetBandwidth("ca", Bandwidth{Egress: 4e6}); err != nil {
		t.Fatal(err)
	}
	if up, _ := iperf(t, a, gw, false); up < 3.4e6 || up > 4.6e6 {
		t.Errorf("egress after the change to 4 Mbit/s: %.2f Mbit/s", up/1e6)
	}
	if err := m.SetBandwidth("ca", Bandwidth{}); err != nil {
		t.Fatal(err)
	}
	if up, _ := iperf(t, a, gw, false); up < 50e6 {
		t.Errorf("egress without a limit: %.2f Mbit/s", up/1e6)
	}
	// Counters: 40,000,000 bytes sent over TCP from the container to a
	// listener on the gateway; TCP/IP headers come on top.
	ln, err := net.Listen("tcp4", gw+":15202")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		got <- n
	}()
	const payload = 40000000
	before := m.Stats("ca")["eth0"]
	if err := RunIn(a.Netns, func() error {
		c, err := net.Dial("tcp4", gw+":15202")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = io.CopyN(c, zeros{}, payload)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n != payload {
		t.Fatalf("the listener got %d bytes of %d", n, payload)
	}
	tx := m.Stats("ca")["eth0"].TxBytes - before.TxBytes
	t.Logf("%d bytes sent, %d counted", payload, tx)
	if tx < payload || tx > payload*11/10 {
		t.Errorf("counter %d bytes for %d sent", tx, payload)
	}
	if _, err := ParseBandwidth("lots"); err == nil {
		t.Error("a bad rate was accepted")
	}
	if b, err := ParseBandwidth("egress=1.5mbit,ingress=200kbit"); err != nil || b.Egress != 1.5e6 || b.Ingress != 200e3 {
		t.Errorf("parse: %+v %v", b, err)
	}
}

// TestIPv6Network: a network with an IPv6 subnet gives each container an
// address from it (no DAD wait), a default route, names with AAAA
// records; IPv6 forwarding and the ip6 table come and go with it.
func TestIPv6Network(t *testing.T) {
	m := newManager(t)
	fakeResolver(t)
	if _, err := m.Create(CreateOptions{Name: "v6", IPv6: true, Subnet6: "10.1.0.0/24"}); err == nil || !strings.Contains(err.Error(), "IPv6") {
		t.Errorf("an IPv4 prefix as the IPv6 subnet: %v", err)
	}
	if _, err := m.Create(CreateOptions{Name: "v6", IPv6: true, Subnet6: "fd00:77::/64"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(CreateOptions{Name: "v6b", IPv6: true, Subnet6: "fd00:77::/48"}); err == nil || !strings.Contains(err.Error(), "Pool overlaps") {
		t.Errorf("overlapping IPv6 subnets: %v", err)
	}
	a, err := m.Attach("ca000000000000", "alpha", []AttachRequest{{Network: "v6"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Attach("cb000000000000", "beta", []AttachRequest{{Network: "v6", IP6: netip.MustParseAddr("fd00:77::99")}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Endpoints[0].IP6.String() != "fd00:77::2" || b.Endpoints[0].IP6.String() != "fd00:77::99" {
		t.Errorf("IPv6 addresses %s %s", a.Endpoints[0].IP6, b.Endpoints[0].IP6)
	}
	if out, err := inNS(t, b, "ping", "-6", "-c1", "-W2", "fd00:77::2"); err != nil {
		t.Errorf("IPv6 container to container: %v\n%s", err, out)
	}
	if out, err := inNS(t, a, "ip", "-6", "route"); err != nil || !strings.Contains(out, "default via fd00:77::1") {
		t.Errorf("IPv6 routes: %v\n%s", err, out)
	}
	if out, err := inNS(t, a, "nslookup", "-type=aaaa", "beta", DNSAddr); err != nil || !strings.Contains(out, "fd00:77::99") {
		t.Errorf("AAAA for beta: %v\n%s", err, out)
	}
	if readSysctl("net/ipv6/conf/all/forwarding") != "1" {
		t.Error("IPv6 forwarding not on")
	}
	m.Detach("ca000000000000")
	m.Detach("cb000000000000")
	m.Settle()
	if err := m.Remove("v6"); err != nil {
		t.Fatal(err)
	}
	if readSysctl("net/ipv6/conf/all/forwarding") != "0" {
		t.Error("IPv6 forwarding left on")
	}
	c, _ := nftables.New()
	if tabs, _ := c.ListTables(); len(tabs) != 0 {
		t.Errorf("nftables tables left: %d", len(tabs))
	}
}

// TestLocalMTU: a network without an MTU gives its links LocalMTU and the
// container's default route OutboundMTU, so TCP to the gateway takes
// segments of tens of KiB and TCP to an address past the gateway docker's
// 1460; a
// network with an MTU (or the default one after SetDefaultMTU) is that
// MTU throughout.
func TestLocalMTU(t *testing.T) {
	m := newManager(t)
	// An address of the host's that a container reaches through its
	// default route, not on the bridge.
	far := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "far0"}, PeerName: "far1"}
	if err := netlink.LinkAdd(far); err != nil {
		t.Fatal(err)
	}
	defer netlink.LinkDel(far)
	addr, _ := netlink.ParseAddr("10.201.0.1/24")
	if err := netlink.AddrAdd(far, addr); err != nil {
		t.Fatal(err)
	}
	netlink.LinkSetUp(far)
	ln, err := net.Listen("tcp4", ":15203")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	// mss dials to:15203 from the sandbox and returns the connection's MSS.
	mss := func(sb Sandbox, to string) int {
		t.Helper()
		var got int
		err := RunIn(sb.Netns, func() error {
			c, err := net.Dial("tcp4", to+":15203")
			if err != nil {
				return err
			}
			defer c.Close()
			raw, _ := c.(*net.TCPConn).SyscallConn()
			var serr error
			raw.Control(func(fd uintptr) { got, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG) })
			return serr
		})
		if err != nil {
			t.Fatalf("%s to %s: %v", sb.Name, to, err)
		}
		return got
	}
	// mtus returns eth0's MTU and the default route's in the sandbox.
	mtus := func(sb Sandbox) (link, route int) {
		t.Helper()
		err := RunIn(sb.Netns, func() error {
			l, err := netlink.LinkByName("eth0")
			if err != nil {
				return err
			}
			link = l.Attrs().MTU
			rs, err := netlink.RouteList(l, netlink.FAMILY_V4)
			for _, r := range rs {
				if r.Dst == nil || r.Dst.IP.IsUnspecified() {
					route = r.MTU
				}
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return link, route
	}
	linkMTU := func(name string) int {
		l, err := netlink.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().MTU
	}

	a, err := m.Attach("ca", "alpha", []AttachRequest{{Network: DefaultName}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if link, route := mtus(a); link != LocalMTU || route != OutboundMTU {
		t.Errorf("default network: eth0 MTU %d, default route MTU %d; want %d and %d", link, route, LocalMTU, OutboundMTU)
	}
	if h, b := linkMTU(a.Endpoints[0].HostVeth), linkMTU(DefaultBridge); h != LocalMTU || b != LocalMTU {
		t.Errorf("host end MTU %d, bridge MTU %d; want %d", h, b, LocalMTU)
	}
	// The kernel caps a connection's MSS at half the peer's largest
	// window (32 KiB at first), still far above 1460.
	if got := mss(a, "172.17.0.1"); got < 16000 {
		t.Errorf("MSS to the gateway %d, want tens of KiB", got)
	}
	if got := mss(a, "10.201.0.1"); got > OutboundMTU-40 {
		t.Errorf("MSS past the gateway %d, want at most %d", got, OutboundMTU-40)
	}

	small, err := m.Create(CreateOptions{Name: "small", Options: map[string]string{"com.docker.network.driver.mtu": "1400"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(CreateOptions{Name: "bad", Options: map[string]string{"com.docker.network.driver.mtu": "70000"}}); err == nil || !strings.Contains(err.Error(), "invalid MTU") {
		t.Errorf("MTU 70000: %v", err)
	}
	b, err := m.Attach("cb", "beta", []AttachRequest{{Network: "small"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if link, route := mtus(b); link != 1400 || route != 0 {
		t.Errorf("network with MTU 1400: eth0 MTU %d, default route MTU %d", link, route)
	}
	if past, to := mss(b, "10.201.0.1"), mss(b, small.Gateway.String()); past > 1360 || to > 1360 {
		t.Errorf("MSS on a 1400 network: %d past the gateway, %d to it", past, to)
	}

	if err := m.SetDefaultMTU(20); err == nil || !strings.Contains(err.Error(), "invalid MTU") {
		t.Errorf("SetDefaultMTU(20): %v", err)
	}
	if err := m.SetDefaultMTU(1450); err != nil {
		t.Fatal(err)
	}
	c, err := m.Attach("cc", "gamma", []AttachRequest{{Network: DefaultName}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if link, route := mtus(c); link != 1450 || route != 0 {
		t.Errorf("default network with MTU 1450: eth0 MTU %d, default route MTU %d", link, route)
	}
}

// zeros reads as an endless stream of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
