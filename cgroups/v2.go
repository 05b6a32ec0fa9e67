package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-project/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v2 manages one directory of the unified hierarchy.
// Device rules become an eBPF program attached to the directory
// (devices_v2.go).
type v2 struct {
	dir string
}

func (m *v2) Mode() Mode               { return Unified }
func (m *v2) Paths() map[string]string { return map[string]string{"": m.dir} }

// Create makes the directory and enables, on every ancestor below the root,
// the controllers the root offers, so that the leaf has their files.
func (m *v2) Create() error {
	rel, err := filepath.Rel(Root, m.dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("cgroup: %s is outside %s", m.dir, Root)
	}
	avail, _ := os.ReadFile(filepath.Join(Root, "cgroup.controllers"))
	var enable []string
	for _, c := range strings.Fields(string(avail)) {
		enable = append(enable, "+"+c)
	}
	cur := Root
	for _, part := range strings.Split(rel, "/") {
		if len(enable) > 0 {
			// Best effort: a controller the parent cannot delegate is
			// reported by Set when a limit needs it.
			_ = os.WriteFile(filepath.Join(cur, "cgroup.subtree_control"), []byte(strings.Join(enable, " ")), 0)
		}
		cur = filepath.Join(cur, part)
		if err := os.Mkdir(cur, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("cgroup: create %s: %w", cur, err)
		}
	}
	return nil
}

func (m *v2) Apply(pid int) error {
	return writeFile(m.dir, "cgroup.procs", strconv.Itoa(pid))
}

func (m *v2) Pids() ([]int, error) { return readPids(m.dir) }

func (m *v2) Destroy() error {
	if _, err := os.Stat(filepath.Join(m.dir, "cgroup.kill")); err == nil {
		_ = writeFile(m.dir, "cgroup.kill", "1")
	}
	killAll(m.Pids)
	if err := removeDir(m.dir); err != nil {
		return err
	}
	pruneDefaultParent(m.dir)
	return nil
}

