package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Systemd is the host's systemd running as PID 1 of a container of the
// test's own, with a system bus (dbus-daemon), for the systemd cgroup
// driver's tests: its root is an overlay of the host's root file system
// (writes go to a tmpfs), with the test's own temporary directory (where
// its bundles are) bound in, and /run and /sys/fs/cgroup of its own. It
// starts no unit but D-Bus (its own units: the host's pull in
// sysinit.target, whose tmpfiles would empty what is shared). Its
// cgroups are a subtree of the test's own on every hierarchy, seen as
// the root through a cgroup namespace. It shares the host's network
// namespace and devices, and runs nothing that touches them. Everything
// goes when the test ends.
type Systemd struct {
	Pid int // systemd's pid on the host
	// Cgroup is the subtree's path below each hierarchy's root on the host.
	Cgroup string
}

const systemdBoot = `set -e
W=$1
mount -t tmpfs tmpfs "$W/ov"
mkdir "$W/ov/upper" "$W/ov/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$W/ov/upper,workdir=$W/ov/work" "$W/root"
R=$W/root
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
mount --rbind /dev "$R/dev"
mount -t tmpfs tmpfs "$R/run"
mount --bind "$2" "$R$2"
if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
	mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"
else
	mount -t tmpfs -o mode=755 tmpfs "$R/sys/fs/cgroup"
	for c in $(awk '!/^#/ && $4 == 1 {print $1}' /proc/cgroups); do
		[ -d "/sys/fs/cgroup/$c" ] || continue
		mkdir "$R/sys/fs/cgroup/$c"
		mount -t cgroup -o "$c" cgroup "$R/sys/fs/cgroup/$c"
	done
	mkdir "$R/sys/fs/cgroup/systemd"
	mount -t cgroup -o none,name=systemd cgroup "$R/sys/fs/cgroup/systemd"
	if [ -d /sys/fs/cgroup/unified ]; then
		mkdir "$R/sys/fs/cgroup/unified"
		mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup/unified"
	fi
fi
mkdir -p "$R/etc/systemd/system"
# Nothing but D-Bus: no unit of the target pulls in sysinit.target, whose
# units (tmpfiles, sysctl, udev) would act on what the host shares.
printf '[Unit]\nDescription=berth test\nDefaultDependencies=no\nWants=dbus.socket dbus.service\n' >"$R/etc/systemd/system/berth-test.target"
printf '[Unit]\nDefaultDependencies=no\n[Socket]\nListenStream=/run/dbus/system_bus_socket\n' >"$R/etc/systemd/system/dbus.socket"
printf '[Unit]\nDefaultDependencies=no\nRequires=dbus.socket\nAfter=dbus.socket\n[Service]\nExecStart=/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile --systemd-activation --syslog-only\n' >"$R/etc/systemd/system/dbus.service"
echo 0123456789abcdef0123456789abcdef >"$R/etc/machine-id"
hostname berth-systemd
cd "$R"
mkdir -p oldroot
pivot_root . oldroot
umount -l /oldroot
exec env -i container=berth-test /lib/systemd/systemd --unit=berth-test.target
`

