package quota

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The btrfs backend: a limited directory is a subvolume, and its qgroup
// (0/<subvolume id>, made by the kernel with the subvolume once quotas are
// on) limits the bytes the subvolume references. Quotas are switched on for
// the filesystem the first time a limit is set, as Docker's btrfs driver
// does.

// ioctls of <linux/btrfs.h> (checked against the header).
const (
	btrfsIocSubvolCreate = 0x5000940e
	btrfsIocSnapDestroy  = 0x5000940f
	btrfsIocQuotaCtl     = 0xc0109428
	btrfsIocQgroupLimit  = 0x8030942b
	btrfsIocQgroupCreate = 0x4010942a
	btrfsIocInoLookup    = 0xd0009412

	btrfsQuotaCtlEnable   = 1
	btrfsQgroupLimitMaxRf = 1 << 0 // BTRFS_QGROUP_LIMIT_MAX_RFER
	btrfsFirstFreeObjID   = 256    // a subvolume's root directory inode
)

type btrfsVolArgs struct {
	Fd   int64
	Name [4088]byte
}

type btrfsQgroupLimitArgs struct {
	QgroupID uint64
	Flags    uint64
	MaxRfer  uint64
	MaxExcl  uint64
	RsvRfer  uint64
	RsvExcl  uint64
}

type btrfsInoLookupArgs struct {
	TreeID   uint64
	ObjectID uint64
	Name     [4080]byte
}

func isBtrfs(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.BTRFS_SUPER_MAGIC
}

// isSubvolume reports whether dir is the root of a btrfs subvolume.
func isSubvolume(dir string) bool {
	var st unix.Stat_t
	return isBtrfs(dir) && unix.Lstat(dir, &st) == nil && st.Ino == btrfsFirstFreeObjID && st.Mode&unix.S_IFMT == unix.S_IFDIR
}

type btrfsBackend struct{}

func (btrfsBackend) Name() string { return "btrfs subvolume with a qgroup limit" }

func volArgs(name string) (*btrfsVolArgs, error) {
	a := &btrfsVolArgs{}
	if len(name) >= len(a.Name) {
		return nil, fmt.Errorf("subvolume name %q is too long", name)
	}
	copy(a.Name[:], name)
	return a, nil
}

// Create makes dir a subvolume limited to size referenced bytes.
func (btrfsBackend) Create(dir string, size int64) (err error) {
	if err := checkSize(dir, size); err != nil {
		return err
	}
	args, err := volArgs(filepath.Base(dir))
	if err != nil {
		return err
	}
	err = withDir(filepath.Dir(dir), func(fd int) error {
		if err := ioctlPtr(fd, btrfsIocSubvolCreate, unsafe.Pointer(args)); err != nil {
			return fmt.Errorf("create the subvolume %s: %w", dir, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = removeSubvolume(dir)
		}
	}()
	return withDir(dir, func(fd int) error {
		ctl := struct{ Cmd, Status uint64 }{Cmd: btrfsQuotaCtlEnable}
		if err := ioctlPtr(fd, btrfsIocQuotaCtl, unsafe.Pointer(&ctl)); err != nil {
			return fmt.Errorf("enable btrfs quotas for %s: %w", dir, err)
		}
		// qgroupid 0: the subvolume the descriptor is in.
		lim := btrfsQgroupLimitArgs{Flags: btrfsQgroupLimitMaxRf, MaxRfer: uint64(size)}
		if err := ioctlPtr(fd, btrfsIocQgroupLimit, unsafe.Pointer(&lim)); err != nil {
			return fmt.Errorf("limit the qgroup of %s: %w", dir, err)
		}
		return nil
	})
}

// removeSubvolume deletes the subvolume dir with its content, then its
// qgroup (best effort: the kernel may still be dropping the subvolume,
// and newer kernels remove the qgroup themselves).
func removeSubvolume(dir string) error {
	var id uint64
	_ = withDir(dir, func(fd int) error {
		a := btrfsInoLookupArgs{ObjectID: btrfsFirstFreeObjID}
		if ioctlPtr(fd, btrfsIocInoLookup, unsafe.Pointer(&a)) == nil {
			id = a.TreeID
		}
		return nil
	})
	args, err := volArgs(filepath.Base(dir))
	if err != nil {
		return err
	}
	err = withDir(filepath.Dir(dir), func(fd int) error {
		return ioctlPtr(fd, btrfsIocSnapDestroy, unsafe.Pointer(args))
	})
	if err != nil {
		// A nested subvolume blocks SNAP_DESTROY; fall back to unlinking,
		// which removes an emptied subvolume too.
		if rerr := os.RemoveAll(dir); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	if id != 0 {
		_ = withDir(filepath.Dir(dir), func(fd int) error {
			del := struct{ Create, QgroupID uint64 }{0, id}
			return ioctlPtr(fd, btrfsIocQgroupCreate, unsafe.Pointer(&del))
		})
	}
	return nil
}
