// Package rootfs builds a container's root file system inside its new mount
// namespace: propagation, the config's mounts, device nodes and /dev links,
// pivot_root, then read-only and masked paths.
//
// Preconditions: the caller runs in the container's own mount namespace (and
// user namespace, if any), as init, before pivot_root; host paths still
// resolve. Every destination is resolved inside the rootfs (see inroot.go).
package rootfs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/internal/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Config says how to build one root file system.
type Config struct {
	Spec        *specs.Spec
	Rootfs      string            // absolute host path of root.path
	UserNS      bool              // the container has its own user namespace
	CgroupNS    bool              // the container has its own cgroup namespace
	CgroupPaths map[string]string // see syncpipe.Init.CgroupPaths
	MountFds    map[int]int       // see syncpipe.Init.MountFds
}

// Prepare sets propagation, makes the rootfs a mount point and performs every
// mount, device node and /dev link, up to (not including) pivot_root.
func Prepare(c *Config) error {
	if err := checkRootfs(c); err != nil {
		return err
	}
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if p := c.Spec.Linux.RootfsPropagation; p != "" {
		var err error
		// (r)shared keeps "/" a peer of the host's mounts, as runc does:
		// a shared bind from the host then stays a peer too, and what the
		// container mounts under it reaches the host (Kubernetes'
		// Bidirectional propagation). The rootfs itself is bound below a
		// private parent, so the container's own mounts do not leak.
		if prop, err = PropagationFlag(p); err != nil {
			return err
		}
	}
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("set propagation of / : %w", err)
	}
	if err := makeParentPrivate(c.Rootfs); err != nil {
		return err
	}
	if err := unix.Mount(c.Rootfs, c.Rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs %s onto itself: %w", c.Rootfs, err)
	}
	rootfd, err := unix.Open(c.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs %s: %w", c.Rootfs, err)
	}
	defer unix.Close(rootfd)

	bindDev := false
	var devRO uintptr // a read-only /dev: its flags, for a remount once all under it is made
	for i, m := range c.Spec.Mounts {
		if filepath.Clean(m.Destination) == "/dev" && !isBind(m) {
			if o, err := ParseOptions(m.Options); err == nil && o.Flags&unix.MS_RDONLY != 0 {
				// Mounted writable first, as runc does: /dev/pts, /dev/shm
				// and the device nodes need their mount points.
				devRO = o.Flags & (unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_STRICTATIME | unix.MS_RELATIME)
				m.Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "ro" })
			}
		}
		if err := mountOne(c, rootfd, m, c.MountFds[i]); err != nil {
			return fmt.Errorf("mounts[%d] (%s on %s): %w", i, m.Type, m.Destination, err)
		}
		if filepath.Clean(m.Destination) == "/dev" && isBind(m) {
			bindDev = true
		}
	}
	if !bindDev {
		if err := createDevices(c, rootfd); err != nil {
			return err
		}
		if err := devSymlinks(rootfd); err != nil {
			return err
		}
	}
	if devRO != 0 {
		if err := remountIn(rootfd, "/dev", devRO); err != nil {
			return fmt.Errorf("make /dev read-only: %w", err)
		}
	}
	if c.Spec.Process != nil && c.Spec.Process.Cwd != "" {
		cwd := c.Spec.Process.Cwd
		fd, err := MkdirAllIn(rootfd, cwd, 0o755)
		if err != nil {
			return fmt.Errorf("process.cwd %s: %w", cwd, err)
		}
		unix.Close(fd)
	}
	return nil
}

// makeParentPrivate makes the mount holding rootfs private, which pivot_root
// requires, in this (private) mount namespace only.
// procMountsAllowed are the files under /proc a mount may cover, as runc
// allows them: those lxcfs emulates. Any other mount at or under /proc
// (but a proc file system on /proc) would hide what the runtime writes
// through /proc after the mounts — sysctls, oom_score_adj, the masked
// and read-only paths (CVE-2019-16884).
var procMountsAllowed = []string{"/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
	"/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev", "/proc/sys/kernel/ns_last_pid",
	"/proc/pressure/cpu", "/proc/pressure/io", "/proc/pressure/memory"}