// StartSystemd boots systemd in its container and waits until its system
// bus answers. Skipped where the host has no systemd or dbus-daemon,
// unless oracles are required.
func StartSystemd(t testing.TB) *Systemd {
	t.Helper()
	RequireRoot(t)
	for _, p := range []string{"/lib/systemd/systemd", "/usr/bin/dbus-daemon"} {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("BERTH_ORACLES") == "required" {
				t.Fatalf("%s is missing (Debian's systemd and dbus)", p)
			}
			t.Skipf("%s is missing (Debian's systemd and dbus)", p)
		}
	}
	dir := t.TempDir()
	share := filepath.Dir(dir) // the test's temporary root: t.TempDir's later directories
	for _, d := range []string{"ov", "root"} {
		os.Mkdir(filepath.Join(dir, d), 0o755)
	}
	s := &Systemd{Cgroup: fmt.Sprintf("/bt-sd%d", os.Getpid()%100000)}
	// Its cgroup on every hierarchy, cpuset's filled in as its parent's.
	var procs []string
	var ents []os.DirEntry
	var fs syscall.Statfs_t
	if syscall.Statfs("/sys/fs/cgroup", &fs) == nil && fs.Type != unix.CGROUP2_SUPER_MAGIC {
		ents, _ = os.ReadDir("/sys/fs/cgroup") // the v1 hierarchies (and a hybrid's unified)
	}
	for _, e := range ents {
		h := filepath.Join("/sys/fs/cgroup", e.Name())
		if _, err := os.Stat(filepath.Join(h, "cgroup.procs")); err != nil {
			continue
		}
		d := filepath.Join(h, s.Cgroup)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if b, err := os.ReadFile(filepath.Join(h, f)); err == nil {
				os.WriteFile(filepath.Join(d, f), b, 0o644)
			}
		}
		procs = append(procs, filepath.Join(d, "cgroup.procs"))
	}
	if fs.Type == unix.CGROUP2_SUPER_MAGIC {
		d := filepath.Join("/sys/fs/cgroup", s.Cgroup)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, filepath.Join(d, "cgroup.procs"))
	}
	script := filepath.Join(dir, "boot.sh")
	os.WriteFile(script, []byte(systemdBoot), 0o755)
	// A shell joins the cgroups, then unshare makes the namespaces (the
	// cgroup namespace rooted there) and forks systemd's pid 1.
	join := "for f in " + strings.Join(procs, " ") + "; do echo $$ >$f; done; exec unshare --mount --pid --fork --kill-child --cgroup --uts --ipc --propagation private sh \"$0\" \"$1\" \"$2\""
	logf, _ := os.Create(filepath.Join(dir, "boot.log"))
	cmd := exec.Command("sh", "-c", join, script, dir, share)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // unshare: its child, pid 1 of the namespace, and all in it die
		cmd.Wait()
		logf.Close()
		for range 100 {
			left := false
			for _, d := range CgroupDirs(s.Cgroup) {
				if os.Remove(d) != nil {
					left = true
				}
			}
			if !left {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, d := range CgroupDirs(s.Cgroup) {
			t.Errorf("cgroup left: %s", d)
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("systemd's boot log:\n%s", Tail(string(b), 30))
		}
	})
	// systemd is unshare's child.
	for i := 0; s.Pid == 0; i++ {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid)); err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				if comm, _ := os.ReadFile("/proc/" + f[0] + "/comm"); strings.TrimSpace(string(comm)) == "systemd" {
					s.Pid, _ = strconv.Atoi(f[0])
				}
			}
		}
		if i == 200 {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("systemd did not start:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := 0; ; i++ {
		out, err := s.Command("busctl", "--system", "status", "org.freedesktop.systemd1").CombinedOutput()
		if err == nil {
			break
		} else if i == 200 {
			t.Fatalf("systemd's system bus did not answer: %v: %s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Guard: nothing but D-Bus runs there (see systemdBoot).
	out, err := s.Command("systemctl", "list-units", "--type=service,mount,swap", "--state=active,activating", "--no-legend", "--plain").Output()
	if err != nil || !strings.Contains(string(out), "dbus.service") {
		t.Fatalf("systemd's container: list its units: %v: %s", err, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) > 0 && !slices.Contains([]string{"dbus.service", "-.mount", "sys-kernel-tracing.mount", "sys-kernel-debug.mount", "sys-fs-fuse-connections.mount", "dev-mqueue.mount", "dev-hugepages.mount", "sys-kernel-config.mount"}, f[0]) &&
			!strings.HasPrefix(f[0], "tmp-") && !strings.HasPrefix(f[0], "run-") && !strings.HasPrefix(f[0], "dev-") && !strings.HasPrefix(f[0], "sys-") {
			t.Fatalf("systemd's container runs %s, which the test did not ask for:\n%s", f[0], out)
		}
	}
	return s
}

// Command runs name in every namespace of systemd's container.
func (s *Systemd) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"-t", strconv.Itoa(s.Pid), "-a", name}, args...)...)
}
