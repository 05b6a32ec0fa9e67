package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/test/harness"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestMountsBindTmpfsAndReadonly(t *testing.T) {
	b := harness.NewBundle(t)
	host := filepath.Join(b.Dir, "hostdir")
	os.MkdirAll(host, 0o755)
	os.WriteFile(filepath.Join(host, "file"), []byte("from-host"), 0o644)
	hostFile := filepath.Join(b.Dir, "hostfile")
	os.WriteFile(hostFile, []byte("single-file"), 0o644)
	b.Spec.Mounts = append(b.Spec.Mounts,
		specs.Mount{Destination: "/mnt/ro", Type: "bind", Source: host, Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/mnt/rw", Type: "bind", Source: host, Options: []string{"bind", "rw", "rprivate"}},
		specs.Mount{Destination: "/etc/single", Type: "bind", Source: hostFile, Options: []string{"bind", "ro"}},
		specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "mode=1777", "noexec"}},
	)
	b.Spec.Process.Args = []string{"sh", "-c", `
cat /mnt/ro/file; echo
cat /etc/single; echo
touch /mnt/ro/x 2>/dev/null && echo ro-writable || echo ro-refused
touch /mnt/rw/created && echo rw-ok
dd if=/dev/zero of=/scratch/big bs=1k count=2048 2>/dev/null; ls -l /scratch/big | tr -s ' ' | cut -d' ' -f5 2>/dev/null || stat -c %s /scratch/big
grep ' /scratch ' /proc/self/mountinfo | grep -q noexec && echo tmpfs-noexec
`}
	b.Write()
	out := b.MustRuntime("run", b.ID).Stdout
	for _, want := range []string{"from-host", "single-file", "ro-refused", "rw-ok", "tmpfs-noexec"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(host, "created")); err != nil {
		t.Errorf("write through the rw bind did not reach the host: %v", err)
	}
	if _, err := os.Stat(filepath.Join(host, "x")); err == nil {
		t.Errorf("write through the ro bind reached the host")
	}
	b.AssertNothingLeft()
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

func TestDevices(t *testing.T) {
	b := harness.NewBundle(t)
	mode := os.FileMode(0o640)
	uid, gid := uint32(7), uint32(8)
	b.Spec.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: &mode, UID: &uid, GID: &gid}}
	b.Spec.Process.Args = []string{"sh", "-c", `
for d in null zero full random urandom tty fuse; do stat -c "%n %F %t:%T %a %u:%g" /dev/$d; done
for l in ptmx fd stdin stdout stderr; do readlink /dev/$l; done
head -c 4 /dev/zero | wc -c
echo x > /dev/null && echo null-writable
`}
	b.Write()
	out := b.MustRuntime("run", b.ID).Stdout
	for _, want := range []string{
		"/dev/null character special file 1:3 666 0:0", "/dev/zero character special file 1:5",
		"/dev/full character special file 1:7", "/dev/urandom character special file 1:9",
		"/dev/tty character special file 5:0", "/dev/fuse character special file a:e5 640 7:8",
		"pts/ptmx", "/proc/self/fd\n", "/proc/self/fd/0", "/proc/self/fd/2", "\n4\n", "null-writable",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b.AssertNothingLeft()
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

func TestRootfsPropagation(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Linux.RootfsPropagation = "private"
	b.Spec.Process.Args = []string{"awk", "$5 == \"/\"", "/proc/self/mountinfo"}
	b.Write()
	out := b.MustRuntime("run", b.ID).Stdout
	if out == "" {
		t.Fatal("no root mount in mountinfo")
	}
	if strings.Contains(out, "shared:") || strings.Contains(out, "master:") {
		t.Errorf("root mount not private: %s", out)
	}
}
