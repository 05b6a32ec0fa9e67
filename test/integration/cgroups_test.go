package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/test/harness"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// These tests run on this host's v1 (hybrid) hierarchy and, through
// test/vm, on a cgroup v2 guest kernel: each names the file and value it
// expects on both.

func unified() bool { return cgroups.HostMode() == cgroups.Unified }

// cgFile is one control file and its expected content on v1 (in the
// controller's hierarchy) and on v2 (in the container's directory).
type cgFile struct {
	ctrl, v1, want1, v2, want2 string
}

// readCgroup reads file of b's cgroup: in ctrl's hierarchy on v1, in the
// unified directory on v2.
func readCgroup(t *testing.T, b *harness.Bundle, ctrl, file string) string {
	t.Helper()
	dir := filepath.Join("/sys/fs/cgroup", ctrl, b.Spec.Linux.CgroupsPath)
	if unified() {
		dir = filepath.Join("/sys/fs/cgroup", b.Spec.Linux.CgroupsPath)
	}
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	return strings.TrimSpace(string(data))
}

func checkCgroup(t *testing.T, b *harness.Bundle, files []cgFile) {
	t.Helper()
	for _, f := range files {
		file, want := f.v1, f.want1
		if unified() {
			file, want = f.v2, f.want2
		}
		if got := readCgroup(t, b, f.ctrl, file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
}

func TestCgroupLimitsApplied(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Reservation: ptr(int64(32 << 20))}
	b.Spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: 20}
	b.Spec.Linux.Resources.CPU = &specs.LinuxCPU{Shares: ptr(uint64(512)), Quota: ptr(int64(50000)), Period: ptr(uint64(100000)), Cpus: "0"}
	b.Spec.Process.Args = []string{"sleep", "60"}
	b.Write()
	b.MustRuntime("create", b.ID)
	weight := strconv.FormatUint(cgroups.ConvertSharesToWeight(512), 10)
	checkCgroup(t, b, []cgFile{
		{"memory", "memory.limit_in_bytes", "67108864", "memory.max", "67108864"},
		{"memory", "memory.soft_limit_in_bytes", "33554432", "memory.low", "33554432"},
		{"pids", "pids.max", "20", "pids.max", "20"},
		{"cpu", "cpu.shares", "512", "cpu.weight", weight},
		{"cpu", "cpu.cfs_quota_us", "50000", "cpu.max", "50000 100000"},
		{"cpuset", "cpuset.cpus", "0", "cpuset.cpus", "0"},
	})
	pid := itoa(b.State().Pid)
	for _, ctrl := range []string{"memory", "pids", "cpu", "cpuset"} {
		if procs := readCgroup(t, b, ctrl, "cgroup.procs"); procs != pid {
			t.Errorf("%s cgroup.procs = %q, want init %s", ctrl, procs, pid)
		}
	}
	b.MustRuntime("delete", b.ID)
	b.AssertNothingLeft()
}

func TestPidsLimitEnforced(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: 5}
	b.Spec.Process.Args = []string{"sh", "-c", "n=0; for i in $(seq 1 20); do sleep 5 & n=$((n+1)); done; echo started"}
	b.Write()
	r := b.Runtime("run", b.ID)
	if !strings.Contains(r.Stderr, "fork") && !strings.Contains(r.Stderr, "Resource temporarily unavailable") {
		t.Errorf("20 forks under pids.max=5 gave no fork failure: %s", r)
	}
	b.AssertNothingLeft()
}

func TestMemoryLimitKills(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr(int64(16 << 20)), Swap: ptr(int64(16 << 20))}
	// dd as PID 1 reads 60 MiB blocks into memory charged to the cgroup.
	b.Spec.Process.Args = []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=60M", "count=1"}
	b.Write()
	r := b.Runtime("run", b.ID)
	if r.Code != 137 {
		t.Errorf("filling 60 MiB under a 16 MiB limit: %s, want the OOM killer (exit 137)", r)
	}
	b.AssertNothingLeft()
}

// TestCPUQuotaMeasured: a spinning shell under a 20% quota uses about 20%
// of one CPU, measured from the cgroup's own usage counter.
func TestCPUQuotaMeasured(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Linux.Resources.CPU = &specs.LinuxCPU{Quota: ptr(int64(20000)), Period: ptr(uint64(100000))}
	b.Spec.Process.Args = []string{"sh", "-c", "while :; do :; done"}
	b.Write()
	b.MustRuntime("run", "-d", b.ID)
	usage := func() (uint64, time.Time) {
		var ev statsEvent
		r := b.MustRuntime("events", "--stats", b.ID)
		if err := json.Unmarshal([]byte(r.Stdout), &ev); err != nil {
			t.Fatal(err, r)
		}
		return ev.Data.CPU.Usage.Total, time.Now()
	}
	time.Sleep(300 * time.Millisecond)
	u0, t0 := usage()
	time.Sleep(3 * time.Second)
	u1, t1 := usage()
	share := float64(u1-u0) / float64(t1.Sub(t0).Nanoseconds())
	// Wide bounds: the machine is shared, and the quota is a ceiling.
	if share < 0.10 || share > 0.30 {
		t.Errorf("CPU share under a 20%% quota: %.3f of one CPU", share)
	}
	t.Logf("CPU share under a 20%% quota: %.3f", share)
	b.MustRuntime("delete", "--force", b.ID)
	b.AssertNothingLeft()
}

