// Package quota limits the disk space of a directory, with the best
// mechanism the filesystem under it offers, chosen once by Detect:
//
//   - project quotas (XFS mounted with pquota, ext4 with prjquota): the
//     directory gets a project ID, inherited by everything made in it, and
//     the project a block limit (project.go);
//   - btrfs: the directory is a subvolume whose qgroup has a limit on the
//     bytes it references (btrfs.go);
//   - anywhere else, a loop-mounted ext4 image whose free space is the
//     limit (loop.go).
//
// A write past the limit fails inside (EDQUOT or ENOSPC); nothing outside
// is affected. A limited directory tells by itself how it was made, so
// Ready and Remove handle it whatever backend Detect chooses today.
package quota

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/berth-project/berth/errdefs"
	"golang.org/x/sys/unix"
)

// MinSize is the smallest limit accepted: below it a filesystem's own
// metadata dominates.
const MinSize = 4 << 20

// A Backend limits directories on one filesystem.
type Backend interface {
	// Name says which mechanism it is, for `info`.
	Name() string
	// Create makes dir, which must not exist (its parent must, and belongs
	// to dir's owner: the loop backend keeps its image there), holding at
	// most size bytes. On error nothing is left.
	Create(dir string, size int64) error
}

// Detect returns the backend for directories under root, an existing
// directory: project quota if its filesystem enforces them, btrfs qgroups
// on btrfs, else loop images.
func Detect(root string) Backend {
	if p, ok := detectProject(root); ok {
		return p
	}
	if isBtrfs(root) {
		return btrfsBackend{}
	}
	return loopBackend{}
}

// Ready makes a limited directory usable after a reboot: a loop image is
// mounted again. Other directories need nothing.
func Ready(dir string) error {
	if img := loopImage(dir); img != "" {
		return mountImage(img, dir)
	}
	return nil
}

// Remove deletes dir with everything in it and releases its limit, for a
// directory of any backend or none. A missing dir is not an error.
func Remove(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var err error
	switch {
	case loopImage(dir) != "":
		err = removeLoop(dir)
	case isSubvolume(dir):
		err = removeSubvolume(dir)
	default:
		err = removeProject(dir)
	}
	if err != nil {
		return fmt.Errorf("remove the limited directory %s: %w", dir, err)
	}
	return nil
}

// checkSize refuses a limit below MinSize, or above the size of the
// filesystem dir would be made on: no backend can honour that, and a loop
// image that large would cost its inode tables for nothing.
func checkSize(dir string, size int64) error {
	if size < MinSize {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("size %d bytes is below the smallest quota, %d bytes", size, int64(MinSize)))
	}
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(dir), &st); err != nil {
		return err
	}
	if fsSize := int64(st.Blocks) * st.Bsize; size > fsSize {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("size %d bytes is larger than the filesystem that would hold it (%d bytes)", size, fsSize))
	}
	return nil
}
