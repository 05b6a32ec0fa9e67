package dockercli

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/network"
	"github.com/berth-project/berth/test/berthd"
	"github.com/berth-project/berth/test/oracle"
)

// TestNetworkingWithDockerCLI: the default bridge and a user-defined
// network, driven by the docker CLI. berthd runs in a network namespace
// of the test's own (test/berthd), the "host" here.
func TestNetworkingWithDockerCLI(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	before := d.hostState(t)
	inHost := func(args ...string) string {
		t.Helper()
		out, err := d.InNetns(args...)
		if err != nil {
			t.Errorf("%v in the daemon's namespace: %v\n%s", args, err, out)
		}
		return out
	}
	// What berthd must give back: the namespace inherits the host's
	// forwarding (on where Docker runs).
	forwardBefore := strings.TrimSpace(inHost("busybox", "cat", "/proc/sys/net/ipv4/ip_forward"))

	// Default bridge: an address, a route, /etc/hosts, the local MTU.
	out, _ := d.stdout(t, "", "run", "--rm", "--hostname", "box", "busybox", "sh", "-c", "ip -4 -o addr show eth0; ip route; grep box /etc/hosts; ip link show eth0")
	for _, want := range []string{"inet 172.17.0.2/16", "default via 172.17.0.1 dev eth0", "172.17.0.2\tbox", "mtu 65535"} {
		if !strings.Contains(out, want) {
			t.Errorf("default bridge: no %q in\n%s", want, out)
		}
	}

	// Container → a service of the host, over the bridge.
	srv := exec.Command("busybox", "nsenter", "--net="+d.Netns(), "busybox", "httpd", "-f", "-p", "18099", "-h", "/etc")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	if out, _ := d.stdout(t, "", "run", "--rm", "busybox", "wget", "-qO-", "http://172.17.0.1:18099/hostname"); out == "" {
		t.Error("container → host service over the bridge: no answer")
	}

	// Host → container through a published port on 127.0.0.1.
	d.must(t, "run", "-d", "--name", "web", "-p", "127.0.0.1:18080:80", "busybox", "sh", "-c", "echo served > /tmp/i; httpd -f -p 80 -h /tmp")
	var got string
	for i := 0; i < 50 && got != "served\n"; i++ {
		got, _ = d.InNetns("busybox", "wget", "-qO-", "http://127.0.0.1:18080/i")
		time.Sleep(50 * time.Millisecond)
	}
	if got != "served\n" {
		t.Errorf("published port: %q", got)
	}
	if out := d.must(t, "port", "web"); strings.TrimSpace(out) != "80/tcp -> 127.0.0.1:18080" {
		t.Errorf("docker port: %q", out)
	}
	if out := d.must(t, "inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}} {{.NetworkSettings.Networks.bridge.Gateway}}", "web"); strings.TrimSpace(out) != "172.17.0.2 172.17.0.1" {
		t.Errorf("inspect: %q", out)
	}
	// The same port again: docker's error; nothing made.
	if out, err := d.docker("run", "-d", "--name", "web2", "-p", "127.0.0.1:18080:80", "busybox", "sleep", "10"); err == nil || !strings.Contains(out, "port is already allocated") {
		t.Errorf("a taken port: %v %s", err, out)
	}
	d.must(t, "rm", "web2")
	// -P: an ephemeral port for each exposed one.
	d.must(t, "run", "-d", "--name", "eph", "-P", "--expose", "7000", "busybox", "sleep", "100")
	if out := d.must(t, "port", "eph", "7000"); !strings.HasPrefix(out, "0.0.0.0:") {
		t.Errorf("-P: %q", out)
	}
	// Counters: the container that served HTTP sent and received bytes.
	var st struct {
		Networks map[string]struct {
			RxBytes uint64 `json:"rx_bytes"`
			TxBytes uint64 `json:"tx_bytes"`
		} `json:"networks"`
	}
	_, raw := d.get(t, "/containers/web/stats?stream=false")
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, &st); err != nil || st.Networks["eth0"].RxBytes == 0 || st.Networks["eth0"].TxBytes == 0 {
		t.Errorf("stats networks: %+v %v", st, err)
	}
	if out := d.must(t, "inspect", "-f", "{{.BerthNetworkCounters.eth0.rx_bytes}}", "web"); strings.TrimSpace(out) == "0" || strings.Contains(out, "no value") {
		t.Errorf("counters in inspect: %q", out)
	}
	d.must(t, "rm", "-f", "web", "eph")
	// The port is free again.
	d.must(t, "run", "-d", "--name", "web3", "-p", "127.0.0.1:18080:80", "busybox", "sleep", "100")
	d.must(t, "rm", "-f", "web3")

	// A user-defined network; containers on it reach each other, not the
	// default bridge's.
	d.must(t, "network", "create", "--subnet", "10.55.0.0/24", "--gateway", "10.55.0.254", "front")
	if out := d.must(t, "network", "ls", "--format", "{{.Name}} {{.Driver}}"); !strings.Contains(out, "front bridge") || !strings.Contains(out, "bridge bridge") {
		t.Errorf("network ls:\n%s", out)
	}
	d.must(t, "run", "-d", "--name", "alpha", "--network", "front", "--ip", "10.55.0.10", "busybox", "sleep", "100")
	d.must(t, "run", "-d", "--name", "other", "busybox", "sleep", "100")
	if out, _ := d.stdout(t, "", "run", "--rm", "--network", "front", "busybox", "ping", "-c1", "-W2", "10.55.0.10"); !strings.Contains(out, "1 packets received") {
		t.Errorf("same network:\n%s", out)
	}
	if out, _ := d.stdout(t, "", "run", "--rm", "--network", "front", "busybox", "ping", "-c1", "-W1", "172.17.0.2"); strings.Contains(out, "1 packets received") {
		t.Errorf("reached the default bridge from a user network:\n%s", out)
	}
	// By name and alias through the embedded resolver, on the same network
	// only.
	d.must(t, "run", "-d", "--name", "beta", "--network", "front", "--network-alias", "db", "busybox", "sleep", "100")
	for _, name := range []string{"alpha", "db", "beta"} {
		if out, _ := d.stdout(t, "", "run", "--rm", "--network", "front", "busybox", "nslookup", name); !strings.Contains(out, "Address: 10.55.0.") {
			t.Errorf("nslookup %s on front:\n%s", name, out)
		}
	}
	if out, _ := d.stdout(t, "", "run", "--rm", "--network", "front", "busybox", "cat", "/etc/resolv.conf"); !strings.Contains(out, "nameserver 127.0.0.11") {
		t.Errorf("resolv.conf on a user network:\n%s", out)
	}
	if out, _ := d.stdout(t, "", "run", "--rm", "busybox", "nslookup", "alpha", "127.0.0.11"); strings.Contains(out, "10.55.0.10") {
		t.Errorf("resolved alpha from the default bridge:\n%s", out)
	}
	d.must(t, "rm", "-f", "beta")
	if out := d.must(t, "network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}", "front"); strings.TrimSpace(out) != "alpha 10.55.0.10/24" {
		t.Errorf("network inspect: %q", out)
	}

	// Bad input: docker's errors, nothing made.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"network", "create", "--subnet", "10.55.0.0/16", "over"}, "Pool overlaps"},
		{[]string{"network", "create", "front"}, "already exists"},
		{[]string{"run", "--rm", "--network", "front", "--ip", "10.9.9.9", "busybox", "true"}, "does not belong"},
		{[]string{"run", "--rm", "--network", "front", "--ip", "10.55.0.10", "busybox", "true"}, "Address already in use"},
		{[]string{"run", "--rm", "--network", "nowhere", "busybox", "true"}, "network nowhere not found"},
		{[]string{"network", "rm", "front"}, "active endpoints"},
		{[]string{"network", "rm", "bridge"}, "pre-defined network"},
	} {
		if out, err := d.docker(c.args...); err == nil || !strings.Contains(out, c.want) {
			t.Errorf("docker %v: %v %s (want %q)", c.args, err, out, c.want)
		}
	}
	// connect and disconnect: a running container gets (and loses) an
	// interface on another network; a stopped one gets it at start.
	d.must(t, "network", "connect", "--alias", "bridged", "front", "other")
	if out, _ := d.stdout(t, "", "exec", "other", "sh", "-c", "ip -4 -o addr show eth1; ping -c1 -W2 10.55.0.10"); !strings.Contains(out, "inet 10.55.0.") || !strings.Contains(out, "1 packets received") {
		t.Errorf("after connect:\n%s", out)
	}
	if out, _ := d.stdout(t, "", "exec", "alpha", "nslookup", "bridged"); !strings.Contains(out, "Address: 10.55.0.") {
		t.Errorf("the connected container's alias:\n%s", out)
	}
	if out := d.must(t, "inspect", "-f", "{{len .NetworkSettings.Networks}}", "other"); strings.TrimSpace(out) != "2" {
		t.Errorf("networks in inspect after connect: %s", out)
	}
	if out, err := d.docker("network", "disconnect", "bridge", "other"); err == nil || !strings.Contains(out, "cannot disconnect") {
		t.Errorf("disconnect from the creation network: %v %s", err, out)
	}
	d.must(t, "network", "disconnect", "front", "other")
	if out, _ := d.stdout(t, "", "exec", "other", "ip", "-o", "link"); strings.Contains(out, "eth1") {
		t.Errorf("eth1 after disconnect:\n%s", out)
	}
	d.must(t, "create", "--name", "later", "busybox", "sleep", "100")
	d.must(t, "network", "connect", "front", "later")
	d.must(t, "start", "later")
	if out, _ := d.stdout(t, "", "exec", "later", "ping", "-c1", "-W2", "10.55.0.10"); !strings.Contains(out, "1 packets received") {
		t.Errorf("connected before start:\n%s", out)
	}
	d.must(t, "rm", "-f", "alpha", "other", "later")
	d.must(t, "network", "rm", "front")

	// IPv6 when asked.
	d.must(t, "network", "create", "--ipv6", "--subnet", "fd00:55::/64", "six")
	d.must(t, "run", "-d", "--name", "v6a", "--network", "six", "busybox", "sleep", "100")
	if out := d.must(t, "inspect", "-f", "{{.NetworkSettings.Networks.six.GlobalIPv6Address}}", "v6a"); strings.TrimSpace(out) != "fd00:55::2" {
		t.Errorf("IPv6 address in inspect: %q", out)
	}
	if out, _ := d.stdout(t, "", "run", "--rm", "--network", "six", "busybox", "ping", "-6", "-c1", "-W2", "v6a"); !strings.Contains(out, "1 packets received") {
		t.Errorf("IPv6 by name:\n%s", out)
	}
	d.must(t, "rm", "-f", "v6a")
	d.must(t, "network", "rm", "six")
	if out := d.must(t, "ps", "-aq"); out != "" {
		t.Errorf("containers left: %q", out)
	}
	if out := linksSettled(d); strings.Contains(out, "veth") || strings.Contains(out, "br-") {
		t.Errorf("interfaces left:\n%s", out)
	}
	if out := inHost("busybox", "cat", "/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(out) != forwardBefore {
		t.Errorf("ip_forward left at %q, was %q", out, forwardBefore)
	}
	if after := d.hostState(t); after.mounts != before.mounts || after.cgroups != before.cgroups {
		t.Errorf("left behind: before %+v, after %+v", before, after)
	}
}

