// Package quota limits the disk space of a directory on hosts without
// project quotas (this kind of machine: XFS and ext4 quota are compiled
// out of its kernel): the directory is a loop-mounted ext4 image whose free
// space is the limit. A write past it fails with ENOSPC inside the image;
// nothing outside is affected.
//
// The image is sparse (only what is written takes host space), without a
// journal or reserved blocks, and sized in two passes so that the free
// space of the mounted filesystem is the requested size within a block
// group's metadata: mkfs, measure, grow by what is missing, mkfs again.
package quota

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/berth-project/berth/errdefs"
	"golang.org/x/sys/unix"
)

// Backend names the mechanism, for `info`.
const Backend = "loop-mounted ext4 image per writable layer or volume (no project quota on this host)"

// MinSize is the smallest limit accepted: below it ext4's own metadata
// dominates.
const MinSize = 4 << 20

// Create makes the image file img whose filesystem has size bytes free,
// and mounts it on dir (made if missing). On error nothing is left.
func Create(img, dir string, size int64) (err error) {
	if size < MinSize {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("size %d bytes is below the smallest quota, %d bytes", size, int64(MinSize)))
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		return errdefs.New(errdefs.ErrUnavailable, "disk quotas need mkfs.ext4 (Debian's e2fsprogs)")
	}
	defer func() {
		if err != nil {
			_ = Unmount(dir)
			os.Remove(img)
		}
	}()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// First guess: ext4 without a journal keeps ~97% of a small image.
	guess := size + size/32 + 1<<20
	for pass := 0; pass < 3; pass++ {
		if err := mkfs(img, guess); err != nil {
			return err
		}
		if err := Mount(img, dir); err != nil {
			return err
		}
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return err
		}
		free := int64(st.Bavail) * st.Bsize
		missing := size - free
		if max(missing, -missing) <= size/200+int64(st.Bsize) {
			// An empty directory for its user (a volume is copied into
			// only when empty); fsck would make it again if needed.
			return os.Remove(filepath.Join(dir, "lost+found"))
		}
		if err := Unmount(dir); err != nil {
			return err
		}
		guess += missing
	}
	return fmt.Errorf("quota: could not size an image to %d bytes free", size)
}

func mkfs(img string, size int64) error {
	f, err := os.OpenFile(img, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	f.Close()
	if err != nil {
		return err
	}
	// -N: few inodes (a writable layer or a volume rarely needs many, and
	// each costs space); 1 per 16 KiB is ext4's default ratio for small
	// filesystems, kept, so that a layer of small files does not run out of
	// inodes before bytes.
	out, err := exec.Command("mkfs.ext4", "-q", "-F", "-b", "4096", "-m", "0", "-i", "16384",
		"-O", "^has_journal,^resize_inode", "-E", "root_owner=0:0,lazy_itable_init=0", img).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mkfs.ext4 %s: %v: %s", img, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Mount loop-mounts img on dir unless something is mounted there already.
// The loop device is released when the mount goes (autoclear).
func Mount(img, dir string) error {
	if mounted(dir) {
		return nil
	}
	out, err := exec.Command("mount", "-t", "ext4", "-o", "loop,nosuid,nodev", img, dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mount %s on %s: %v: %s", img, dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Unmount detaches dir's mount; nothing mounted is not an error.
func Unmount(dir string) error {
	err := unix.Unmount(dir, 0)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(dir, unix.MNT_DETACH)
	}
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// mounted reports whether dir is a mount point (its device differs from
// its parent's).
func mounted(dir string) bool {
	var a, b unix.Stat_t
	if unix.Stat(dir, &a) != nil || unix.Stat(filepath.Dir(dir), &b) != nil {
		return false
	}
	return a.Dev != b.Dev
}