func (m *v2) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := validate(r); err != nil {
		return err
	}
	w := func(set bool, file, field, value string) error {
		if !set {
			return nil
		}
		return writeChecked(m.dir, file, field, value)
	}
	if c := r.CPU; c != nil {
		if err := w(c.Shares != nil && *c.Shares != 0, "cpu.weight", "linux.resources.cpu.shares", strconv.FormatUint(ConvertSharesToWeight(deref(c.Shares)), 10)); err != nil {
			return err
		}
		if c.Quota != nil || c.Period != nil {
			quota := "max"
			if c.Quota != nil && *c.Quota > 0 {
				quota = strconv.FormatInt(*c.Quota, 10)
			}
			period := uint64(100000)
			if c.Period != nil && *c.Period != 0 {
				period = *c.Period
			}
			if err := w(true, "cpu.max", "linux.resources.cpu.quota", fmt.Sprintf("%s %d", quota, period)); err != nil {
				return err
			}
		}
		if err := w(c.Burst != nil, "cpu.max.burst", "linux.resources.cpu.burst", fmtU(c.Burst)); err != nil {
			return err
		}
		if err := w(c.Idle != nil, "cpu.idle", "linux.resources.cpu.idle", fmtI(c.Idle)); err != nil {
			return err
		}
		if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 || c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 {
			return fmt.Errorf("linux.resources.cpu.realtime*: cgroup v2 has no realtime scheduling controls: %w", errdefs.ErrUnavailable)
		}
		if err := w(c.Cpus != "", "cpuset.cpus", "linux.resources.cpu.cpus", c.Cpus); err != nil {
			return err
		}
		if err := w(c.Mems != "", "cpuset.mems", "linux.resources.cpu.mems", c.Mems); err != nil {
			return err
		}
	}
	if mem := r.Memory; mem != nil {
		if err := w(mem.Limit != nil && *mem.Limit != 0, "memory.max", "linux.resources.memory.limit", maxOr(mem.Limit)); err != nil {
			return err
		}
		if err := w(mem.Reservation != nil && *mem.Reservation != 0, "memory.low", "linux.resources.memory.reservation", maxOr(mem.Reservation)); err != nil {
			return err
		}
		if mem.Swap != nil && *mem.Swap != 0 {
			// The spec's swap is memory+swap (v1 memsw); v2 limits swap alone.
			v := "max"
			if *mem.Swap > 0 {
				if mem.Limit == nil || *mem.Limit <= 0 {
					return fmt.Errorf("linux.resources.memory.swap: on cgroup v2 a swap limit needs memory.limit: %w", errdefs.ErrInvalid)
				}
				v = strconv.FormatInt(*mem.Swap-*mem.Limit, 10)
			}
			if err := w(true, "memory.swap.max", "linux.resources.memory.swap", v); err != nil {
				return err
			}
		}
		//lint:ignore SA1019 a config may still set it: warned about, not applied
		if mem.Kernel != nil && *mem.Kernel != 0 {
			Warnf("linux.resources.memory.kernel: not enforced; cgroup v2 counts kernel memory in memory.max")
		}
		if mem.KernelTCP != nil && *mem.KernelTCP != 0 {
			Warnf("linux.resources.memory.kernelTCP: not enforced; cgroup v2 counts socket memory in memory.max")
		}
		if mem.Swappiness != nil && *mem.Swappiness != ^uint64(0) {
			return fmt.Errorf("linux.resources.memory.swappiness: cgroup v2 has no per-cgroup swappiness: %w", errdefs.ErrUnavailable)
		}
		if mem.UseHierarchy != nil && !*mem.UseHierarchy {
			return fmt.Errorf("linux.resources.memory.useHierarchy: cgroup v2 is always hierarchical: %w", errdefs.ErrUnavailable)
		}
		if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
			return fmt.Errorf("linux.resources.memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer: %w", errdefs.ErrUnavailable)
		}
	}
	if r.Pids != nil {
		v := "max"
		if r.Pids.Limit > 0 {
			v = strconv.FormatInt(r.Pids.Limit, 10)
		}
		if err := w(true, "pids.max", "linux.resources.pids.limit", v); err != nil {
			return err
		}
	}
	if b := r.BlockIO; b != nil {
		if err := w(b.Weight != nil && *b.Weight != 0, "io.weight", "linux.resources.blockIO.weight", strconv.FormatUint(ConvertBlkIOToIOWeight(deref16(b.Weight)), 10)); err != nil {
			return err
		}
		for _, d := range b.WeightDevice {
			if d.Weight == nil {
				continue
			}
			if err := w(true, "io.weight", "linux.resources.blockIO.weightDevice", fmt.Sprintf("%d:%d %d", d.Major, d.Minor, ConvertBlkIOToIOWeight(*d.Weight))); err != nil {
				return err
			}
		}
		if b.LeafWeight != nil && *b.LeafWeight != 0 {
			return fmt.Errorf("linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weight: %w", errdefs.ErrUnavailable)
		}
		lim := []struct {
			list []specs.LinuxThrottleDevice
			key  string
		}{{b.ThrottleReadBpsDevice, "rbps"}, {b.ThrottleWriteBpsDevice, "wbps"}, {b.ThrottleReadIOPSDevice, "riops"}, {b.ThrottleWriteIOPSDevice, "wiops"}}
		for _, l := range lim {
			for _, d := range l.list {
				if err := w(true, "io.max", "linux.resources.blockIO", fmt.Sprintf("%d:%d %s=%d", d.Major, d.Minor, l.key, d.Rate)); err != nil {
					return err
				}
			}
		}
	}
	for _, h := range r.HugepageLimits {
		if err := w(true, "hugetlb."+h.Pagesize+".max", "linux.resources.hugepageLimits", strconv.FormatUint(h.Limit, 10)); err != nil {
			return err
		}
	}
	if r.Network != nil && (r.Network.ClassID != nil || len(r.Network.Priorities) > 0) {
		return fmt.Errorf("linux.resources.network: net_cls and net_prio exist only on cgroup v1: %w", errdefs.ErrUnavailable)
	}
	for _, line := range rdmaLines(r.Rdma) {
		if err := w(true, "rdma.max", "linux.resources.rdma", line); err != nil {
			return err
		}
	}
	if err := setDevicesV2(m.dir, r.Devices); err != nil {
		return err
	}
	return setUnified(m.dir, r.Unified)
}

func deref(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

func deref16(p *uint16) uint16 {
	if p == nil {
		return 0
	}
	return *p
}

// maxOr renders a limit, negative as "max"; nil (unset, not written) as "".
func maxOr(p *int64) string {
	if p == nil {
		return ""
	}
	if *p < 0 {
		return "max"
	}
	return strconv.FormatInt(*p, 10)
}
