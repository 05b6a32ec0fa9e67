package rootfs

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Paths inside the root file system are resolved by the kernel with
// openat2(RESOLVE_IN_ROOT): ".." and absolute symlinks stop at the root, so
// no symlink planted in an image can send a mount or a device node outside
// it. Mounts then target the resolved file through /proc/self/fd/N.

// OpenInRoot resolves path inside the directory open at rootfd and returns
// an O_PATH descriptor for it.
func OpenInRoot(rootfd int, path string) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	rel := strings.TrimPrefix(filepath.Clean("/"+path), "/")
	if rel == "" {
		rel = "." // the root itself
	}
	for {
		fd, err := unix.Openat2(rootfd, rel, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// MkdirAllIn creates the directory path and its parents inside rootfd, each
// component resolved in the root, and returns an O_PATH descriptor for it.
// A dangling symlink on the way has its target created, inside the root.
func MkdirAllIn(rootfd int, path string, mode uint32) (int, error) {
	return mkdirAllIn(rootfd, path, mode, 0)
}

// maxLinkDepth bounds the symlinks followed while creating, as the kernel's
// own limit on nested links.
const maxLinkDepth = 40

func mkdirAllIn(rootfd int, path string, mode uint32, depth int) (int, error) {
	clean := strings.TrimPrefix(filepath.Clean("/"+path), "/")
	cur, err := unix.Dup(rootfd)
	if err != nil {
		return -1, err
	}
	if clean == "" {
		return cur, nil
	}
	parts := strings.Split(clean, "/")
	for i := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		fd, err := OpenInRoot(rootfd, prefix)
		if errors.Is(err, unix.ENOENT) {
			err = unix.Mkdirat(cur, parts[i], mode)
			if errors.Is(err, unix.EEXIST) {
				err = createLinkTarget(rootfd, cur, "/"+strings.Join(parts[:i], "/"), parts[i], mode, depth)
			}
			if err != nil {
				unix.Close(cur)
				return -1, fmt.Errorf("mkdir %s: %w", "/"+prefix, err)
			}
			fd, err = OpenInRoot(rootfd, prefix)
		}
		unix.Close(cur)
		if err != nil {
			return -1, fmt.Errorf("resolve %s in rootfs: %w", "/"+prefix, err)
		}
		cur = fd
	}
	var st unix.Stat_t
	if err := unix.Fstat(cur, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		unix.Close(cur)
		return -1, fmt.Errorf("%s in rootfs is not a directory", "/"+clean)
	}
	return cur, nil
}

// createLinkTarget handles a name that exists in dirfd (at in-root path
// parent) yet does not resolve: if it is a symlink, its target is created as
// a directory, resolved in the root like any other path.
func createLinkTarget(rootfd, dirfd int, parent, name string, mode uint32, depth int) error {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return unix.EEXIST
	}
	if depth >= maxLinkDepth {
		return unix.ELOOP
	}
	target := string(buf[:n])
	if !filepath.IsAbs(target) {
		target = filepath.Join(parent, target)
	}
	fd, err := mkdirAllIn(rootfd, target, mode, depth+1)
	if err != nil {
		return err
	}
	unix.Close(fd)
	return nil
}

// CreateFileIn makes sure path exists inside rootfd as a file of any kind
// (creating an empty regular file and parent directories if needed) and
// returns an O_PATH descriptor for it.
func CreateFileIn(rootfd int, path string) (int, error) {
	if fd, err := OpenInRoot(rootfd, path); err == nil {
		return fd, nil
	}
	clean := filepath.Clean("/" + path)
	dir, err := MkdirAllIn(rootfd, filepath.Dir(clean), 0o755)
	if err != nil {
		return -1, err
	}
	defer unix.Close(dir)
	f, err := unix.Openat(dir, filepath.Base(clean), unix.O_CREAT|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, fmt.Errorf("create %s in rootfs: %w", clean, err)
	}
	if err == nil {
		unix.Close(f)
	}
	return OpenInRoot(rootfd, clean)
}

// ProcFd names fd by its /proc/self/fd link, usable as a mount target.
func ProcFd(fd int) string { return fmt.Sprintf("/proc/self/fd/%d", fd) }