// TestNetworkChurn: 100 containers on the default bridge, each with a
// published port, started and removed: no veth, nftables rule, address or
// namespace is left.
func TestNetworkChurn(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	var ids []string
	for i := 0; i < 100; i++ {
		out := d.must(t, "run", "-d", "-p", "127.0.0.1::80", "busybox", "sleep", "100")
		ids = append(ids, strings.TrimSpace(out))
	}
	if out, _ := d.InNetns("busybox", "ip", "-o", "link"); strings.Count(out, "veth") != 100 {
		t.Errorf("veths with 100 containers: %d", strings.Count(out, "veth"))
	}
	// The daemon's table is named after its data root (berth-<hash>).
	tables, _ := d.InNetns("/usr/sbin/nft", "list", "tables")
	table := ""
	for _, f := range strings.Fields(tables) {
		if strings.HasPrefix(f, "berth") {
			table = f
		}
	}
	if out, _ := d.InNetns("/usr/sbin/nft", "list", "chain", "ip", table, "ports"); strings.Count(out, "dnat to") != 100 {
		t.Errorf("port rules with 100 containers: %d", strings.Count(out, "dnat to"))
	}
	d.must(t, append([]string{"rm", "-f"}, ids...)...)
	if out := linksSettled(d); strings.Contains(out, "veth") {
		t.Errorf("interfaces left:\n%s", out)
	}
	if out, _ := d.InNetns("/usr/sbin/nft", "list", "tables"); strings.TrimSpace(out) != "" {
		t.Errorf("nftables left: %s", out)
	}
	state, err := os.ReadFile(filepath.Join(d.DataRoot, "network", "network.json"))
	if err != nil || !strings.Contains(string(state), `"sandboxes": {}`) {
		t.Errorf("sandboxes (addresses, ports) left in the state: %v\n%s", err, state)
	}
	if ents, _ := os.ReadDir(filepath.Join(d.Dir, "exec", "netns")); len(ents) != 0 {
		t.Errorf("namespaces left: %d", len(ents))
	}
}

