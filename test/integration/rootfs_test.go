package integration

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/userns"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
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

// An idmapped bind (runtime-spec 1.2's idmap option) shows the files of
// its source through a mapping: the container's own (a file stored as uid
// 0 is the container's root, and what the root writes is stored as 0) or
// the mount's uidMappings. A plain bind of the same directory is the
// control: there the host's root is unmapped (nobody).
func TestIdmappedBind(t *testing.T) {
	b := harness.NewBundle(t)
	userNS(t, b)
	host := filepath.Join(b.Dir, "shared")
	if err := os.MkdirAll(filepath.Join(host, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(host, "f"), []byte("x"), 0o644)
	if err := os.Chown(filepath.Join(host, "sub"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	requireIdmap(t, host)
	own := []specs.LinuxIDMapping{{ContainerID: 1000, HostID: 100000, Size: 1}}
	b.Spec.Mounts = append(b.Spec.Mounts,
		specs.Mount{Destination: "/plain", Type: "bind", Source: host, Options: []string{"rbind"}},
		specs.Mount{Destination: "/mapped", Type: "bind", Source: host, Options: []string{"rbind", "idmap"}},
		specs.Mount{Destination: "/own", Type: "bind", Source: host, Options: []string{"rbind", "ridmap", "ro"}, UIDMappings: own, GIDMappings: own},
	)
	b.Spec.Process.Args = []string{"sh", "-c", `
stat -c 'plain %n %u:%g' /plain/f /plain/sub
stat -c 'mapped %n %u:%g' /mapped/f /mapped/sub
stat -c 'own %n %u:%g' /own/f /own/sub
echo new > /mapped/new && echo wrote
touch /own/x 2>/dev/null || echo own-ro
`}
	b.Write()
	out := b.MustRuntime("run", b.ID).Stdout
	for _, want := range []string{
		"plain /plain/f 65534:65534", "plain /plain/sub 65534:65534",
		"mapped /mapped/f 0:0", "mapped /mapped/sub 1000:1000",
		"own /own/f 65534:65534", "own /own/sub 0:0",
		"wrote", "own-ro",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(host, "new"), &st); err != nil || st.Uid != 0 || st.Gid != 0 {
		t.Errorf("a file the container's root made through the idmapped bind: stored as %d:%d (%v), want 0:0", st.Uid, st.Gid, err)
	}
	b.AssertNothingLeft()
}

// Idmapped binds that cannot be: refused at create, nothing made.
func TestIdmappedBindRefused(t *testing.T) {
	for name, tc := range map[string]struct {
		userns bool
		m      specs.Mount
		want   string
	}{
		"no mappings anywhere": {false, specs.Mount{Destination: "/d", Type: "bind", Source: "/tmp", Options: []string{"rbind", "idmap"}}, "takes the container's user namespace mappings"},
		"mappings without idmap": {true, specs.Mount{Destination: "/d", Type: "bind", Source: "/tmp", Options: []string{"rbind"},
			UIDMappings: []specs.LinuxIDMapping{{HostID: 100000, Size: 1}}, GIDMappings: []specs.LinuxIDMapping{{HostID: 100000, Size: 1}}}, "need the idmap or ridmap option"},
		"not a bind":   {true, specs.Mount{Destination: "/d", Type: "tmpfs", Source: "tmpfs", Options: []string{"idmap"}}, "only a bind mount can be idmapped"},
		"uid map only": {true, specs.Mount{Destination: "/d", Type: "bind", Source: "/tmp", Options: []string{"rbind", "idmap"}, UIDMappings: []specs.LinuxIDMapping{{HostID: 100000, Size: 1}}}, "needs both uidMappings and gidMappings"},
	} {
		t.Run(name, func(t *testing.T) {
			b := harness.NewBundle(t)
			if tc.userns {
				userNS(t, b)
			}
			b.Spec.Mounts = append(b.Spec.Mounts, tc.m)
			b.Write()
			r := b.Runtime("create", b.ID)
			if r.Code == 0 || !strings.Contains(r.Stderr, tc.want) {
				t.Errorf("create: %v; want a failure saying %q", r, tc.want)
			}
			b.AssertNothingLeft()
		})
	}
}

// requireIdmap skips the test where dir's file system cannot be idmapped
// (tmpfs before Linux 6.3, as in the cgroup v2 guest).
func requireIdmap(t *testing.T, dir string) {
	t.Helper()
	ns, err := userns.Open(userns.Mapping{UID: userns.Range{Start: 100000, Size: 1}, GID: userns.Range{Start: 100000, Size: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	tree, err := userns.Clone(dir, ns)
	if errors.Is(err, unix.EINVAL) {
		t.Skipf("the file system of %s cannot be idmapped here: %v", dir, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	tree.Close()
}