// TestCpusetAffinity: the CPUs the kernel lets the container run on are
// the cpuset's.
func TestCpusetAffinity(t *testing.T) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil || set.Count() < 2 {
		t.Skip("needs two CPUs")
	}
	b := harness.NewBundle(t)
	b.Spec.Linux.Resources.CPU = &specs.LinuxCPU{Cpus: "1"}
	b.Spec.Process.Args = []string{"grep", "Cpus_allowed_list", "/proc/self/status"}
	b.Write()
	out := b.MustRuntime("run", b.ID).Stdout
	if f := strings.Fields(out); len(f) != 2 || f[1] != "1" {
		t.Errorf("affinity inside a cpuset of CPU 1: %q", out)
	}
}

// loopDevice attaches a new loop device to a 16 MiB file and returns its
// path and numbers; it is detached when the test ends.
func loopDevice(t *testing.T) (string, int64, int64) {
	backing := filepath.Join(t.TempDir(), "loop.img")
	if err := os.WriteFile(backing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, 16<<20); err != nil {
		t.Fatal(err)
	}
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no loop devices: %v", err)
	}
	defer ctl.Close()
	n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
	if err != nil {
		t.Fatal(err)
	}
	dev := fmt.Sprintf("/dev/loop%d", n)
	lf, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	bf, err := os.OpenFile(backing, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer bf.Close()
	if err := unix.IoctlSetInt(int(lf.Fd()), unix.LOOP_SET_FD, int(bf.Fd())); err != nil {
		lf.Close()
		t.Fatalf("attach %s: %v", dev, err)
	}
	t.Cleanup(func() {
		_ = unix.IoctlSetInt(int(lf.Fd()), unix.LOOP_CLR_FD, 0)
		lf.Close()
	})
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		t.Fatal(err)
	}
	return dev, int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
}

// TestIOThrottle: direct writes to a loop device under a 1 MiB/s write
// throttle take about as many seconds as MiB written.
func TestIOThrottle(t *testing.T) {
	dev, major, minor := loopDevice(t)
	b := harness.NewBundle(t)
	b.Spec.Linux.Devices = append(b.Spec.Linux.Devices, specs.LinuxDevice{Path: "/dev/throttled", Type: "b", Major: major, Minor: minor, FileMode: ptr(os.FileMode(0o660))})
	b.Spec.Linux.Resources.Devices = append(b.Spec.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "b", Major: &major, Minor: &minor, Access: "rw"})
	b.Spec.Linux.Resources.BlockIO = &specs.LinuxBlockIO{ThrottleWriteBpsDevice: []specs.LinuxThrottleDevice{{Rate: 1 << 20, LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}}}}
	b.Spec.Process.Args = []string{"dd", "if=/dev/zero", "of=/dev/throttled", "bs=64k", "count=48", "oflag=direct"}
	b.Write()
	start := time.Now()
	r := b.MustRuntime("run", b.ID)
	took := time.Since(start)
	// 3 MiB at 1 MiB/s: the first second's budget goes at once, so ≥ 2 s.
	if took < 1800*time.Millisecond {
		t.Errorf("3 MiB written to %s under 1 MiB/s in %v: %s", dev, took, r)
	}
	t.Logf("3 MiB under a 1 MiB/s throttle: %v", took)
	b.AssertNothingLeft()
}

