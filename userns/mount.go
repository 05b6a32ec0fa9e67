package userns

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Open returns a file descriptor of a new user namespace with mapping m,
// for idmapped mounts. No process stays in it: the namespace lives as
// long as the descriptor.
//
// A user namespace cannot be unshared by a multi-threaded process, so a
// child is made in one: the calling binary itself, started traced so that
// it stops at its first instruction and runs no code, and killed once its
// namespace is opened.
func Open(m Mapping) (*os.File, error) {
	uids, gids := m.Spec()
	return OpenSpec(uids, gids)
}

// OpenSpec is Open for OCI mappings, which may have several ranges.
func OpenSpec(uids, gids []specs.LinuxIDMapping) (*os.File, error) {
	// ptrace's tracer is a thread: the one that starts the child.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Args = []string{"berth-userns"}
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: sysMaps(uids),
		GidMappings: sysMaps(gids),
		Ptrace:      true,
		Pdeathsig:   syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("user namespace for uid map %s: %w", describe(uids), err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid))
	if err != nil {
		return nil, fmt.Errorf("user namespace for uid map %s: %w", describe(uids), err)
	}
	return f, nil
}

func sysMaps(ms []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(ms))
	for i, m := range ms {
		out[i] = syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)}
	}
	return out
}

// describe writes mappings as "0:100000:65536,…" (container:host:size).
func describe(ms []specs.LinuxIDMapping) string {
	var b []byte
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, "%d:%d:%d", m.ContainerID, m.HostID, m.Size)
	}
	return string(b)
}

// Clone returns a detached copy of the directory tree at path (its
// mounts included) whose ids are mapped through the user namespace ns:
// a file owned by uid N on disk shows as owned by N's host id in ns.
func Clone(path string, ns *os.File) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return nil, fmt.Errorf("idmapped mount of %s: open_tree: %w", path, err)
	}
	if err := Idmap(fd, ns, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("idmapped mount of %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// Idmap maps the ids of the detached tree fd (from open_tree) through
// the user namespace ns: its top mount only, or every mount in it if
// recursive.
func Idmap(fd int, ns *os.File, recursive bool) error {
	flags := unix.AT_EMPTY_PATH
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns.Fd())}
	if err := unix.MountSetattr(fd, "", uint(flags), &attr); err != nil {
		if err == unix.EINVAL {
			return fmt.Errorf("mount_setattr(MOUNT_ATTR_IDMAP): %w (its file system, or this kernel, cannot idmap it)", err)
		}
		return fmt.Errorf("mount_setattr(MOUNT_ATTR_IDMAP): %w", err)
	}
	return nil
}

// Attach mounts a detached tree (from Clone) on the directory dirfd
// (opened inside a root, so that no path is resolved again).
func Attach(tree *os.File, dirfd int) error {
	if err := unix.MoveMount(int(tree.Fd()), "", dirfd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount %s: move_mount: %w", tree.Name(), err)
	}
	return nil
}
