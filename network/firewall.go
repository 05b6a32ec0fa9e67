package network

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/google/nftables"
)

// Beside Docker (or any firewall of iptables), Berth's own nftables table
// is not enough: a packet crossing the FORWARD hook must be accepted by
// every base chain there, and dockerd sets iptables' FORWARD policy to
// DROP and loads br_netfilter, which sends even traffic between two
// containers on one bridge through it. So, as Podman does, Berth puts an
// ACCEPT for each of its bridges (in and out) in a chain of its own,
// jumped to from iptables' FORWARD — only while one of its bridges is in
// use and only where such a firewall exists — and removes them when its
// networks go. Isolation between Berth's networks stays in Berth's table,
// which still sees (and may drop) every packet.

// forwardChain is the default daemon's iptables chain holding its
// accepts (Options.ForwardChain).
const forwardChain = "BERTH-FORWARD"

// firewallState is what Berth has put in iptables.
type firewallState struct {
	bridges []string // with accepts in forwardChain, sorted; nil: the chain is not there
}

// syncFirewall makes forwardChain accept exactly bridges (sorted), if
// another firewall filters forwarding; errors are logged, never fatal
// (Berth's networks work without iptables where nothing else filters).
func (m *Manager) syncFirewall(bridges []string) {
	if slices.Equal(bridges, m.fw.bridges) && (m.fw.bridges != nil || len(bridges) == 0) {
		return
	}
	if m.fw.bridges == nil && (len(bridges) == 0 || !foreignFirewall()) {
		return
	}
	ipt, err := exec.LookPath("iptables")
	if err != nil {
		return
	}
	if len(bridges) == 0 {
		// Our networks are gone: the jump and the chain go too.
		run := func(args ...string) { exec.Command(ipt, append([]string{"-w"}, args...)...).Run() }
		for exec.Command(ipt, "-w", "-C", "FORWARD", "-j", m.o.ForwardChain).Run() == nil {
			run("-D", "FORWARD", "-j", m.o.ForwardChain)
		}
		run("-F", m.o.ForwardChain)
		run("-X", m.o.ForwardChain)
		m.fw.bridges = nil
		return
	}
	// iptables-restore --noflush flushes the chains it declares and
	// leaves everything else as it is.
	var script bytes.Buffer
	chain := m.o.ForwardChain
	fmt.Fprintf(&script, "*filter\n:%s - [0:0]\n", chain)
	for _, b := range bridges {
		fmt.Fprintf(&script, "-A %s -i %s -j ACCEPT\n-A %s -o %s -j ACCEPT\n", chain, b, chain, b)
	}
	script.WriteString("COMMIT\n")
	restore := exec.Command(ipt+"-restore", "-w", "--noflush")
	restore.Stdin = &script
	if out, err := restore.CombinedOutput(); err != nil {
		m.log.Warn("iptables: accept Berth's bridges in FORWARD", "err", err, "output", strings.TrimSpace(string(out)))
		return
	}
	if exec.Command(ipt, "-w", "-C", "FORWARD", "-j", m.o.ForwardChain).Run() != nil {
		if out, err := exec.Command(ipt, "-w", "-I", "FORWARD", "-j", m.o.ForwardChain).CombinedOutput(); err != nil {
			m.log.Warn("iptables: jump from FORWARD", "err", err, "output", strings.TrimSpace(string(out)))
			return
		}
	}
	m.fw.bridges = slices.Clone(bridges)
}

// foreignFirewall reports whether iptables filters forwarding here: its
// FORWARD chain (nftables-backed, as Debian's iptables is) drops by policy
// or has rules, or legacy iptables has a filter table.
func foreignFirewall() bool {
	if names, err := os.ReadFile("/proc/net/ip_tables_names"); err == nil && strings.Contains(string(names), "filter") {
		return true
	}
	c, err := nftables.New()
	if err != nil {
		return false
	}
	defer c.CloseLasting()
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return false
	}
	for _, ch := range chains {
		if ch.Table.Name == "filter" && ch.Name == "FORWARD" {
			if ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop {
				return true
			}
			if rules, err := c.GetRules(ch.Table, ch); err == nil && len(rules) > 0 {
				return true
			}
		}
	}
	return false
}