// checkRootfs refuses, before anything is mounted, a root file system
// whose /proc or /sys is not a directory (a symlink would send their
// mounts elsewhere: CVE-2019-19921, CVE-2023-27561) and a mount over
// /proc or inside it.
func checkRootfs(c *Config) error {
	for _, d := range []string{"proc", "sys"} {
		fi, err := os.Lstat(filepath.Join(c.Rootfs, d))
		if err == nil && !fi.IsDir() {
			return fmt.Errorf("root file system: /%s is a %s, not a directory: refused (a symlink there would redirect its mounts)", d, fileKind(fi.Mode()))
		}
	}
	for i, m := range c.Spec.Mounts {
		dst := filepath.Clean("/" + m.Destination)
		switch {
		case dst == "/proc":
			if m.Type != "proc" && !(isBind(m) && m.Source == "/proc") {
				return fmt.Errorf("mounts[%d]: %q cannot be mounted because it is not of type proc", i, m.Destination)
			}
		case strings.HasPrefix(dst, "/proc/") && !slices.Contains(procMountsAllowed, dst):
			return fmt.Errorf("mounts[%d]: %q cannot be mounted because it is inside /proc", i, m.Destination)
		}
	}
	return nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m&os.ModeSymlink != 0:
		return "symlink"
	case m.IsRegular():
		return "regular file"
	}
	return "special file"
}

func makeParentPrivate(rootfs string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	best := "/"
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		mp := mountinfo.Unescape(fields[4])
		if (rootfs == mp || strings.HasPrefix(rootfs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	if err := unix.Mount("", best, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", best, err)
	}
	return nil
}

func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// mountOne makes mount m; srcfd, if non-zero, is a detached clone of a
// bind mount's source (see Config.MountFds), moved into place instead of
// binding the source by path.
func mountOne(c *Config, rootfd int, m specs.Mount, srcfd int) error {
	opts, err := ParseOptions(m.Options)
	if err != nil {
		return err
	}
	if m.Type == "cgroup" || m.Type == "cgroup2" {
		return mountCgroup(c, rootfd, m, opts)
	}
	if opts.IDMap != NoIDMap && srcfd == 0 {
		return fmt.Errorf("idmapped bind of %s: the runtime opened no idmapped source for it", m.Source)
	}
	bind := isBind(m)
	src := m.Source
	if bind && !filepath.IsAbs(src) {
		// Relative bind sources are relative to the bundle (the cwd).
		src, _ = filepath.Abs(src)
	}
	dest := m.Destination
	var fd int
	if bind {
		var st unix.Stat_t
		var err error
		if srcfd != 0 {
			err = unix.Fstat(srcfd, &st)
		} else {
			err = unix.Stat(src, &st)
		}
		if err != nil {
			return fmt.Errorf("bind source: stat %s: %w", src, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			fd, err = MkdirAllIn(rootfd, dest, 0o755)
		} else {
			fd, err = CreateFileIn(rootfd, dest)
		}
		if err != nil {
			return err
		}
	} else {
		if fd, err = MkdirAllIn(rootfd, dest, 0o755); err != nil {
			return err
		}
	}
	defer unix.Close(fd)

	if bind {
		if srcfd != 0 {
			if err := unix.MoveMount(srcfd, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
				return fmt.Errorf("bind %s (opened on the host): %w", src, err)
			}
			unix.Close(srcfd)
		} else if err := unix.Mount(src, ProcFd(fd), "", opts.Flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
			return fmt.Errorf("bind %s: %w", src, err)
		}
		if rest := opts.Flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); rest != 0 {
			if err := remountIn(rootfd, dest, rest); err != nil {
				return err
			}
		}
	} else {
		err := unix.Mount(src, ProcFd(fd), m.Type, opts.Flags, opts.Data)
		if err != nil && c.UserNS && errors.Is(err, unix.EPERM) && (m.Type == "sysfs" || m.Type == "mqueue") {
			// A user namespace may not mount sysfs without owning the
			// network namespace, nor mqueue without the IPC one: bind the
			// host's instead, read-only where asked.
			host := map[string]string{"sysfs": "/sys", "mqueue": "/dev/mqueue"}[m.Type]
			err = unix.Mount(host, ProcFd(fd), "", unix.MS_BIND|unix.MS_REC, "")
			if err == nil && opts.Flags&unix.MS_RDONLY != 0 {
				err = remountIn(rootfd, dest, unix.MS_RDONLY|opts.Flags&(unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC))
			}
		}
		if err != nil {
			return err
		}
	}
	return applyPropagationIn(rootfd, dest, opts)
}

// remountIn changes the flags of the bind mount at dest, keeping the flags a
// user namespace may not clear (the "locked" ones) if the plain remount is
// refused.
func remountIn(rootfd int, dest string, flags uintptr) error {
	fd, err := OpenInRoot(rootfd, dest)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return remount(ProcFd(fd), flags)
}

func remount(target string, flags uintptr) error {
	err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|flags, "")
	if errors.Is(err, unix.EPERM) {
		var st unix.Statfs_t
		if unix.Statfs(target, &st) == nil {
			err = unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|flags|lockedFlags(st.Flags), "")
		}
	}
	if err != nil {
		return fmt.Errorf("remount with flags %#x: %w", flags, err)
	}
	return nil
}

