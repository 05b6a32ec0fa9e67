package userns

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"

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
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(m.UID.Start), Size: int(m.UID.Size)}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(m.GID.Start), Size: int(m.GID.Size)}},
		Ptrace:      true,
		Pdeathsig:   syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("user namespace for uids %d-%d: %w", m.UID.Start, m.UID.End()-1, err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid))
	if err != nil {
		return nil, fmt.Errorf("user namespace for uids %d-%d: %w", m.UID.Start, m.UID.End()-1, err)
	}
	return f, nil
}

// Clone returns a detached copy of the directory tree at path (its
// mounts included) whose ids are mapped through the user namespace ns:
// a file owned by uid N on disk shows as owned by N's host id in ns.
func Clone(path string, ns *os.File) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return nil, fmt.Errorf("idmapped mount of %s: open_tree: %w", path, err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns.Fd())}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("idmapped mount of %s: mount_setattr: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// Attach mounts a detached tree (from Clone) on target.
func Attach(tree *os.File, target string) error {
	if err := unix.MoveMount(int(tree.Fd()), "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount on %s: move_mount: %w", target, err)
	}
	return nil
}
