package cgroups

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-project/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1 manages one directory per v1 hierarchy and, on a hybrid host, one in
// the cgroup2 tree (which there holds only the controllers v1 lacks).
type v1 struct {
	mode  Mode
	paths map[string]string // controller → dir; "" → the unified dir
}

// v1Hierarchies maps each mounted v1 controller (and name=… hierarchy) to
// its mount point.
func v1Hierarchies() (map[string]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		fields := strings.Fields(s.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+3 >= len(fields) || fields[sep+1] != "cgroup" {
			continue
		}
		mnt := fields[4]
		if !strings.HasPrefix(mnt, Root+"/") {
			continue
		}
		for _, opt := range strings.Split(fields[sep+3], ",") {
			switch opt {
			case "rw", "ro", "clone_children", "noprefix", "xattr", "cpuset_v2_mode":
				continue
			}
			if strings.HasPrefix(opt, "release_agent=") {
				continue
			}
			if _, ok := out[opt]; !ok {
				out[opt] = mnt
			}
		}
	}
	return out, s.Err()
}

func newV1(mode Mode, resolve func(string) string) (*v1, error) {
	h, err := v1Hierarchies()
	if err != nil {
		return nil, err
	}
	if len(h) == 0 {
		return nil, fmt.Errorf("cgroup: no v1 hierarchy is mounted under %s: %w", Root, errdefs.ErrUnavailable)
	}
	m := &v1{mode: mode, paths: map[string]string{}}
	for ctrl, mnt := range h {
		m.paths[ctrl] = filepath.Join(mnt, resolve(ctrl))
	}
	if mode == Hybrid {
		m.paths[""] = filepath.Join(Root, "unified", resolve(""))
	}
	return m, nil
}

func (m *v1) Mode() Mode { return m.mode }

func (m *v1) Paths() map[string]string {
	out := make(map[string]string, len(m.paths))
	for k, v := range m.paths {
		out[k] = v
	}
	return out
}

func (m *v1) Create() error {
	for ctrl, dir := range m.paths {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cgroup: create %s: %w", dir, err)
		}
		if ctrl == "cpuset" {
			if err := fillCpuset(dir); err != nil {
				return err
			}
		}
	}
	return nil
}

