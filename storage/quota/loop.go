// The loop backend: the limited directory is a loop-mounted ext4 image
// whose free space is the limit, for hosts without project quotas or
// btrfs (this kind of machine: XFS and ext4 quota are compiled out of its
// kernel).
//
// The image is sparse (only what is written takes host space), without a
// journal or reserved blocks, and sized in two passes so that the free
// space of the mounted filesystem is the requested size within a block
// group's metadata: mkfs, measure, grow by what is missing, mkfs again.
// It lives beside the directory, as <parent>/disk.img.
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

type loopBackend struct{}

func (loopBackend) Name() string {
	return "loop-mounted ext4 image per writable layer or volume (no project quota or btrfs here)"
}

// loopImage returns the image of dir if it is a loop-limited directory.
func loopImage(dir string) string {
	img := filepath.Join(filepath.Dir(dir), "disk.img")
	if _, err := os.Stat(img); err != nil {
		return ""
	}
	return img
}

// Create makes dir the mount point of a new image with size bytes free.
func (loopBackend) Create(dir string, size int64) (err error) {
	if err := checkSize(dir, size); err != nil {
		return err
	}
	img := filepath.Join(filepath.Dir(dir), "disk.img")
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		return errdefs.New(errdefs.ErrUnavailable, "disk quotas need mkfs.ext4 (Debian's e2fsprogs)")
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = unmount(dir)
			os.Remove(img)
			os.Remove(dir)
		}
	}()
	// First guess: ext4 without a journal keeps ~97% of a small image.
	guess := size + size/32 + 1<<20
	for pass := 0; pass < 3; pass++ {
		if err := mkfs(img, guess); err != nil {
			return err
		}
		if err := mountImage(img, dir); err != nil {
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
		if err := unmount(dir); err != nil {
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

// mountImage loop-mounts img on dir unless something is mounted there
// already. The loop device is released when the mount goes (autoclear).
func mountImage(img, dir string) error {
	if mounted(dir) {
		return nil
	}
	out, err := exec.Command("mount", "-t", "ext4", "-o", "loop,nosuid,nodev", img, dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mount %s on %s: %v: %s", img, dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// removeLoop unmounts dir's image and deletes both.
func removeLoop(dir string) error {
	if err := unmount(dir); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(filepath.Dir(dir), "disk.img")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.RemoveAll(dir)
}

// unmount detaches dir's mount; nothing mounted is not an error.
func unmount(dir string) error {
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
