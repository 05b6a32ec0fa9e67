package cgroups

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Stats is a cgroup's resource usage, in the JSON shape of runc's
// `events --stats` data, so that tools reading runc's output read ours.
type Stats struct {
	CPU     CPUStats               `json:"cpu"`
	Memory  MemoryStats            `json:"memory"`
	Pids    PidsStats              `json:"pids"`
	Blkio   BlkioStats             `json:"blkio"`
	Hugetlb map[string]HugetlbStat `json:"hugetlb,omitempty"`
}

// CPUStats: times in nanoseconds.
type CPUStats struct {
	Usage      CPUUsage   `json:"usage"`
	Throttling Throttling `json:"throttling"`
}

type CPUUsage struct {
	Total  uint64   `json:"total,omitempty"`
	Percpu []uint64 `json:"percpu,omitempty"`
	Kernel uint64   `json:"kernel"`
	User   uint64   `json:"user"`
}

type Throttling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`
}

type MemoryStats struct {
	Cache     uint64            `json:"cache,omitempty"`
	Usage     MemoryEntry       `json:"usage,omitempty"`
	Swap      MemoryEntry       `json:"swap,omitempty"`
	Kernel    MemoryEntry       `json:"kernel,omitempty"`
	KernelTCP MemoryEntry       `json:"kernelTCP,omitempty"`
	Raw       map[string]uint64 `json:"raw,omitempty"`
}

type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

type PidsStats struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

type BlkioStats struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
}

type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

type HugetlbStat struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// readUint reads a file holding one number; "max" and a missing file are 0.
func readUint(dir, file string) uint64 {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return v
}

// readKV parses "key value" lines into a map.
func readKV(dir, file string) map[string]uint64 {
	f, err := os.Open(filepath.Join(dir, file))
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]uint64{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}

// hugepageSizes lists the host's page sizes in cgroup notation ("2MB").
func hugepageSizes() []string {
	ents, _ := os.ReadDir("/sys/kernel/mm/hugepages")
	var out []string
	for _, e := range ents {
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(e.Name(), "hugepages-"), "kB"), 10, 64)
		if err != nil {
			continue
		}
		switch {
		case kb >= 1<<20:
			out = append(out, strconv.FormatUint(kb>>20, 10)+"GB")
		case kb >= 1<<10:
			out = append(out, strconv.FormatUint(kb>>10, 10)+"MB")
		default:
			out = append(out, strconv.FormatUint(kb, 10)+"KB")
		}
	}
	return out
}

// userHZ is the unit of cpuacct.stat (USER_HZ, 100 on Linux).
const userHZ = 100

func (m *v1) Stats() (*Stats, error) {
	var s Stats
	if d, ok := m.paths["cpuacct"]; ok {
		s.CPU.Usage.Total = readUint(d, "cpuacct.usage")
		if b, err := os.ReadFile(filepath.Join(d, "cpuacct.usage_percpu")); err == nil {
			for _, f := range strings.Fields(string(b)) {
				v, _ := strconv.ParseUint(f, 10, 64)
				s.CPU.Usage.Percpu = append(s.CPU.Usage.Percpu, v)
			}
		}
		st := readKV(d, "cpuacct.stat")
		s.CPU.Usage.User = st["user"] * (1e9 / userHZ)
		s.CPU.Usage.Kernel = st["system"] * (1e9 / userHZ)
	}
	if d, ok := m.paths["cpu"]; ok {
		st := readKV(d, "cpu.stat")
		s.CPU.Throttling = Throttling{Periods: st["nr_periods"], ThrottledPeriods: st["nr_throttled"], ThrottledTime: st["throttled_time"]}
	}
	if d, ok := m.paths["memory"]; ok {
		entry := func(prefix string) MemoryEntry {
			return MemoryEntry{
				Usage: readUint(d, prefix+"usage_in_bytes"), Max: readUint(d, prefix+"max_usage_in_bytes"),
				Limit: readUint(d, prefix+"limit_in_bytes"), Failcnt: readUint(d, prefix+"failcnt"),
			}
		}
		s.Memory.Usage = entry("memory.")
		s.Memory.Swap = entry("memory.memsw.")
		s.Memory.Kernel = entry("memory.kmem.")
		s.Memory.KernelTCP = entry("memory.kmem.tcp.")
		s.Memory.Raw = readKV(d, "memory.stat")
		s.Memory.Cache = s.Memory.Raw["cache"]
	}
	if d, ok := m.paths["pids"]; ok {
		s.Pids = PidsStats{Current: readUint(d, "pids.current"), Limit: readUint(d, "pids.max")}
	}
	if d, ok := m.paths["blkio"]; ok {
		s.Blkio.IoServiceBytesRecursive = blkioEntries(d, "blkio.throttle.io_service_bytes_recursive")
		s.Blkio.IoServicedRecursive = blkioEntries(d, "blkio.throttle.io_serviced_recursive")
	}
	if d, ok := m.paths[""]; ok {
		s.Hugetlb = hugetlbV2(d)
	}
	return &s, nil
}

// blkioEntries parses v1 "major:minor Op value" lines.
func blkioEntries(dir, file string) []BlkioEntry {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return nil
	}
	var out []BlkioEntry
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		maj, min, ok := strings.Cut(f[0], ":")
		if !ok {
			continue
		}
		e := BlkioEntry{Op: f[1]}
		e.Major, _ = strconv.ParseUint(maj, 10, 64)
		e.Minor, _ = strconv.ParseUint(min, 10, 64)
		e.Value, _ = strconv.ParseUint(f[2], 10, 64)
		out = append(out, e)
	}
	return out
}

func hugetlbV2(dir string) map[string]HugetlbStat {
	out := map[string]HugetlbStat{}
	for _, size := range hugepageSizes() {
		if _, err := os.Stat(filepath.Join(dir, "hugetlb."+size+".current")); err != nil {
			continue
		}
		out[size] = HugetlbStat{
			Usage: readUint(dir, "hugetlb."+size+".current"), Max: readUint(dir, "hugetlb."+size+".max"),
			Failcnt: readKV(dir, "hugetlb."+size+".events")["max"],
		}
	}
	return out
}

func (m *v2) Stats() (*Stats, error) {
	var s Stats
	st := readKV(m.dir, "cpu.stat")
	s.CPU.Usage = CPUUsage{Total: st["usage_usec"] * 1000, User: st["user_usec"] * 1000, Kernel: st["system_usec"] * 1000}
	s.CPU.Throttling = Throttling{Periods: st["nr_periods"], ThrottledPeriods: st["nr_throttled"], ThrottledTime: st["throttled_usec"] * 1000}
	ev := readKV(m.dir, "memory.events")
	s.Memory.Usage = MemoryEntry{Usage: readUint(m.dir, "memory.current"), Max: readUint(m.dir, "memory.peak"), Limit: readUint(m.dir, "memory.max"), Failcnt: ev["max"]}
	s.Memory.Swap = MemoryEntry{Usage: readUint(m.dir, "memory.swap.current"), Limit: readUint(m.dir, "memory.swap.max")}
	s.Memory.Raw = readKV(m.dir, "memory.stat")
	s.Memory.Cache = s.Memory.Raw["file"]
	s.Pids = PidsStats{Current: readUint(m.dir, "pids.current"), Limit: readUint(m.dir, "pids.max")}
	if b, err := os.ReadFile(filepath.Join(m.dir, "io.stat")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			maj, min, _ := strings.Cut(f[0], ":")
			mj, _ := strconv.ParseUint(maj, 10, 64)
			mn, _ := strconv.ParseUint(min, 10, 64)
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				n, _ := strconv.ParseUint(v, 10, 64)
				switch k {
				case "rbytes", "wbytes":
					s.Blkio.IoServiceBytesRecursive = append(s.Blkio.IoServiceBytesRecursive, BlkioEntry{Major: mj, Minor: mn, Op: map[string]string{"rbytes": "Read", "wbytes": "Write"}[k], Value: n})
				case "rios", "wios":
					s.Blkio.IoServicedRecursive = append(s.Blkio.IoServicedRecursive, BlkioEntry{Major: mj, Minor: mn, Op: map[string]string{"rios": "Read", "wios": "Write"}[k], Value: n})
				}
			}
		}
	}
	s.Hugetlb = hugetlbV2(m.dir)
	return &s, nil
}

// OOMKills returns how many processes the OOM killer has killed in the
// cgroup (v1: memory.oom_control's oom_kill; v2: memory.events).
func (m *v1) OOMKills() (uint64, error) {
	d, ok := m.paths["memory"]
	if !ok {
		return 0, nil
	}
	return readKV(d, "memory.oom_control")["oom_kill"], nil
}

func (m *v2) OOMKills() (uint64, error) {
	return readKV(m.dir, "memory.events")["oom_kill"], nil
}