// fillCpuset copies cpuset.cpus and cpuset.mems down from the nearest
// ancestor that has them into every empty directory on the way to dir: a v1
// cpuset with empty values accepts no task.
func fillCpuset(dir string) error {
	mnt := filepath.Dir(dir)
	for {
		if _, err := os.Stat(filepath.Join(mnt, "cpuset.cpus")); err != nil {
			break
		}
		if p := filepath.Dir(mnt); p == mnt {
			break
		} else {
			mnt = p
		}
	}
	var chain []string
	for d := dir; ; d = filepath.Dir(d) {
		chain = append([]string{d}, chain...)
		if _, err := os.Stat(filepath.Join(filepath.Dir(d), "cpuset.cpus")); err != nil || filepath.Dir(d) == d {
			break
		}
		if v, _ := os.ReadFile(filepath.Join(d, "cpuset.cpus")); strings.TrimSpace(string(v)) != "" {
			chain = chain[1:]
			break
		}
	}
	for _, d := range chain {
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			cur, err := os.ReadFile(filepath.Join(d, f))
			if err != nil {
				return fmt.Errorf("cgroup: read %s: %w", filepath.Join(d, f), err)
			}
			if strings.TrimSpace(string(cur)) != "" {
				continue
			}
			parent, err := os.ReadFile(filepath.Join(filepath.Dir(d), f))
			if err != nil {
				return fmt.Errorf("cgroup: read %s: %w", filepath.Join(filepath.Dir(d), f), err)
			}
			if err := writeFile(d, f, strings.TrimSpace(string(parent))); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v1) Apply(pid int) error {
	for _, dir := range m.paths {
		if err := writeFile(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1) Pids() ([]int, error) {
	for _, c := range []string{"pids", "freezer", "memory", "cpu", ""} {
		if d, ok := m.paths[c]; ok {
			return readPids(d)
		}
	}
	return nil, fmt.Errorf("cgroup: no hierarchy to list processes from")
}

func (m *v1) Destroy() error {
	killAll(m.Pids)
	var first error
	for _, dir := range m.paths {
		if err := removeDir(dir); err != nil && first == nil {
			first = err
		}
		pruneDefaultParent(dir)
	}
	return first
}

// need returns the directory of ctrl or an error naming the spec field.
func (m *v1) need(ctrl, field string) (string, error) {
	d, ok := m.paths[ctrl]
	if !ok {
		return "", fmt.Errorf("%s: the %s cgroup controller is not mounted on this host: %w", field, ctrl, errdefs.ErrUnavailable)
	}
	return d, nil
}

// writeIf writes value to ctrl/file when set is true, failing with the spec
// field's name if the host lacks the controller or file.
func (m *v1) writeIf(set bool, ctrl, file, field, value string) error {
	if !set {
		return nil
	}
	d, err := m.need(ctrl, field)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(d, file)); err != nil {
		return fmt.Errorf("%s: this host has no %s: %w", field, file, errdefs.ErrUnavailable)
	}
	if err := writeFile(d, file, value); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

func (m *v1) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := validate(r); err != nil {
		return err
	}
	steps := []func(*specs.LinuxResources) error{m.setCPU, m.setMemory, m.setPids, m.setBlkio, m.setHugetlb, m.setNetwork, m.setDevices, m.setRdma}
	for _, s := range steps {
		if err := s(r); err != nil {
			return err
		}
	}
	if len(r.Unified) > 0 {
		if m.mode != Hybrid {
			return fmt.Errorf("linux.resources.unified: needs cgroup v2: %w", errdefs.ErrUnavailable)
		}
		return setUnified(m.paths[""], r.Unified)
	}
	return nil
}

func (m *v1) setCPU(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil {
		return nil
	}
	if err := m.writeIf(c.Shares != nil && *c.Shares != 0, "cpu", "cpu.shares", "linux.resources.cpu.shares", fmtU(c.Shares)); err != nil {
		return err
	}
	if err := m.writeIf(c.Period != nil && *c.Period != 0, "cpu", "cpu.cfs_period_us", "linux.resources.cpu.period", fmtU(c.Period)); err != nil {
		return err
	}
	if err := m.writeIf(c.Quota != nil && *c.Quota != 0, "cpu", "cpu.cfs_quota_us", "linux.resources.cpu.quota", fmtI(c.Quota)); err != nil {
		return err
	}
	if err := m.writeIf(c.Burst != nil, "cpu", "cpu.cfs_burst_us", "linux.resources.cpu.burst", fmtU(c.Burst)); err != nil {
		return err
	}
	if err := m.writeIf(c.RealtimePeriod != nil && *c.RealtimePeriod != 0, "cpu", "cpu.rt_period_us", "linux.resources.cpu.realtimePeriod", fmtU(c.RealtimePeriod)); err != nil {
		return err
	}
	if err := m.writeIf(c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0, "cpu", "cpu.rt_runtime_us", "linux.resources.cpu.realtimeRuntime", fmtI(c.RealtimeRuntime)); err != nil {
		return err
	}
	if err := m.writeIf(c.Idle != nil && *c.Idle != 0, "cpu", "cpu.idle", "linux.resources.cpu.idle", fmtI(c.Idle)); err != nil {
		return err
	}
	if err := m.writeIf(c.Cpus != "", "cpuset", "cpuset.cpus", "linux.resources.cpu.cpus", c.Cpus); err != nil {
		return err
	}
	return m.writeIf(c.Mems != "", "cpuset", "cpuset.mems", "linux.resources.cpu.mems", c.Mems)
}

func fmtU(p *uint64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatUint(*p, 10)
}

func fmtI(p *int64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatInt(*p, 10)
}

func (m *v1) setMemory(r *specs.LinuxResources) error {
	mem := r.Memory
	if mem == nil {
		return nil
	}
	limit := func() error {
		return m.writeIf(mem.Limit != nil && *mem.Limit != 0, "memory", "memory.limit_in_bytes", "linux.resources.memory.limit", fmtI(mem.Limit))
	}
	swap := func() error {
		return m.writeIf(mem.Swap != nil && *mem.Swap != 0, "memory", "memory.memsw.limit_in_bytes", "linux.resources.memory.swap", fmtI(mem.Swap))
	}
	// memsw must stay >= limit: when memory+swap grows, raise it first.
	first, second := limit, swap
	if mem.Limit != nil && mem.Swap != nil {
		d, err := m.need("memory", "linux.resources.memory.swap")
		if err != nil {
			return err
		}
		cur, _ := os.ReadFile(filepath.Join(d, "memory.memsw.limit_in_bytes"))
		if c, err := strconv.ParseInt(strings.TrimSpace(string(cur)), 10, 64); err == nil && (*mem.Swap == -1 || *mem.Swap > c) {
			first, second = swap, limit
		}
	}
	if err := first(); err != nil {
		return err
	}
	if err := second(); err != nil {
		return err
	}
	if err := m.writeIf(mem.Reservation != nil && *mem.Reservation != 0, "memory", "memory.soft_limit_in_bytes", "linux.resources.memory.reservation", fmtI(mem.Reservation)); err != nil {
		return err
	}
	if err := m.writeIf(mem.Swappiness != nil, "memory", "memory.swappiness", "linux.resources.memory.swappiness", fmtU(mem.Swappiness)); err != nil {
		return err
	}
	if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
		if err := m.writeIf(true, "memory", "memory.oom_control", "linux.resources.memory.disableOOMKiller", "1"); err != nil {
			return err
		}
	}
	if mem.UseHierarchy != nil {
		v := "0"
		if *mem.UseHierarchy {
			v = "1"
		}
		if err := m.writeIf(true, "memory", "memory.use_hierarchy", "linux.resources.memory.useHierarchy", v); err != nil {
			return err
		}
	}
	//lint:ignore SA1019 a config may still set it: warned about, not applied
	if mem.Kernel != nil && *mem.Kernel != 0 {
		// Linux stopped enforcing kernel memory limits (5.x); runc ignores
		// the field. Say so rather than pretend.
		Warnf("linux.resources.memory.kernel: kernel memory limits are not enforced by this kernel; ignored")
	}
	return m.writeIf(mem.KernelTCP != nil && *mem.KernelTCP != 0, "memory", "memory.kmem.tcp.limit_in_bytes", "linux.resources.memory.kernelTCP", fmtI(mem.KernelTCP))
}

func (m *v1) setPids(r *specs.LinuxResources) error {
	if r.Pids == nil {
		return nil
	}
	v := "max"
	if r.Pids.Limit > 0 {
		v = strconv.FormatInt(r.Pids.Limit, 10)
	}
	return m.writeIf(true, "pids", "pids.max", "linux.resources.pids.limit", v)
}

func (m *v1) setBlkio(r *specs.LinuxResources) error {
	b := r.BlockIO
	if b == nil {
		return nil
	}
	if err := m.writeIf(b.Weight != nil && *b.Weight != 0, "blkio", "blkio.weight", "linux.resources.blockIO.weight", fmtU16(b.Weight)); err != nil {
		return err
	}
	if err := m.writeIf(b.LeafWeight != nil && *b.LeafWeight != 0, "blkio", "blkio.leaf_weight", "linux.resources.blockIO.leafWeight", fmtU16(b.LeafWeight)); err != nil {
		return err
	}
	for _, wd := range b.WeightDevice {
		if wd.Weight != nil {
			if err := m.writeIf(true, "blkio", "blkio.weight_device", "linux.resources.blockIO.weightDevice", fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.Weight)); err != nil {
				return err
			}
		}
	}
	throttles := []struct {
		list  []specs.LinuxThrottleDevice
		file  string
		field string
	}{
		{b.ThrottleReadBpsDevice, "blkio.throttle.read_bps_device", "throttleReadBpsDevice"},
		{b.ThrottleWriteBpsDevice, "blkio.throttle.write_bps_device", "throttleWriteBpsDevice"},
		{b.ThrottleReadIOPSDevice, "blkio.throttle.read_iops_device", "throttleReadIOPSDevice"},
		{b.ThrottleWriteIOPSDevice, "blkio.throttle.write_iops_device", "throttleWriteIOPSDevice"},
	}
	for _, t := range throttles {
		for _, d := range t.list {
			if err := m.writeIf(true, "blkio", t.file, "linux.resources.blockIO."+t.field, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

func fmtU16(p *uint16) string {
	if p == nil {
		return ""
	}
	return strconv.FormatUint(uint64(*p), 10)
}

func (m *v1) setHugetlb(r *specs.LinuxResources) error {
	for _, h := range r.HugepageLimits {
		field := "linux.resources.hugepageLimits"
		if _, ok := m.paths["hugetlb"]; ok {
			if err := m.writeIf(true, "hugetlb", "hugetlb."+h.Pagesize+".limit_in_bytes", field, strconv.FormatUint(h.Limit, 10)); err != nil {
				return err
			}
			continue
		}
		if m.mode == Hybrid {
			if _, err := os.Stat(filepath.Join(m.paths[""], "hugetlb."+h.Pagesize+".max")); err != nil {
				// The files appear only if every ancestor delegates
				// hugetlb; Berth does not change the host's root cgroup.
				return fmt.Errorf("%s: no hugetlb.%s.max in %s: the page size is unknown to this host, or hugetlb is not enabled in %s/unified/cgroup.subtree_control: %w",
					field, h.Pagesize, m.paths[""], Root, errdefs.ErrUnavailable)
			}
			if err := writeFile(m.paths[""], "hugetlb."+h.Pagesize+".max", strconv.FormatUint(h.Limit, 10)); err != nil {
				return fmt.Errorf("%s: %w", field, err)
			}
			continue
		}
		return fmt.Errorf("%s: the hugetlb controller is not available: %w", field, errdefs.ErrUnavailable)
	}
	return nil
}

func (m *v1) setNetwork(r *specs.LinuxResources) error {
	n := r.Network
	if n == nil {
		return nil
	}
	if n.ClassID != nil {
		if err := m.writeIf(true, "net_cls", "net_cls.classid", "linux.resources.network.classID", strconv.FormatUint(uint64(*n.ClassID), 10)); err != nil {
			return err
		}
	}
	for _, p := range n.Priorities {
		if err := m.writeIf(true, "net_prio", "net_prio.ifpriomap", "linux.resources.network.priorities", fmt.Sprintf("%s %d", p.Name, p.Priority)); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1) setDevices(r *specs.LinuxResources) error {
	if len(r.Devices) == 0 {
		return nil
	}
	d, err := m.need("devices", "linux.resources.devices")
	if err != nil {
		return err
	}
	for _, rule := range r.Devices {
		if _, ok := deviceAccess(rule.Access); !ok {
			continue
		}
		file := "devices.deny"
		if rule.Allow {
			file = "devices.allow"
		}
		if err := writeFile(d, file, DeviceRule(rule)); err != nil {
			return fmt.Errorf("linux.resources.devices: %w", err)
		}
	}
	return nil
}

func (m *v1) setRdma(r *specs.LinuxResources) error {
	for _, line := range rdmaLines(r.Rdma) {
		if err := m.writeIf(true, "rdma", "rdma.max", "linux.resources.rdma", line); err != nil {
			return err
		}
	}
	return nil
}

// rdmaLines renders linux.resources.rdma as rdma.max lines (the same on
// v1 and v2), sorted by device: "mlx5_0 hca_handle=2 hca_object=2000".
func rdmaLines(rdma map[string]specs.LinuxRdma) []string {
	var out []string
	for dev, l := range rdma {
		line := dev
		if l.HcaHandles != nil {
			line += fmt.Sprintf(" hca_handle=%d", *l.HcaHandles)
		}
		if l.HcaObjects != nil {
			line += fmt.Sprintf(" hca_object=%d", *l.HcaObjects)
		}
		out = append(out, line)
	}
	sort.Strings(out)
	return out
}

// deviceAccess is a rule's access with every letter but r, w and m left
// out, as runc reads it; empty means all three. ok is false for a rule
// whose letters are all unknown: it allows or denies nothing.
func deviceAccess(access string) (acc string, ok bool) {
	if access == "" {
		return "rwm", true
	}
	for _, c := range access {
		if strings.ContainsRune("rwm", c) && !strings.ContainsRune(acc, c) {
			acc += string(c)
		}
	}
	return acc, acc != ""
}

// DeviceRule renders a rule in the v1 devices.allow syntax: "c 1:3 rwm".
func DeviceRule(r specs.LinuxDeviceCgroup) string {
	t := r.Type
	if t == "" {
		t = "a"
	}
	num := func(p *int64) string {
		if p == nil || *p < 0 {
			return "*"
		}
		return strconv.FormatInt(*p, 10)
	}
	acc, _ := deviceAccess(r.Access)
	if t == "a" {
		return "a *:* " + acc
	}
	return fmt.Sprintf("%s %s:%s %s", t, num(r.Major), num(r.Minor), acc)
}

// writeChecked writes file in dir, naming field when the file is missing.
func writeChecked(dir, file, field, value string) error {
	if _, err := os.Stat(filepath.Join(dir, file)); err != nil {
		return fmt.Errorf("%s: this host has no cgroup file %s: %w", field, file, errdefs.ErrUnavailable)
	}
	if err := writeFile(dir, file, value); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

// setUnified writes linux.resources.unified keys into a v2 directory.
func setUnified(dir string, kv map[string]string) error {
	for k, v := range kv {
		if strings.Contains(k, "/") || k == "" {
			return fmt.Errorf("linux.resources.unified: bad key %q: %w", k, errdefs.ErrInvalid)
		}
		if err := writeChecked(dir, k, "linux.resources.unified["+k+"]", v); err != nil {
			return err
		}
	}
	return nil
}

// validate rejects values no host can honour, naming the field.
func validate(r *specs.LinuxResources) error {
	bad := func(field string, v any) error {
		return fmt.Errorf("%s: invalid value %v: %w", field, v, errdefs.ErrInvalid)
	}
	if m := r.Memory; m != nil {
		if m.Limit != nil && *m.Limit < -1 {
			return bad("linux.resources.memory.limit", *m.Limit)
		}
		if m.Swap != nil && *m.Swap < -1 {
			return bad("linux.resources.memory.swap", *m.Swap)
		}
		if m.Limit != nil && m.Swap != nil && *m.Swap > 0 && *m.Limit > 0 && *m.Swap < *m.Limit {
			return fmt.Errorf("linux.resources.memory.swap (%d) must be at least memory.limit (%d), it counts memory plus swap: %w", *m.Swap, *m.Limit, errdefs.ErrInvalid)
		}
		if m.Swappiness != nil && *m.Swappiness > 100 {
			return bad("linux.resources.memory.swappiness", *m.Swappiness)
		}
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 && (*c.Shares < 2 || *c.Shares > 262144) {
			return bad("linux.resources.cpu.shares", *c.Shares)
		}
		if c.Quota != nil && *c.Quota != 0 && *c.Quota != -1 && *c.Quota < 1000 {
			return bad("linux.resources.cpu.quota", *c.Quota)
		}
		if c.Period != nil && *c.Period != 0 && (*c.Period < 1000 || *c.Period > 1000000) {
			return bad("linux.resources.cpu.period", *c.Period)
		}
	}
	for _, d := range r.Devices {
		switch d.Type {
		case "", "a", "b", "c":
		default:
			return fmt.Errorf("linux.resources.devices: type %q must be a, b or c: %w", d.Type, errdefs.ErrInvalid)
		}
		if strings.Trim(d.Access, "rwm") != "" {
			Warnf("linux.resources.devices: access %q: only r, w and m have a meaning, the rest is ignored (as runc ignores it)", d.Access)
		}
	}
	return nil
}
