package quota

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The project-quota backend (XFS pquota, ext4 prjquota). A limited
// directory carries a project ID with the inherit flag, so that every file
// and directory made under it — an overlay upper and work directory
// included — is charged to the project; the project has a hard block
// limit. quotactl_fd(2) (Linux 5.14) addresses the filesystem through any
// open file on it, so no block device node is needed.

// Constants of <linux/quota.h> and <linux/dqblk_xfs.h> (checked against
// the headers).
const (
	prjQuota      = 2      // PRJQUOTA
	qXGetQStat    = 0x5805 // Q_XGETQSTAT
	qXSetQLim     = 0x5804 // Q_XSETQLIM
	qXGetQuota    = 0x5803 // Q_XGETQUOTA
	fsProjQuota   = 2      // FS_PROJ_QUOTA, fs_disk_quota.d_flags
	fsDqBSoft     = 1 << 2 // FS_DQ_BSOFT
	fsDqBHard     = 1 << 3 // FS_DQ_BHARD
	fsQuotaPdqAcc = 1 << 4 // FS_QUOTA_PDQ_ACCT
	fsQuotaPdqEnf = 1 << 5 // FS_QUOTA_PDQ_ENFD
	fsXflagPInh   = 0x200  // FS_XFLAG_PROJINHERIT

	fsIocGetXattr = 0x801c581f // FS_IOC_FSGETXATTR
	fsIocSetXattr = 0x401c5820 // FS_IOC_FSSETXATTR
)

// fsDiskQuota is struct fs_disk_quota (112 bytes); block counts are in
// 512-byte units.
type fsDiskQuota struct {
	Version      int8
	Flags        int8
	FieldMask    uint16
	ID           uint32
	BlkHardLimit uint64
	BlkSoftLimit uint64
	InoHardLimit uint64
	InoSoftLimit uint64
	BCount       uint64
	ICount       uint64
	ITimer       int32
	BTimer       int32
	IWarns       uint16
	BWarns       uint16
	TimerHi      [4]int8
	RtbHardLimit uint64
	RtbSoftLimit uint64
	RtbCount     uint64
	RtbTimer     int32
	RtbWarns     uint16
	Pad3         int16
	Pad4         [8]byte
}

// fsxattr is struct fsxattr of FS_IOC_FSGETXATTR / FS_IOC_FSSETXATTR.
type fsxattr struct {
	XFlags     uint32
	ExtSize    uint32
	NExtents   uint32
	ProjID     uint32
	CowExtSize uint32
	Pad        [8]byte
}

func quotactlFd(fd int, cmd int, id uint32, addr unsafe.Pointer) error {
	_, _, e := unix.Syscall6(unix.SYS_QUOTACTL_FD, uintptr(fd), uintptr(cmd<<8|prjQuota), uintptr(id), uintptr(addr), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// withDir runs f on a read-only descriptor of dir (not followed if a
// symlink).
func withDir(dir string, f func(fd int) error) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	return f(fd)
}

type projectBackend struct{ fsName string }

func (p projectBackend) Name() string {
	return "project quota (" + p.fsName + ")"
}

// detectProject reports whether root's filesystem accounts and enforces
// project quotas.
func detectProject(root string) (Backend, bool) {
	var flags uint16
	err := withDir(root, func(fd int) error {
		var buf [128]byte // struct fs_quota_stat is 80 bytes
		if err := quotactlFd(fd, qXGetQStat, 0, unsafe.Pointer(&buf[0])); err != nil {
			return err
		}
		flags = binary.NativeEndian.Uint16(buf[2:4])
		return nil
	})
	if err != nil || flags&(fsQuotaPdqAcc|fsQuotaPdqEnf) != fsQuotaPdqAcc|fsQuotaPdqEnf {
		return nil, false
	}
	var st unix.Statfs_t
	name := "project"
	if unix.Statfs(root, &st) == nil {
		switch st.Type {
		case unix.XFS_SUPER_MAGIC:
			name = "xfs"
		case unix.EXT4_SUPER_MAGIC:
			name = "ext4"
		}
	}
	return projectBackend{fsName: name}, true
}

// Create makes dir with a project ID no other directory uses and limits
// the project to size bytes.
func (projectBackend) Create(dir string, size int64) (err error) {
	if err := checkSize(dir, size); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = removeProject(dir)
		}
	}()
	return withDir(dir, func(fd int) error {
		id, err := freeProjectID(fd)
		if err != nil {
			return err
		}
		var x fsxattr
		if err := ioctlPtr(fd, fsIocGetXattr, unsafe.Pointer(&x)); err != nil {
			return fmt.Errorf("get the attributes of %s: %w", dir, err)
		}
		x.ProjID = id
		x.XFlags |= fsXflagPInh
		if err := ioctlPtr(fd, fsIocSetXattr, unsafe.Pointer(&x)); err != nil {
			return fmt.Errorf("set project %d on %s: %w", id, dir, err)
		}
		return setProjectLimit(fd, id, uint64(size))
	})
}

// freeProjectID picks a random project ID with no usage and no limit.
// IDs start at 1<<20, above what /etc/projid files by hand tend to use.
func freeProjectID(fd int) (uint32, error) {
	for range 16 {
		var b [4]byte
		_, _ = rand.Read(b[:])
		id := 1<<20 + binary.NativeEndian.Uint32(b[:])%(1<<30)
		var q fsDiskQuota
		err := quotactlFd(fd, qXGetQuota, id, unsafe.Pointer(&q))
		if errors.Is(err, unix.ENOENT) || err == nil && q.BCount == 0 && q.ICount == 0 && q.BlkHardLimit == 0 {
			return id, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read project quota %d: %w", id, err)
		}
	}
	return 0, errors.New("no free project ID found")
}

// setProjectLimit sets the project's hard and soft block limits to bytes
// (0: none).
func setProjectLimit(fd int, id uint32, bytes uint64) error {
	q := fsDiskQuota{
		Version: 1, Flags: fsProjQuota, FieldMask: fsDqBHard | fsDqBSoft, ID: id,
		BlkHardLimit: bytes / 512, BlkSoftLimit: bytes / 512,
	}
	if err := quotactlFd(fd, qXSetQLim, id, unsafe.Pointer(&q)); err != nil {
		return fmt.Errorf("set the limit of project %d: %w", id, err)
	}
	return nil
}

// removeProject lifts the limit of dir's project, if it has one, and
// deletes dir.
func removeProject(dir string) error {
	_ = withDir(dir, func(fd int) error {
		var x fsxattr
		if ioctlPtr(fd, fsIocGetXattr, unsafe.Pointer(&x)) != nil || x.ProjID == 0 {
			return nil
		}
		return setProjectLimit(fd, x.ProjID, 0)
	})
	return os.RemoveAll(dir)
}

func ioctlPtr(fd int, req uint, arg unsafe.Pointer) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
	if e != 0 {
		return e
	}
	return nil
}
