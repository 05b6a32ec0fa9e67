package integration

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-project/berth/test/harness"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The systemd cgroup driver (--systemd-cgroup, containerd's SystemdCgroup
// = true) under a real systemd with a system bus, runc as the oracle: the
// same bundle, a cgroupsPath in systemd's slice:prefix:name form and
// limits, under each runtime. Compared: the scope unit (active, its
// slice, its cgroup, the limits as its properties), the limits in the
// cgroup files, the init's cgroup, and after delete the unit and its
// cgroup gone.
func TestSystemdCgroupDriverAsRunc(t *testing.T) {
	runc := harness.Runc(t)
	sd := harness.StartSystemd(t)
	type outcome struct{ unit, files, initCgroup, afterDelete string }
	run := func(name, bin string) outcome {
		var o outcome
		b := harness.NewBundleFor(t, bin)
		b.Spec.Process.Args = []string{"sleep", "1000"}
		b.Spec.Linux.CgroupsPath = "machine-bt.slice:bt:" + b.ID
		mem, pids, shares, quota, period := int64(64<<20), int64(40), uint64(512), int64(50000), uint64(100000)
		if b.Spec.Linux.Resources == nil {
			b.Spec.Linux.Resources = &specs.LinuxResources{}
		}
		b.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &mem}
		b.Spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: pids}
		b.Spec.Linux.Resources.CPU = &specs.LinuxCPU{Shares: &shares, Quota: &quota, Period: &period}
		b.Write()
		inside := func(c *exec.Cmd) {
			c.Args = append([]string{"nsenter", "-t", strconv.Itoa(sd.Pid), "-a", "--wd=" + b.Dir, c.Path}, c.Args[1:]...)
			c.Path, _ = exec.LookPath("nsenter")
			c.Dir = ""
		}
		sh := func(script string) string {
			out, err := sd.Command("sh", "-c", script).CombinedOutput()
			if err != nil {
				t.Logf("%s: %s: %v", name, script, err)
			}
			return strings.TrimSpace(string(out))
		}
		if r := b.RuntimeWith(inside, "--systemd-cgroup", "run", "-d", "--bundle", b.Dir, b.ID); r.Code != 0 {
			t.Fatalf("%s run: %s", name, r)
		}
		unit := "bt-" + b.ID + ".scope"
		o.unit = sh("systemctl show -p ActiveState,Slice,ControlGroup,MemoryLimit,TasksMax,CPUShares,CPUQuotaPerSecUSec " + unit)
		dir := "/machine.slice/machine-bt.slice/" + unit
		o.files = sh(fmt.Sprintf("cat /sys/fs/cgroup/memory%[1]s/memory.limit_in_bytes /sys/fs/cgroup/pids%[1]s/pids.max /sys/fs/cgroup/cpu%[1]s/cpu.shares /sys/fs/cgroup/cpu%[1]s/cpu.cfs_quota_us", dir))
		st := b.RuntimeWith(inside, "state", b.ID)
		var pid string
		if _, after, ok := strings.Cut(st.Stdout, `"pid": `); ok {
			pid, _, _ = strings.Cut(after, ",")
		}
		o.initCgroup = sh("grep -E ':(memory|name=systemd):' /proc/" + strings.TrimSpace(pid) + "/cgroup | sort")
		if r := b.RuntimeWith(inside, "--systemd-cgroup", "delete", "--force", b.ID); r.Code != 0 {
			t.Errorf("%s delete: %s", name, r)
		}
		o.afterDelete = sh("systemctl show -p LoadState,ActiveState " + unit + "; ls -d /sys/fs/cgroup/memory" + dir + " 2>&1 | sed 's/.*: //'")
		// Unit names differ by id only.
		for _, f := range []*string{&o.unit, &o.files, &o.initCgroup, &o.afterDelete} {
			*f = strings.ReplaceAll(*f, b.ID, "ID")
		}
		return o
	}
	want, got := run("runc", runc), run("berth-runtime", harness.RuntimeBin())
	t.Logf("runc:  %+v\nberth: %+v", want, got)
	if want != got {
		t.Errorf("the systemd driver differs from runc's:\nrunc:  %+v\nberth: %+v", want, got)
	}
	if !strings.Contains(got.unit, "ActiveState=active") || !strings.Contains(got.unit, "Slice=machine-bt.slice") ||
		!strings.Contains(got.files, "67108864") || !strings.Contains(got.initCgroup, "bt-ID.scope") {
		t.Errorf("berth-runtime's scope: %+v", got)
	}
}