// lockedFlags maps statfs ST_* flags to the MS_* flags that must be kept.
func lockedFlags(f int64) uintptr {
	var out uintptr
	for st, ms := range map[int64]uintptr{
		unix.ST_RDONLY: unix.MS_RDONLY, unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV,
		unix.ST_NOEXEC: unix.MS_NOEXEC, unix.ST_NOATIME: unix.MS_NOATIME, unix.ST_NODIRATIME: unix.MS_NODIRATIME,
		unix.ST_RELATIME: unix.MS_RELATIME,
	} {
		if f&st != 0 {
			out |= ms
		}
	}
	return out
}

func applyPropagationIn(rootfd int, dest string, opts MountOptions) error {
	if len(opts.Propagation) == 0 && opts.SetAttr == 0 && opts.ClearAttr == 0 {
		return nil
	}
	fd, err := OpenInRoot(rootfd, dest)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for _, p := range opts.Propagation {
		if err := unix.Mount("", ProcFd(fd), "", p, ""); err != nil {
			return fmt.Errorf("set propagation %#x: %w", p, err)
		}
	}
	if opts.SetAttr != 0 || opts.ClearAttr != 0 {
		attr := &unix.MountAttr{Attr_set: opts.SetAttr, Attr_clr: opts.ClearAttr}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
			return fmt.Errorf("set recursive mount attributes: %w", err)
		}
	}
	return nil
}

// mountCgroup mounts the container's view of the cgroup file systems.
func mountCgroup(c *Config, rootfd int, m specs.Mount, opts MountOptions) error {
	ro := opts.Flags&unix.MS_RDONLY != 0
	flags := opts.Flags &^ unix.MS_RDONLY
	if v2, ok := c.CgroupPaths[""]; ok && len(c.CgroupPaths) == 1 {
		// Unified host: one cgroup2 file system.
		fd, err := MkdirAllIn(rootfd, m.Destination, 0o755)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if c.CgroupNS {
			err = unix.Mount("cgroup2", ProcFd(fd), "cgroup2", opts.Flags, "")
		} else if err = unix.Mount(v2, ProcFd(fd), "", unix.MS_BIND, ""); err == nil && ro {
			err = remountIn(rootfd, m.Destination, unix.MS_RDONLY|flags)
		}
		return err
	}
	// v1 or hybrid: a tmpfs holding one directory per hierarchy.
	fd, err := MkdirAllIn(rootfd, m.Destination, 0o755)
	if err != nil {
		return err
	}
	err = unix.Mount("tmpfs", ProcFd(fd), "tmpfs", flags, "mode=755")
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("tmpfs for cgroups: %w", err)
	}
	// Group controllers by the hierarchy directory they live in.
	type hier struct {
		name  string
		ctrls []string
		dir   string
	}
	byName := map[string]*hier{}
	for ctrl, dir := range c.CgroupPaths {
		rel := strings.TrimPrefix(dir, "/sys/fs/cgroup/")
		name := strings.SplitN(rel, "/", 2)[0]
		h := byName[name]
		if h == nil {
			h = &hier{name: name, dir: dir}
			byName[name] = h
		}
		if ctrl != "" {
			h.ctrls = append(h.ctrls, ctrl)
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		h := byName[n]
		dest := filepath.Join(m.Destination, h.name)
		hfd, err := MkdirAllIn(rootfd, dest, 0o755)
		if err != nil {
			return err
		}
		switch {
		case c.CgroupNS && n == "unified":
			err = unix.Mount("cgroup2", ProcFd(hfd), "cgroup2", flags|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
		case c.CgroupNS:
			sort.Strings(h.ctrls)
			data := strings.Join(h.ctrls, ",")
			if strings.HasPrefix(data, "name=") {
				data = "none," + data
			}
			err = unix.Mount("cgroup", ProcFd(hfd), "cgroup", flags|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, data)
		default:
			err = unix.Mount(h.dir, ProcFd(hfd), "", unix.MS_BIND, "")
		}
		unix.Close(hfd)
		if err != nil {
			return fmt.Errorf("cgroup hierarchy %s: %w", n, err)
		}
		if ro {
			if err := remountIn(rootfd, dest, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC); err != nil {
				return err
			}
		}
		// cpu,cpuacct style names get one link per controller.
		if strings.Contains(n, ",") {
			dir, err := OpenInRoot(rootfd, m.Destination)
			if err != nil {
				return err
			}
			for _, part := range strings.Split(n, ",") {
				if err := unix.Symlinkat(n, dir, part); err != nil && !errors.Is(err, unix.EEXIST) {
					unix.Close(dir)
					return fmt.Errorf("cgroup link %s: %w", part, err)
				}
			}
			unix.Close(dir)
		}
	}
	if ro {
		return remountIn(rootfd, m.Destination, unix.MS_RDONLY|flags)
	}
	return nil
}

// defaultDevices are the nodes every container gets (runtime-spec "Default
// Devices"); /dev/ptmx and /dev/console are handled separately.
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

// DefaultDevices returns the device nodes every container gets.
func DefaultDevices() []specs.LinuxDevice { return append([]specs.LinuxDevice(nil), defaultDevices...) }

func createDevices(c *Config, rootfd int) error {
	devs := append(DefaultDevices(), c.Spec.Linux.Devices...)
	for _, d := range devs {
		if err := createDevice(c, rootfd, d); err != nil {
			return fmt.Errorf("linux.devices %s: %w", d.Path, err)
		}
	}
	return nil
}

func createDevice(c *Config, rootfd int, d specs.LinuxDevice) error {
	var typ uint32
	switch d.Type {
	case "c", "u":
		typ = unix.S_IFCHR
	case "b":
		typ = unix.S_IFBLK
	case "p":
		typ = unix.S_IFIFO
	default:
		return fmt.Errorf("type %q must be c, b, u or p: %w", d.Type, errdefs.ErrInvalid)
	}
	if !filepath.IsAbs(d.Path) || !strings.HasPrefix(filepath.Clean(d.Path), "/dev/") {
		return fmt.Errorf("path must be absolute and under /dev: %w", errdefs.ErrInvalid)
	}
	mode := uint32(0o666)
	if d.FileMode != nil {
		mode = uint32(*d.FileMode) & 0o7777
	}
	dir, err := MkdirAllIn(rootfd, filepath.Dir(d.Path), 0o755)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	name := filepath.Base(d.Path)
	_ = unix.Unlinkat(dir, name, 0)
	if c.UserNS {
		// A user namespace cannot mknod: bind the host's node instead.
		f, err := unix.Openat(dir, name, unix.O_CREAT|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return err
		}
		unix.Close(f)
		fd, err := OpenInRoot(rootfd, d.Path)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Mount(d.Path, ProcFd(fd), "", unix.MS_BIND, "")
	}
	if err := unix.Mknodat(dir, name, typ|mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
		return err
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Fchownat(dir, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	return unix.Fchmodat(dir, name, mode, 0)
}

func devSymlinks(rootfd int) error {
	dev, err := MkdirAllIn(rootfd, "/dev", 0o755)
	if err != nil {
		return err
	}
	defer unix.Close(dev)
	links := [][2]string{
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "core"})
	}
	for _, l := range links {
		if err := unix.Symlinkat(l[0], dev, l[1]); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink /dev/%s: %w", l[1], err)
		}
	}
	// /dev/ptmx must point into the container's own devpts instance.
	if pts, err := OpenInRoot(rootfd, "/dev/pts/ptmx"); err == nil {
		unix.Close(pts)
		_ = unix.Unlinkat(dev, "ptmx", 0)
		if err := unix.Symlinkat("pts/ptmx", dev, "ptmx"); err != nil {
			return fmt.Errorf("symlink /dev/ptmx: %w", err)
		}
	}
	return nil
}

