package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/test/harness"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func requireV1(t *testing.T) {
	if cgroups.HostMode() == cgroups.Unified {
		t.Skip("this test reads cgroup v1 files; the v2 guest runs the cgroups suite")
	}
}

func readCg(t *testing.T, b *harness.Bundle, ctrl, file string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", ctrl, b.Spec.Linux.CgroupsPath, file))
	if err != nil {
		t.Fatalf("read %s/%s: %v", ctrl, file, err)
	}
	return strings.TrimSpace(string(data))
}

func TestCgroupLimitsApplied(t *testing.T) {
	requireV1(t)
	b := harness.NewBundle(t)
	b.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Reservation: ptr(int64(32 << 20))}
	b.Spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: 20}
	b.Spec.Linux.Resources.CPU = &specs.LinuxCPU{Shares: ptr(uint64(512)), Quota: ptr(int64(50000)), Period: ptr(uint64(100000)), Cpus: "0"}
	b.Spec.Process.Args = []string{"sleep", "60"}
	b.Write()
	b.MustRuntime("create", b.ID)
	pid := itoa(b.State().Pid)
	for _, c := range []struct{ ctrl, file, want string }{
		{"memory", "memory.limit_in_bytes", "67108864"},
		{"memory", "memory.soft_limit_in_bytes", "33554432"},
		{"pids", "pids.max", "20"},
		{"cpu", "cpu.shares", "512"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpuset", "cpuset.cpus", "0"},
	} {
		if got := readCg(t, b, c.ctrl, c.file); got != c.want {
			t.Errorf("%s/%s = %s, want %s", c.ctrl, c.file, got, c.want)
		}
		if procs := readCg(t, b, c.ctrl, "cgroup.procs"); procs != pid {
			t.Errorf("%s cgroup.procs = %q, want init %s", c.ctrl, procs, pid)
		}
	}
	b.MustRuntime("delete", b.ID)
	b.AssertNothingLeft()
}

func TestPidsLimitEnforced(t *testing.T) {
	requireV1(t)
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
	requireV1(t)
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

func TestCgroupNamespaceRoot(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Process.Args = []string{"sh", "-c", "cat /proc/self/cgroup; ls /sys/fs/cgroup/memory | grep -c limit_in_bytes"}
	b.Write()
	out := b.MustRuntime("run", b.ID).Stdout
	if strings.Contains(out, b.ID) {
		t.Errorf("container sees its cgroup path, want / through the cgroup namespace:\n%s", out)
	}
}

// TestKernelMemoryWarned: a kernel memory limit, which Linux no longer
// enforces, is reported, not silently dropped; kernelTCP is still written.
func TestKernelMemoryWarned(t *testing.T) {
	requireV1(t)
	b := harness.NewBundle(t)
	b.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Kernel: ptr(int64(64 << 20)), KernelTCP: ptr(int64(32 << 20))}
	b.Spec.Process.Args = []string{"sleep", "60"}
	b.Write()
	r := b.MustRuntime("create", b.ID)
	if !strings.Contains(r.Stderr, "warning: linux.resources.memory.kernel") {
		t.Errorf("no warning for the kernel memory limit: %s", r)
	}
	if got := readCg(t, b, "memory", "memory.kmem.tcp.limit_in_bytes"); got != "33554432" {
		t.Errorf("kmem.tcp limit %s, want 33554432", got)
	}
	b.MustRuntime("delete", b.ID)
	b.AssertNothingLeft()
}
