// Package escape is the escape suite: every test is an attempt to get out
// of a container — through symlinks, descriptors, /proc, the runtime's own
// binary or process, devices, privileges — that must fail with the host
// unchanged. Controls (the same attempt with a defence turned off) show
// that the tests can fail.
package escape

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/test/harness"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestRuntimeBinaryNotWritableFromContainer reproduces CVE-2019-5736: the
// container makes an exec'd runtime process exec /proc/self/exe (so the
// runtime binary runs inside the container), holds it through
// /proc/<pid>/exe, and tries to reopen it for writing once it exited. The
// runtime runs from a read-only mount, so the reopen must fail with EROFS.
func TestRuntimeBinaryNotWritableFromContainer(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Root.Readonly = false
	b.Spec.Process.Args = []string{"sleep", "60"}
	if err := os.Symlink("/proc/self/exe", filepath.Join(b.Rootfs, "evil-exe")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(b.Rootfs, "tmp/fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.Write()
	b.MustRuntime("run", "-d", b.ID)
	// The exec'd init execs /evil-exe: the kernel resolves /proc/self/exe
	// to the runtime binary. That runtime CLI fails to find a container and
	// blocks writing its error to --log /tmp/fifo until a reader comes.
	b.MustRuntime("exec", "-d", b.ID, "/evil-exe", "--log", "/tmp/fifo", "state", "none")
	// Detached, so that no runtime process stays running on the host (the
	// binary would be busy, ETXTBSY, rather than read-only).
	b.MustRuntime("exec", "-d", b.ID, "sh", "-c", "/bin/checker reopen-exe /tmp/fifo > /tmp/result 2>&1; echo done >> /tmp/result")
	var out string
	for i := 0; i < 1000 && !strings.Contains(out, "done"); i++ {
		data, _ := os.ReadFile(filepath.Join(b.Rootfs, "tmp/result"))
		out = string(data)
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(out, "holding") {
		t.Fatalf("the attack did not get hold of the runtime binary: %q", out)
	}
	if !strings.Contains(out, "read-only file system") {
		t.Errorf("runtime binary reopened from inside the container: %q", out)
	}
	b.MustRuntime("delete", "--force", b.ID)
	b.AssertNothingLeft()
}

// TestCwdThroughLeakedDescriptor: process.cwd naming a descriptor the
// runtime inherited (/proc/self/fd/N on a host directory, CVE-2024-21626)
// must not put the process in a host directory — whether or not the
// descriptor was passed on with --preserve-fds.
func TestCwdThroughLeakedDescriptor(t *testing.T) {
	for _, preserve := range []bool{false, true} {
		b := harness.NewBundle(t)
		hostDir := t.TempDir()
		os.WriteFile(filepath.Join(hostDir, "host-secret"), []byte("x"), 0o644)
		d, err := os.Open(hostDir)
		if err != nil {
			t.Fatal(err)
		}
		b.Spec.Process.Cwd = "/proc/self/fd/3"
		b.Spec.Process.Args = []string{"sh", "-c", "ls; pwd"}
		b.Write()
		args := []string{"run", b.ID}
		if preserve {
			args = []string{"run", "--preserve-fds", "1", b.ID}
		}
		r := b.RuntimeWith(func(c *exec.Cmd) { c.ExtraFiles = []*os.File{d} }, args...)
		d.Close()
		if strings.Contains(r.Stdout, "host-secret") {
			t.Errorf("preserve=%v: the container's cwd is the host directory: %s", preserve, r)
		}
		if r.Code == 0 {
			t.Errorf("preserve=%v: a cwd outside the root was accepted: %s", preserve, r)
		}
		b.AssertNothingLeft()
	}
}

// TestExecCwdThroughLeakedDescriptor: the same through `exec --cwd`, where
// no rootfs is prepared and only the init's own check stands.
func TestExecCwdThroughLeakedDescriptor(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Process.Args = []string{"sleep", "60"}
	b.Write()
	b.MustRuntime("run", "-d", b.ID)
	hostDir := t.TempDir()
	os.WriteFile(filepath.Join(hostDir, "host-secret"), []byte("x"), 0o644)
	d, err := os.Open(hostDir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, args := range [][]string{
		{"exec", "--preserve-fds", "1", "--cwd", "/proc/self/fd/3", b.ID, "sh", "-c", "ls; pwd"},
		{"exec", "--cwd", "/proc/self/fd/3", b.ID, "sh", "-c", "ls; pwd"},
	} {
		r := b.RuntimeWith(func(c *exec.Cmd) { c.ExtraFiles = []*os.File{d} }, args...)
		if strings.Contains(r.Stdout, "host-secret") || r.Code == 0 {
			t.Errorf("%v: %s", args, r)
		}
	}
	b.MustRuntime("delete", "--force", b.ID)
}

// TestEscapeAttempts: from a container with the default spec (root, the
// default capabilities, no_new_privs), each attempt to reach or change the
// host must fail, and the host must be unchanged.
func TestEscapeAttempts(t *testing.T) {
	hostname, _ := os.Hostname()
	ksm, _ := os.ReadFile("/sys/kernel/mm/ksm/run")
	attempts := []struct{ name, script string }{
		{"mount a file system", "mount -t tmpfs none /tmp"},
		{"remount / writable", "mount -o remount,rw /"},
		{"write /proc/sysrq-trigger", "echo h > /proc/sysrq-trigger"},
		{"write /sys/kernel", "echo 1 > /sys/kernel/mm/ksm/run"},
		{"write /proc/sys", "echo x > /proc/sys/kernel/hostname"},
		{"read /proc/kcore", "test -s /proc/kcore && head -c 1 /proc/kcore | wc -c | grep -q 1"},
		{"create a device node", "mknod /dev/sda-copy b 8 0"},
		{"open a disk device", "head -c 1 /dev/vda"},
		{"set the hostname", "hostname escaped"},
		{"unmount a masked path", "umount /proc/kcore"},
		{"write the runtime's exe", "echo x > /proc/1/exe"},
		// busybox date reports the failure but exits 0.
		{"change the system time", "date -s 2001-01-01 2>&1 | grep -q \"can't set\" && exit 1; exit 0"},
	}
	for _, a := range attempts {
		b := harness.NewBundle(t)
		b.Spec.Process.Args = []string{"sh", "-c", a.script}
		b.Write()
		if r := b.Runtime("run", b.ID); r.Code == 0 {
			t.Errorf("%s: succeeded inside the container (%s)", a.name, r)
		}
		b.AssertNothingLeft()
	}
	if h, _ := os.Hostname(); h != hostname {
		t.Errorf("host hostname changed to %q", h)
	}
	if k, _ := os.ReadFile("/sys/kernel/mm/ksm/run"); string(k) != string(ksm) {
		t.Errorf("host /sys/kernel/mm/ksm/run changed")
	}
}

// TestSetuidUnderNoNewPrivs: a setuid-root binary run by an unprivileged
// container user gains nothing with no_new_privs, and does without it (the
// control that shows the test can fail).
func TestSetuidUnderNoNewPrivs(t *testing.T) {
	for _, nnp := range []bool{true, false} {
		b := harness.NewBundle(t)
		suid := filepath.Join(b.Rootfs, "bin/checker-suid")
		data, err := os.ReadFile(filepath.Join(b.Rootfs, "bin/checker"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(suid, data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(suid, 0o755|os.ModeSetuid); err != nil {
			t.Fatal(err)
		}
		b.Spec.Process.NoNewPrivileges = nnp
		b.Spec.Process.User = specs.User{UID: 1000, GID: 1000}
		b.Spec.Process.Args = []string{"/bin/checker-suid"}
		rep := b.Report()
		if nnp && (rep.EUID != 1000 || rep.Caps["CapEff"] != "0000000000000000") {
			t.Errorf("no_new_privs: setuid binary ran with euid %d, CapEff %s", rep.EUID, rep.Caps["CapEff"])
		}
		if !nnp && rep.EUID != 0 {
			t.Errorf("control without no_new_privs: euid %d, want 0 (the setuid bit works)", rep.EUID)
		}
	}
}

// TestExeMountOfReplacedBinaryPruned: the read-only mount of a runtime
// binary that was since deleted (an upgrade) is removed when another
// binary makes its own, so upgrades do not pile up mounts.
func TestExeMountOfReplacedBinaryPruned(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Process.Args = []string{"true"}
	b.Write()
	data, err := os.ReadFile(harness.RuntimeBin())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	runWith := func(name string) string {
		bin := filepath.Join(dir, name)
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "--root", b.Root, "run", b.ID)
		cmd.Dir = b.Dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s run: %v %s", name, err, out)
		}
		var st unix.Stat_t
		unix.Stat(bin, &st)
		return container.ExePath(st.Dev, st.Ino)
	}
	old := runWith("old")
	if _, err := os.Stat(old); err != nil {
		t.Fatalf("no read-only mount for the first binary: %v", err)
	}
	os.Remove(filepath.Join(dir, "old"))
	cur := runWith("new")
	defer container.RemoveExeMount(filepath.Join(dir, "new"))
	if _, err := os.Stat(old); err == nil {
		t.Errorf("mount of the deleted binary %s is still there", old)
	}
	if _, err := os.Stat(cur); err != nil {
		t.Errorf("no mount for the new binary: %v", err)
	}
}

// TestKeyctlRefusedByDefaultProfile: the kernel keyring is not
// namespaced; the default profile refuses it (control: no profile).
func TestKeyctlRefusedByDefaultProfile(t *testing.T) {
	for _, profile := range []bool{true, false} {
		b := harness.NewBundle(t)
		if !profile {
			b.Spec.Linux.Seccomp = nil
		}
		b.Spec.Process.Args = []string{"/bin/checker", "keyctl"}
		b.Write()
		out := b.MustRuntime("run", b.ID).Stdout
		if profile && !strings.Contains(out, "keyctl: operation not permitted") {
			t.Errorf("default profile: %q", out)
		}
		if !profile && !strings.Contains(out, "keyctl-ok") {
			t.Errorf("control without a profile: %q", out)
		}
	}
}

// TestPtraceOfRuntimeRefused: a process in the container cannot ptrace the
// runtime's init waiting at the start barrier (PID 1 of a created
// container) — with the default profile, and without one too, because the
// init is not dumpable. Control: it can ptrace an ordinary process of the
// container, with the default profile as without (Docker's profile allows
// ptrace on kernels from 4.8, so strace and gdb work inside).
func TestPtraceOfRuntimeRefused(t *testing.T) {
	for _, profile := range []bool{true, false} {
		b := harness.NewBundle(t)
		if !profile {
			b.Spec.Linux.Seccomp = nil
		}
		b.Spec.Process.Args = []string{"sleep", "60"}
		b.Write()
		b.MustRuntime("create", b.ID)
		out := b.MustRuntime("exec", b.ID, "/bin/checker", "ptrace", "1").Stdout
		if !strings.Contains(out, "ptrace: operation not permitted") {
			t.Errorf("profile=%v: ptrace of the runtime's init: %q", profile, out)
		}
		b.MustRuntime("start", b.ID)
		b.MustRuntime("exec", "-d", b.ID, "sleep", "60")
		out = b.MustRuntime("exec", b.ID, "sh", "-c", "for p in /proc/[0-9]*; do grep -q '^sleep' $p/comm 2>/dev/null && [ ${p#/proc/} != 1 ] && exec /bin/checker ptrace ${p#/proc/}; done").Stdout
		if !strings.Contains(out, "ptrace-ok") {
			t.Errorf("control (profile=%v): ptrace of a container process: %q", profile, out)
		}
		b.MustRuntime("delete", "--force", b.ID)
		b.AssertNothingLeft()
	}
}

// TestSymlinkMountDestinationStaysInRootfs plants symlinks in the rootfs
// that point outside it (absolute and relative) and mounts through them:
// every mount must land inside the rootfs.
func TestSymlinkMountDestinationStaysInRootfs(t *testing.T) {
	b := harness.NewBundle(t)
	outside := filepath.Join(b.Dir, "outside")
	os.MkdirAll(outside, 0o755)
	os.Symlink(outside, filepath.Join(b.Rootfs, "abs-escape"))
	os.Symlink("../../../../../../../../"+strings.TrimPrefix(outside, "/"), filepath.Join(b.Rootfs, "rel-escape"))
	os.Symlink("/", filepath.Join(b.Rootfs, "root-link"))
	b.Spec.Mounts = append(b.Spec.Mounts,
		specs.Mount{Destination: "/abs-escape/a", Type: "tmpfs", Source: "tmpfs"},
		specs.Mount{Destination: "/rel-escape/b", Type: "tmpfs", Source: "tmpfs"},
		specs.Mount{Destination: "/root-link" + outside + "/c", Type: "tmpfs", Source: "tmpfs"},
	)
	b.Spec.Root.Readonly = false
	b.Spec.Process.Args = []string{"sh", "-c", "touch /abs-escape/a/inside-a /rel-escape/b/inside-b " + outside + "/c/inside-c && echo ok"}
	b.Write()
	r := b.Runtime("run", b.ID)
	if r.Code != 0 || !strings.Contains(r.Stdout, "ok") {
		t.Fatalf("run: %s", r)
	}
	ents, _ := os.ReadDir(outside)
	for _, e := range ents {
		t.Errorf("mount escaped the rootfs: %s/%s exists on the host", outside, e.Name())
	}
	// The directories were created inside the rootfs, under the path the
	// symlink names.
	if _, err := os.Stat(filepath.Join(b.Rootfs, outside, "a")); err != nil {
		t.Errorf("mount point not created inside the rootfs: %v", err)
	}
	b.AssertNothingLeft()
}

func TestCwdSymlinkStaysInRootfs(t *testing.T) {
	b := harness.NewBundle(t)
	outside := filepath.Join(b.Dir, "outside-cwd")
	os.Symlink(outside, filepath.Join(b.Rootfs, "cwdlink"))
	b.Spec.Process.Cwd = "/cwdlink/sub"
	b.Spec.Root.Readonly = false
	b.Spec.Process.Args = []string{"sh", "-c", "pwd; touch here"}
	b.Write()
	b.MustRuntime("run", b.ID)
	if _, err := os.Stat(outside); err == nil {
		t.Errorf("cwd creation followed a symlink out of the rootfs")
	}
	if _, err := os.Stat(filepath.Join(b.Rootfs, outside, "sub", "here")); err != nil {
		t.Errorf("cwd not created inside the rootfs: %v", err)
	}
}

func TestDeviceCgroupDeniesUnlistedDevice(t *testing.T) {
	b := harness.NewBundle(t)
	// mknod inside works (CAP_MKNOD), opening is what the cgroup refuses.
	b.Spec.Process.Capabilities.Bounding = append(b.Spec.Process.Capabilities.Bounding, "CAP_MKNOD")
	b.Spec.Process.Capabilities.Effective = append(b.Spec.Process.Capabilities.Effective, "CAP_MKNOD")
	b.Spec.Process.Capabilities.Permitted = append(b.Spec.Process.Capabilities.Permitted, "CAP_MKNOD")
	b.Spec.Process.Args = []string{"sh", "-c", "mknod /dev/mem2 c 1 1 && head -c 1 /dev/mem2 >/dev/null && echo opened || echo refused"}
	b.Write()
	out := b.MustRuntime("run", b.ID).Stdout
	if !strings.Contains(out, "refused") {
		t.Errorf("/dev/mem (1:1) opened inside the container: %q", out)
	}
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Process.Args = []string{"sh", "-c", `
echo "kcore=[$(head -c 16 /proc/kcore | wc -c)]"
echo "firmware=[$(ls /sys/firmware | wc -l)]"
echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable || echo sys-readonly
echo h > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable || echo sysrq-readonly
touch /newfile 2>/dev/null && echo root-writable || echo root-readonly
`}
	b.Write()
	out := b.MustRuntime("run", b.ID).Stdout
	for _, want := range []string{"kcore=[0]", "firmware=[0]", "sys-readonly", "sysrq-readonly", "root-readonly"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestProcAndSysMustBeDirectories: a root file system whose /proc or /sys
// is a symlink (to a directory of the host) is refused before anything is
// mounted, as runc refuses it (CVE-2019-19921, CVE-2023-27561); nothing
// lands in the symlink's target. Control: with directories it runs.
func TestProcAndSysMustBeDirectories(t *testing.T) {
	for _, d := range []string{"proc", "sys"} {
		b := harness.NewBundle(t)
		target := filepath.Join(b.Dir, "target-"+d)
		os.MkdirAll(target, 0o755)
		os.RemoveAll(filepath.Join(b.Rootfs, d))
		if err := os.Symlink(target, filepath.Join(b.Rootfs, d)); err != nil {
			t.Fatal(err)
		}
		b.Spec.Process.Args = []string{"true"}
		b.Write()
		r := b.Runtime("run", b.ID)
		if r.Code == 0 || !strings.Contains(r.Stderr, "/"+d+" is a symlink, not a directory") {
			t.Errorf("/%s a symlink: %s", d, r)
		}
		if ents, _ := os.ReadDir(target); len(ents) != 0 {
			t.Errorf("something was mounted through the /%s symlink: %d entries in its target", d, len(ents))
		}
		b.AssertNothingLeft()
	}
	b := harness.NewBundle(t)
	b.Spec.Process.Args = []string{"true"}
	b.Write()
	if r := b.Runtime("run", b.ID); r.Code != 0 {
		t.Errorf("control: %s", r)
	}
}

// TestMountsOverProcRefused: a mount on /proc that is not a proc file
// system, or inside /proc (but the files lxcfs emulates), is refused as
// runc refuses it: the runtime writes sysctls, oom_score_adj and masks
// through /proc after the mounts, and a fake /proc would cancel them
// (CVE-2019-16884).
func TestMountsOverProcRefused(t *testing.T) {
	for _, m := range []specs.Mount{
		{Destination: "/proc", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/proc/self", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/proc/sys", Type: "bind", Source: "/tmp", Options: []string{"rbind"}},
	} {
		b := harness.NewBundle(t)
		b.Spec.Mounts = append(b.Spec.Mounts, m)
		b.Spec.Process.Args = []string{"true"}
		b.Write()
		r := b.Runtime("run", b.ID)
		if r.Code == 0 || !strings.Contains(r.Stderr, "cannot be mounted because it is") {
			t.Errorf("mount on %s: %s", m.Destination, r)
		}
		b.AssertNothingLeft()
	}
	// Control: a file lxcfs emulates may be covered.
	b := harness.NewBundle(t)
	fake := filepath.Join(b.Dir, "uptime")
	os.WriteFile(fake, []byte("12345.67 1.00\n"), 0o644)
	b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/proc/uptime", Type: "bind", Source: fake, Options: []string{"bind", "ro"}})
	b.Spec.Process.Args = []string{"cat", "/proc/uptime"}
	b.Write()
	if r := b.Runtime("run", b.ID); r.Code != 0 || !strings.HasPrefix(r.Stdout, "12345.67") {
		t.Errorf("control, /proc/uptime from lxcfs: %s", r)
	}
}
