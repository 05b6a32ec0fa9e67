package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-project/berth/userns"
	"golang.org/x/sys/unix"
)

// ExeDir holds read-only bind mounts of runtime binaries, one per binary
// (named by device and inode), made on first use and reused by every later
// container.
//
// Why: a container's init (and every exec'd process) runs this binary until
// it execs the user's program. A process in the container that reaches the
// binary through /proc/<pid>/exe — by having the init exec a symlink to
// /proc/self/exe, say — could otherwise reopen it for writing once the
// runtime exits and replace the host's runtime (CVE-2019-5736). Exec'd from
// a read-only mount, the binary is reachable only through that mount, where
// opening it for writing fails with EROFS. Unlike a sealed copy per
// container, this costs a stat and a statfs on the create path.
const ExeDir = "/run/berth/exe"

// initBinary returns the path the init is exec'd from: this binary on a
// read-only bind mount in ExeDir, made if missing; for an unprivileged
// runtime, which cannot mount, a sealed copy in memory (done releases it
// once the init is exec'd).
func initBinary() (path string, done func(), err error) {
	if os.Geteuid() != 0 || userns.Nested() {
		return sealedCopy()
	}
	path, err = mountedBinary()
	return path, func() {}, err
}

// sealedCopy copies this binary into a memfd sealed against writes, as
// runc does: an init exec'd from it cannot be reopened for writing.
func sealedCopy() (string, func(), error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return "", nil, fmt.Errorf("the runtime binary: %w", err)
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("berth-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return "", nil, fmt.Errorf("sealed copy of the runtime binary: %w", err)
	}
	f := os.NewFile(uintptr(fd), "berth-runtime")
	if _, err := f.ReadFrom(src); err != nil {
		f.Close()
		return "", nil, fmt.Errorf("sealed copy of the runtime binary: %w", err)
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return "", nil, fmt.Errorf("seal the copy of the runtime binary: %w", err)
	}
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd), func() { f.Close() }, nil
}

// mountedBinary is this binary on a read-only bind mount in ExeDir.
func mountedBinary() (string, error) {
	var self unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &self); err != nil {
		return "", fmt.Errorf("stat the runtime binary: %w", err)
	}
	path := ExePath(self.Dev, self.Ino)
	if readOnlyCopyOf(path, &self) {
		return path, nil
	}
	if err := os.MkdirAll(ExeDir, 0o700); err != nil {
		return "", fmt.Errorf("%s: %w", ExeDir, err)
	}
	lock, err := os.Open(ExeDir)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", ExeDir, err)
	}
	if readOnlyCopyOf(path, &self) { // made while we waited
		return path, nil
	}
	// A stale mount (or file) of another binary at this name is replaced.
	_ = unix.Unmount(path, unix.MNT_DETACH)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o500)
	if err != nil {
		return "", fmt.Errorf("read-only runtime binary: %w", err)
	}
	f.Close()
	if err := unix.Mount("/proc/self/exe", path, "", unix.MS_BIND, ""); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("bind the runtime binary to %s: %w", path, err)
	}
	if err := unix.Mount("", path, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		_ = unix.Unmount(path, unix.MNT_DETACH)
		os.Remove(path)
		return "", fmt.Errorf("make %s read-only: %w", path, err)
	}
	pruneDeletedBinaries()
	return path, nil
}

// pruneDeletedBinaries removes the mounts of binaries that were replaced or
// removed (seen through the mount, a deleted file has no links), so that
// upgrades do not pile up mounts that pin old binaries. Called with ExeDir
// locked.
func pruneDeletedBinaries() {
	ents, err := os.ReadDir(ExeDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		p := filepath.Join(ExeDir, e.Name())
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil && st.Nlink == 0 {
			_ = unix.Unmount(p, unix.MNT_DETACH)
			_ = os.Remove(p)
		}
	}
}

// ExePath names the read-only mount for the binary with this device and
// inode.
func ExePath(dev, ino uint64) string {
	return filepath.Join(ExeDir, fmt.Sprintf("berth-runtime-%d-%d", dev, ino))
}

// readOnlyCopyOf reports whether path is the binary self on a read-only
// mount.
func readOnlyCopyOf(path string, self *unix.Stat_t) bool {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil || st.Dev != self.Dev || st.Ino != self.Ino {
		return false
	}
	var fs unix.Statfs_t
	return unix.Statfs(path, &fs) == nil && fs.Flags&unix.ST_RDONLY != 0
}

// RemoveExeMount unmounts and removes the read-only mount of the binary at
// bin, if there is one (for tests and uninstallers; containers being
// created from it at that moment fail to start).
func RemoveExeMount(bin string) error {
	var st unix.Stat_t
	if err := unix.Stat(bin, &st); err != nil {
		return err
	}
	path := ExePath(st.Dev, st.Ino)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