// PivotRoot makes rootfs the root of the mount namespace and detaches the
// old root. With noPivot it moves rootfs over / and chroots instead (for
// roots on ramfs, where pivot_root fails; weaker isolation).
func PivotRoot(rootfs string, noPivot bool) error {
	if noPivot {
		if err := unix.Chdir(rootfs); err != nil {
			return err
		}
		if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move rootfs to /: %w", err)
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
		return unix.Chdir("/")
	}
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root to %s: %w", rootfs, err)
	}
	// The old root is now stacked under the new one at "."; detach it
	// without letting the unmount propagate to the host.
	if err := unix.Fchdir(oldroot); err != nil {
		return err
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root a slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

// Finalize runs after pivot_root: root propagation, masked paths, read-only
// paths, and a read-only root.
func Finalize(s *specs.Spec) error {
	if p := s.Linux.RootfsPropagation; p != "" {
		flag, err := PropagationFlag(p)
		if err != nil {
			return err
		}
		if err := unix.Mount("", "/", "", flag, ""); err != nil {
			return fmt.Errorf("linux.rootfsPropagation %s: %w", p, err)
		}
	}
	for _, p := range s.Linux.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return fmt.Errorf("linux.readonlyPaths %s: %w", p, err)
		}
	}
	for _, p := range s.Linux.MaskedPaths {
		if err := maskPath(p); err != nil {
			return fmt.Errorf("linux.maskedPaths %s: %w", p, err)
		}
	}
	if s.Root.Readonly {
		if err := remount("/", unix.MS_RDONLY); err != nil {
			return fmt.Errorf("root.readonly: %w", err)
		}
	}
	return nil
}

func readonlyPath(p string) error {
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	return remount(p, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
}

func maskPath(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if st.IsDir() {
		return unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "")
	}
	return unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
}
