package integration

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/registry"
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

// containerd with SystemdCgroup = true, as most Kubernetes nodes run it,
// inside a real systemd: the same pod (a memory limit on its container)
// under the runc and berth handlers gives the same scope unit, slice and
// limit, and leaves no unit behind.
func TestContainerdSystemdCgroupAsRunc(t *testing.T) {
	sd := harness.StartSystemd(t)
	ctd := harness.StartContainerd(t, harness.ContainerdOptions{Systemd: sd})
	for ref, cmd := range map[string][]string{"berth.test/pause:1": {"sh", "-c", "trap 'exit 0' TERM; sleep 1000000 & wait"}, "berth.test/busybox:1": {"sh"}} {
		ctd.Import(t, ref, registry.Image(t, "amd64", cmd, registry.Layer(t, registry.BusyboxTar(t), "gzip")))
	}
	sh := func(script string) string {
		out, _ := sd.Command("sh", "-c", script).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	run := func(handler string) string {
		podPath, ctrPath := filepath.Join(ctd.Dir, handler+"-pod.json"), filepath.Join(ctd.Dir, handler+"-ctr.json")
		harness.WriteJSON(t, podPath, map[string]any{
			"metadata": map[string]any{"name": "pod-" + handler, "namespace": "default", "uid": "uid-" + handler},
			"linux":    map[string]any{"cgroup_parent": "machine-btpods.slice"},
		})
		harness.WriteJSON(t, ctrPath, map[string]any{
			"metadata": map[string]any{"name": "c"}, "image": map[string]any{"image": "berth.test/busybox:1"},
			"command": []string{"sleep", "1000"},
			"linux":   map[string]any{"resources": map[string]any{"memory_limit_in_bytes": 64 << 20}},
		})
		pod, id := ctd.RunPod(t, handler, podPath, ctrPath)
		unit := "cri-containerd-" + id + ".scope"
		got := sh("systemctl show -p ActiveState,Slice,MemoryLimit " + unit + "; cat /sys/fs/cgroup/memory/machine.slice/machine-btpods.slice/" + unit + "/memory.limit_in_bytes")
		if out, err := ctd.CRI("stopp", pod); err != nil {
			t.Errorf("%s: stopp: %v: %s", handler, err, out)
		}
		if out, err := ctd.CRI("rmp", pod); err != nil {
			t.Errorf("%s: rmp: %v: %s", handler, err, out)
		}
		got += "\n" + sh("systemctl show -p LoadState "+unit)
		return got
	}
	want, got := run("runc"), run("berth")
	t.Logf("runc:\n%s\nberth:\n%s", want, got)
	if want != got || !strings.Contains(got, "MemoryLimit=67108864") || !strings.Contains(got, "LoadState=not-found") {
		t.Errorf("containerd's systemd driver: runc\n%s\nberth-runtime\n%s", want, got)
	}
}
