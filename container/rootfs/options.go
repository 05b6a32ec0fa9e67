package rootfs

import (
	"fmt"
	"strings"

	"github.com/berth-project/berth/errdefs"
	"golang.org/x/sys/unix"
)

// MountOptions is an OCI mount's options split by what the kernel does
// with them.
type MountOptions struct {
	Flags       uintptr   // MS_* flags for mount(2)
	Propagation []uintptr // MS_SHARED etc., applied after the mount
	SetAttr     uint64    // MOUNT_ATTR_* to set recursively (rro, rnosuid …)
	ClearAttr   uint64    // MOUNT_ATTR_* to clear recursively (rrw, rsuid …)
	Data        string    // file-system specific options
	IDMap       IDMapKind // idmap or ridmap: the bind's source is idmapped
}

// IDMapKind is what an idmapped bind maps: nothing, its top mount
// ("idmap") or every mount under it too ("ridmap").
type IDMapKind int

const (
	NoIDMap IDMapKind = iota
	IDMapTop
	IDMapRecursive
)

// IDMapOf is the idmap option among opts, without parsing the rest.
func IDMapOf(opts []string) IDMapKind {
	k := NoIDMap
	for _, o := range opts {
		switch o {
		case "idmap":
			k = IDMapTop
		case "ridmap":
			k = IDMapRecursive
		}
	}
	return k
}

var flagOptions = map[string]struct {
	clear bool
	flag  uintptr
}{
	"async": {true, unix.MS_SYNCHRONOUS}, "atime": {true, unix.MS_NOATIME},
	"bind": {false, unix.MS_BIND}, "defaults": {false, 0}, "dev": {true, unix.MS_NODEV},
	"diratime": {true, unix.MS_NODIRATIME}, "dirsync": {false, unix.MS_DIRSYNC},
	"exec": {true, unix.MS_NOEXEC}, "mand": {false, unix.MS_MANDLOCK},
	"noatime": {false, unix.MS_NOATIME}, "nodev": {false, unix.MS_NODEV},
	"nodiratime": {false, unix.MS_NODIRATIME}, "noexec": {false, unix.MS_NOEXEC},
	"nomand": {true, unix.MS_MANDLOCK}, "norelatime": {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME}, "nosuid": {false, unix.MS_NOSUID},
	"rbind": {false, unix.MS_BIND | unix.MS_REC}, "relatime": {false, unix.MS_RELATIME},
	"remount": {false, unix.MS_REMOUNT}, "ro": {false, unix.MS_RDONLY},
	"rw": {true, unix.MS_RDONLY}, "strictatime": {false, unix.MS_STRICTATIME},
	"suid": {true, unix.MS_NOSUID}, "sync": {false, unix.MS_SYNCHRONOUS},
	"silent": {false, unix.MS_SILENT}, "loud": {true, unix.MS_SILENT},
}

var propagationOptions = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

var recursiveOptions = map[string]struct {
	clear bool
	attr  uint64
}{
	"rro": {false, unix.MOUNT_ATTR_RDONLY}, "rrw": {true, unix.MOUNT_ATTR_RDONLY},
	"rnosuid": {false, unix.MOUNT_ATTR_NOSUID}, "rsuid": {true, unix.MOUNT_ATTR_NOSUID},
	"rnodev": {false, unix.MOUNT_ATTR_NODEV}, "rdev": {true, unix.MOUNT_ATTR_NODEV},
	"rnoexec": {false, unix.MOUNT_ATTR_NOEXEC}, "rexec": {true, unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime": {false, unix.MOUNT_ATTR_NODIRATIME}, "rdiratime": {true, unix.MOUNT_ATTR_NODIRATIME},
	"rnoatime": {false, unix.MOUNT_ATTR_NOATIME}, "rrelatime": {false, unix.MOUNT_ATTR_RELATIME},
	"rstrictatime": {false, unix.MOUNT_ATTR_STRICTATIME},
	"rnosymfollow": {false, unix.MOUNT_ATTR_NOSYMFOLLOW}, "rsymfollow": {true, unix.MOUNT_ATTR_NOSYMFOLLOW},
}

// ParseOptions splits OCI mount options; what is not a flag, a
// propagation, a recursive attribute or idmap is file-system data.
func ParseOptions(opts []string) (MountOptions, error) {
	var o MountOptions
	var data []string
	for _, opt := range opts {
		if f, ok := flagOptions[opt]; ok {
			if f.clear {
				o.Flags &^= f.flag
			} else {
				o.Flags |= f.flag
			}
			continue
		}
		if p, ok := propagationOptions[opt]; ok {
			o.Propagation = append(o.Propagation, p)
			continue
		}
		if r, ok := recursiveOptions[opt]; ok {
			if r.clear {
				o.ClearAttr |= r.attr
			} else {
				o.SetAttr |= r.attr
			}
			continue
		}
		switch opt {
		case "idmap", "ridmap":
			o.IDMap = IDMapOf([]string{opt})
			continue
		case "tmpcopyup":
			continue // runc extension for tmpfs over image content; the engine copies up itself
		}
		data = append(data, opt)
	}
	o.Data = strings.Join(data, ",")
	return o, nil
}

// PropagationFlag maps linux.rootfsPropagation to its MS_* flag.
func PropagationFlag(name string) (uintptr, error) {
	if p, ok := propagationOptions[name]; ok {
		return p, nil
	}
	return 0, fmt.Errorf("linux.rootfsPropagation %q: must be one of shared, slave, private, unbindable (r-prefixed or not): %w", name, errdefs.ErrInvalid)
}