// linksSettled lists the daemon namespace's interfaces once no veth is
// left, or after 5 s: berthd deletes the host ends of removed containers'
// veths in the background. The default bridge stays, as docker0 does.
func linksSettled(d *daemon) string {
	var out string
	for i := 0; i < 100; i++ {
		out, _ = d.InNetns("busybox", "ip", "-o", "link")
		if !strings.Contains(out, "veth") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return out
}

// TestNetworksBesideDocker: Debian's dockerd runs in berthd's own network
// namespace, as on a host with Docker: it sets the iptables FORWARD policy
// to DROP and bridged traffic goes through iptables (br_netfilter). Berth's
// containers must still reach each other on the default bridge and on a
// user network, reach the host, and be reached on a published port; and
// when Berth's networks are gone, so are its rules.
func TestNetworksBesideDocker(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	// dockerd sets FORWARD to DROP when it is the one to turn forwarding
	// on; a new namespace inherits the host's setting, which a host with
	// Docker has on already: the test's namespace starts with it off.
	if out, err := d.InNetns("sysctl", "-w", "net.ipv4.ip_forward=0"); err != nil {
		t.Fatalf("turn forwarding off in the test's namespace: %v: %s", err, out)
	}
	dockerd := oracle.Start(t, d.Netns(), "--bip", "172.30.0.1/24")
	if out, _ := d.InNetns("iptables", "-S", "FORWARD"); !strings.Contains(out, "-P FORWARD DROP") {
		t.Fatalf("dockerd did not set FORWARD to DROP:\n%s", out)
	}
	_ = dockerd
	d.must(t, "network", "create", "mesh")
	d.must(t, "run", "-d", "--name", "m1", "--network", "mesh", "busybox", "sleep", "600")
	d.must(t, "run", "-d", "--name", "b1", "busybox", "sleep", "600")
	b1 := strings.TrimSpace(d.must(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "b1"))
	if out, _ := d.stdout(t, "", "run", "--rm", "--network", "mesh", "busybox", "ping", "-c1", "-W3", "m1"); !strings.Contains(out, "1 packets received") {
		t.Errorf("user network, container to container:\n%s", out)
	}
	if out, _ := d.stdout(t, "", "run", "--rm", "busybox", "ping", "-c1", "-W3", b1); !strings.Contains(out, "1 packets received") {
		t.Errorf("default bridge, container to container:\n%s", out)
	}
	d.must(t, "run", "-d", "--name", "web", "-p", "127.0.0.1:18088:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	var got string
	for i := 0; i < 30; i++ {
		if got, _ = d.InNetns("busybox", "wget", "-qO-", "http://127.0.0.1:18088/hostname"); strings.TrimSpace(got) != "" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.TrimSpace(got) == "" {
		t.Errorf("published port beside Docker: nothing served")
	}
	d.must(t, "rm", "-f", "m1", "b1", "web")
	d.must(t, "network", "rm", "mesh")
	if out, _ := d.InNetns("iptables", "-S"); strings.Contains(out, "berth") {
		t.Errorf("iptables rules left once Berth's networks are gone:\n%s", out)
	}
}

// TestTwoDaemonsOneHost: two berthd in one network namespace, as two on
// one host. The second cannot take the first's bridge (a clear refusal
// at start); with --bridge and --bip of its own it runs beside it, each
// with its own nftables table, and removing one's containers leaves the
// other's rules and published ports working.
func TestTwoDaemonsOneHost(t *testing.T) {
	d1 := startDaemon(t)
	withBusybox(t, d1)
	serve := func(d *daemon, name, port string) {
		d.must(t, "run", "-d", "--name", name, "-p", "127.0.0.1:"+port+":80", "busybox", "sh", "-c", "echo "+name+" > /tmp/who; exec httpd -f -p 80 -h /tmp")
	}
	get := func(port string) string {
		var out string
		for i := 0; i < 30; i++ {
			if out, _ = d1.InNetns("busybox", "wget", "-qO-", "http://127.0.0.1:"+port+"/who"); strings.TrimSpace(out) != "" {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		return strings.TrimSpace(out)
	}
	serve(d1, "one", "18081")

	dir := t.TempDir()
	cmd := exec.Command("busybox", "nsenter", "--net="+d1.Netns(), d1.Binary(), "-H", "unix://"+filepath.Join(dir, "s.sock"),
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"), "--pidfile", filepath.Join(dir, "pid"), "--config-file", "/dev/null")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "bridge berth0 belongs to another berthd") {
		t.Errorf("a second daemon on the first's bridge: want a refusal: %v\n%s", err, out)
	}

	bd2 := berthd.StartBeside(t, d1.Daemon, "--bridge", "berth1", "--bip", "10.77.0.1/24")
	d2 := &daemon{Daemon: bd2, sock: bd2.Sock, dir: bd2.Dir}
	withBusybox(t, d2)
	serve(d2, "two", "18082")
	if ip := strings.TrimSpace(d2.must(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "two")); ip != "10.77.0.2" {
		t.Errorf("second daemon's container at %q, want 10.77.0.2 (--bip)", ip)
	}
	if a, b := get("18081"), get("18082"); a != "one" || b != "two" {
		t.Errorf("published ports: %q %q", a, b)
	}
	tables, _ := d1.InNetns("nft", "list", "tables")
	if strings.Count(tables, "table ip berth") != 2 {
		t.Errorf("want a table per daemon:\n%s", tables)
	}
	if addrs, _ := d1.InNetns("ip", "-4", "-o", "addr", "show", "berth0"); strings.Count(addrs, "inet ") != 1 {
		t.Errorf("berth0 carries more than its daemon's subnet:\n%s", addrs)
	}
	d2.must(t, "rm", "-f", "two")
	if a := get("18081"); a != "one" {
		t.Errorf("the first daemon's port after the second removed its container: %q", a)
	}
	// A bridge whose daemon is gone is taken over by the next one.
	d2.Stop()
	bd3 := berthd.StartBeside(t, d1.Daemon, "--bridge", "berth1", "--bip", "10.78.0.1/24")
	d3 := &daemon{Daemon: bd3, sock: bd3.Sock, dir: bd3.Dir}
	withBusybox(t, d3)
	if out, _ := d3.stdout(t, "", "run", "--rm", "busybox", "ip", "-4", "-o", "addr", "show", "eth0"); !strings.Contains(out, "10.78.0.") {
		t.Errorf("a daemon on the bridge of one that stopped: %q", out)
	}
}

// TestPublishedPortHeld: a published host port stays bound by berthd
// while the container has it — a host program cannot take it and then
// lose its traffic to the container — across a berthd restart, and is
// free again once the container is gone.
func TestPublishedPortHeld(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	d.must(t, "run", "-d", "--name", "held", "-p", "127.0.0.1:18095:80", "-p", "127.0.0.1:18095:53/udp", "busybox", "sleep", "600")
	bind := func(proto string) error {
		var err error
		nerr := network.RunIn(d.Netns(), func() error {
			if proto == "tcp" {
				var l net.Listener
				if l, err = net.Listen("tcp4", "127.0.0.1:18095"); err == nil {
					l.Close()
				}
			} else {
				var c net.PacketConn
				if c, err = net.ListenPacket("udp4", "127.0.0.1:18095"); err == nil {
					c.Close()
				}
			}
			return nil
		})
		if nerr != nil {
			t.Fatal(nerr)
		}
		return err
	}
	for _, proto := range []string{"tcp", "udp"} {
		if bind(proto) == nil {
			t.Errorf("a host program could bind the published %s port", proto)
		}
	}
	d.stop()
	d.start(t)
	if bind("tcp") == nil {
		t.Error("after berthd restarted, a host program could bind the published port")
	}
	d.must(t, "rm", "-f", "held")
	for _, proto := range []string{"tcp", "udp"} {
		if err := bind(proto); err != nil {
			t.Errorf("the %s port once the container is gone: %v", proto, err)
		}
	}
}