// TestDeviceRules: a device the rules deny can be neither created nor
// opened; an allowed one can (v1 devices controller, v2 eBPF program).
func TestDeviceRules(t *testing.T) {
	b := harness.NewBundle(t)
	caps := b.Spec.Process.Capabilities
	for _, set := range []*[]string{&caps.Bounding, &caps.Effective, &caps.Permitted} {
		*set = append(*set, "CAP_MKNOD")
	}
	// /dev/kmsg (c 1:11) is listed as a device, so the runtime makes the
	// node; as under runc, that gives no access: only the config's rules
	// (deny all) and runc's built-in ones (mknod of anything, the standard
	// devices) apply.
	b.Spec.Linux.Devices = append(b.Spec.Linux.Devices, specs.LinuxDevice{Path: "/dev/kmsg", Type: "c", Major: 1, Minor: 11, FileMode: ptr(os.FileMode(0o644))})
	b.Spec.Root.Readonly = false
	b.Spec.Process.Args = []string{"sh", "-c", `
mknod /tmp/null c 1 3 && echo mknod-null-ok
mknod /tmp/kmsg c 1 11 && echo mknod-kmsg-ok
head -c 0 /dev/kmsg && echo open-kmsg-ok
echo x > /dev/null && echo write-null-ok`}
	b.Write()
	r := b.MustRuntime("run", b.ID)
	for _, want := range []string{"mknod-null-ok", "mknod-kmsg-ok", "write-null-ok"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("an allowed operation was refused: no %s in %s", want, r)
		}
	}
	if strings.Contains(r.Stdout, "open-kmsg-ok") {
		t.Errorf("a listed device the rules deny was usable: %s", r)
	}
	if strings.Count(r.Stderr, "Operation not permitted") != 1 {
		t.Errorf("want one EPERM failure (opening /dev/kmsg): %s", r)
	}
	b.AssertNothingLeft()
}

func TestCgroupNamespaceRoot(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Process.Args = []string{"cat", "/proc/self/cgroup"}
	b.Write()
	out := b.MustRuntime("run", b.ID).Stdout
	if strings.Contains(out, b.ID) || !strings.Contains(out, ":/\n") {
		t.Errorf("container sees its cgroup path, want / through the cgroup namespace:\n%s", out)
	}
}

// TestKernelMemoryWarned: a kernel memory limit, which Linux no longer
// enforces, is reported, not silently dropped; on v1 kernelTCP is still
// written.
func TestKernelMemoryWarned(t *testing.T) {
	b := harness.NewBundle(t)
	//lint:ignore SA1019 the field under test
	b.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Kernel: ptr(int64(64 << 20)), KernelTCP: ptr(int64(32 << 20))}
	b.Spec.Process.Args = []string{"sleep", "60"}
	b.Write()
	r := b.MustRuntime("create", b.ID)
	if !strings.Contains(r.Messages(), "warning: linux.resources.memory.kernel") {
		t.Errorf("no warning for the kernel memory limit: %s", r)
	}
	if !unified() {
		if got := readCgroup(t, b, "memory", "memory.kmem.tcp.limit_in_bytes"); got != "33554432" {
			t.Errorf("kmem.tcp limit %s, want 33554432", got)
		}
	}
	b.MustRuntime("delete", b.ID)
	b.AssertNothingLeft()
}

// TestResourcesBadInput: values no kernel takes are refused before
// anything is made, naming the field.
func TestResourcesBadInput(t *testing.T) {
	ncpu := 0
	if data, err := os.ReadFile("/sys/devices/system/cpu/possible"); err == nil {
		fmt.Sscanf(strings.TrimSpace(string(data)[strings.LastIndexAny(string(data), "-,")+1:]), "%d", &ncpu)
	}
	for _, c := range []struct {
		name  string
		set   func(r *specs.LinuxResources)
		field string
	}{
		{"negative memory", func(r *specs.LinuxResources) { r.Memory = &specs.LinuxMemory{Limit: ptr(int64(-5))} }, "linux.resources.memory.limit"},
		{"shares too large", func(r *specs.LinuxResources) { r.CPU = &specs.LinuxCPU{Shares: ptr(uint64(1 << 40))} }, "linux.resources.cpu.shares"},
		{"cpuset outside the machine", func(r *specs.LinuxResources) { r.CPU = &specs.LinuxCPU{Cpus: strconv.Itoa(ncpu + 64)} }, "linux.resources.cpu.cpus"},
		{"device type", func(r *specs.LinuxResources) {
			r.Devices = append(r.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "x", Access: "r"})
		}, "linux.resources.devices"},
		{"unknown unified key", func(r *specs.LinuxResources) { r.Unified = map[string]string{"memory.nonsense": "1"} }, "memory.nonsense"},
		{"rdma device that does not exist", func(r *specs.LinuxResources) {
			r.Rdma = map[string]specs.LinuxRdma{"nosuchhca0": {HcaHandles: ptr(uint32(1))}}
		}, "linux.resources.rdma"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.field == "memory.nonsense" && !unified() && cgroups.HostMode() != cgroups.Hybrid {
				t.Skip("unified needs a cgroup2 mount")
			}
			b := harness.NewBundle(t)
			c.set(b.Spec.Linux.Resources)
			b.Spec.Process.Args = []string{"true"}
			b.Write()
			r := b.Runtime("create", b.ID)
			if r.Code == 0 || !strings.Contains(r.Stderr, c.field) {
				t.Errorf("want an error naming %s: %s", c.field, r)
			}
			b.AssertNothingLeft()
		})
	}
}
