package network

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"golang.org/x/sys/unix"
)

// newNetns creates a network namespace and pins it at path (an empty file
// bind-mounted with the namespace), so that it outlives every process:
// the runtime joins it by path. The namespace is made on a thread of its
// own that is never unlocked, so the Go runtime discards that thread and
// no goroutine runs in the new namespace by accident.
func newNetns(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare the network namespace: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("pin the network namespace at %s: %w", path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// PinNetns makes a network namespace pinned at path, loopback up: a CRI
// pod's, which CNI plugins set up while its sandbox starts.
func PinNetns(path string) error {
	if err := newNetns(path); err != nil {
		return err
	}
	if err := LoopbackUp(path); err != nil {
		removeNetns(path)
		return err
	}
	return nil
}

// UnpinNetns is removeNetns for PinNetns's namespaces.
func UnpinNetns(path string) error { return removeNetns(path) }

// removeNetns unpins the namespace at path; the kernel destroys it, and
// the interfaces in it, once no process is left inside. A missing path is
// not an error.
func removeNetns(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// handleIn opens the network namespace at path and a netlink handle
// working in it; done releases both.
func handleIn(path string) (ns netns.NsHandle, h *netlink.Handle, done func(), err error) {
	ns, err = netns.GetFromPath(path)
	if err != nil {
		return 0, nil, nil, err
	}
	h, err = netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return 0, nil, nil, err
	}
	return ns, h, func() { h.Close(); ns.Close() }, nil
}

// RunIn runs f on a thread that has joined the network namespace at
// nsPath. The thread is never unlocked, so the Go runtime discards it
// afterwards and no other goroutine runs in that namespace by accident;
// sockets f opens stay in it.
func RunIn(nsPath string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("join the network namespace %s: %w", nsPath, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// LoopbackUp sets the loopback interface of the network namespace at
// nsPath up, as a container with no network (--network none) has it.
func LoopbackUp(nsPath string) error {
	_, h, done, err := handleIn(nsPath)
	if err != nil {
		return err
	}
	defer done()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	return h.LinkSetUp(lo)
}
