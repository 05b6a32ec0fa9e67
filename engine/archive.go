package engine

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berth-project/berth/container/rootfs"
	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/storage/unpack"
	"github.com/berth-project/berth/userns"
	"golang.org/x/sys/unix"
)

// PathStat describes a path in a container as docker cp's stat header
// (X-Docker-Container-Path-Stat) does.
type PathStat struct {
	Name       string      `json:"name"`
	Size       int64       `json:"size"`
	Mode       fs.FileMode `json:"mode"`
	Mtime      time.Time   `json:"mtime"`
	LinkTarget string      `json:"linkTarget"`
}

// containerRoot opens the root directory a container's processes see —
// with its volumes, binds and tmpfs — and passes it to fn. A running
// container is reached through its init's /proc/PID/root; a stopped one
// has its root filesystem mounted for the time of fn, with its volumes and
// binds over it, all detached when fn returns. Every path under the root
// is resolved with openat2(RESOLVE_IN_ROOT): no symlink leads out.
func (e *Engine) containerRoot(ref string, fn func(rootfd int, m *userns.Mapping) error) error {
	var c *ctr
	var rec Record
	var running bool
	if err := e.withCtr(ref, func(found *ctr) error {
		c, rec, running = found, found.rec, found.rec.State.Running()
		return e.claimStopped(c, running, "copying")
	}); err != nil {
		return err
	}
	if !running {
		defer e.unbusy(c)
	}
	dir := fmt.Sprintf("/proc/%d/root", rec.State.Pid)
	if !running {
		tmp, err := os.MkdirTemp(filepath.Join(e.o.ExecRoot, "containers"), "archive-")
		if err != nil {
			return err
		}
		defer os.Remove(tmp)
		if err := e.mountRootfs(&rec, tmp); err != nil {
			return fmt.Errorf("mount the root filesystem of %s: %w", rec.ID, err)
		}
		// Detaching the root detaches what is mounted under it too.
		defer unix.Unmount(tmp, unix.MNT_DETACH)
		if err := e.mountVolumesUnder(rec, tmp); err != nil {
			return err
		}
		dir = tmp
	}
	rootfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("container %s: open its root: %w", rec.ID, err)
	}
	defer unix.Close(rootfd)
	return fn(rootfd, rec.IDMap)
}

// attachIdmapped mounts an idmapped clone of src on the directory fd;
// *ns is m's user namespace, opened on first use.
func attachIdmapped(src string, fd int, m *userns.Mapping, ns **os.File) error {
	if *ns == nil {
		var err error
		if *ns, err = userns.Open(*m); err != nil {
			return err
		}
	}
	tree, err := userns.Clone(src, *ns)
	if err != nil {
		return err
	}
	defer tree.Close()
	return userns.Attach(tree, fd)
}

// mountVolumesUnder binds a stopped container's volumes and bind mounts
// over its root mounted at root, where their destinations already exist
// (a container that never ran has none yet).
func (e *Engine) mountVolumesUnder(rec Record, root string) error {
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)
	vms, err := e.volumeMounts(&rec, root)
	if err != nil {
		return err
	}
	type bindMount struct {
		src, dst string
		idmap    bool // through the container's mapping, as it runs
	}
	var ms []bindMount
	for _, m := range vms {
		if m.Type == "bind" { // a tmpfs volume holds nothing while stopped
			ms = append(ms, bindMount{m.Source, m.Destination, rootfs.IDMapOf(m.Options) != rootfs.NoIDMap})
		}
	}
	for _, raw := range rec.HostConfig.Binds {
		if b, err := parseBind(raw); err == nil && !b.volume {
			ms = append(ms, bindMount{b.src, b.dst, b.idmap})
		}
	}
	for _, m := range rec.HostConfig.Mounts {
		if m.Type == "bind" {
			ms = append(ms, bindMount{m.Source, m.Target, false})
		}
	}
	var ns *os.File // the container's user namespace, for idmapped binds
	defer func() {
		if ns != nil {
			ns.Close()
		}
	}()
	for _, m := range ms {
		fd, err := rootfs.OpenInRoot(rootfd, m.dst)
		if err != nil {
			continue // not made yet: the container never ran
		}
		if m.idmap && rec.IDMap != nil {
			err = attachIdmapped(m.src, fd, rec.IDMap, &ns)
		} else {
			err = unix.Mount(m.src, rootfs.ProcFd(fd), "", unix.MS_BIND|unix.MS_REC, "")
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("mount %s at %s: %w", m.src, m.dst, err)
		}
	}
	return nil
}

// splitPath is a container path's parent directory and last component;
// a path ending in "/" or "/." names the directory itself (followed).
func splitPath(p string) (dir, base string, follow bool) {
	follow = strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.")
	clean := path.Clean("/" + p)
	if clean == "/" {
		return "/", ".", true
	}
	return path.Dir(clean), path.Base(clean), follow
}

// statIn stats p in the root: its last component is not followed unless
// p ends in "/" or "/.".
func statIn(rootfd int, ref, p string) (PathStat, error) {
	dir, base, follow := splitPath(p)
	notFound := func() (PathStat, error) {
		return PathStat{}, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("Could not find the file %s in container %s", p, ref))
	}
	dfd, err := rootfs.OpenInRoot(rootfd, dir)
	if err != nil {
		return notFound()
	}
	defer unix.Close(dfd)
	flags := unix.AT_SYMLINK_NOFOLLOW
	if follow {
		fd, err := rootfs.OpenInRoot(rootfd, p)
		if err != nil {
			return notFound()
		}
		defer unix.Close(fd)
		dfd, base, flags = fd, "", unix.AT_EMPTY_PATH
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, flags); err != nil {
		return notFound()
	}
	out := PathStat{Name: path.Base(path.Clean("/" + p)), Size: st.Size, Mode: fileMode(st.Mode),
		Mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec).UTC()}
	if strings.HasSuffix(p, "/.") {
		out.Name = "." // the directory's content, as docker names it
	}
	if out.Mode&fs.ModeSymlink != 0 {
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(dfd, base, buf)
		if err == nil {
			t := string(buf[:n])
			if !path.IsAbs(t) {
				t = path.Join(dir, t)
			}
			out.LinkTarget = t
		}
	}
	return out, nil
}

// fileMode converts a stat mode to Go's.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// StatPath stats a path in a container, for docker cp.
func (e *Engine) StatPath(ref, p string) (PathStat, error) {
	var st PathStat
	err := e.containerRoot(ref, func(rootfd int, _ *userns.Mapping) error {
		var err error
		st, err = statIn(rootfd, ref, p)
		return err
	})
	return st, err
}

// ArchivePath writes the path p of a container to w as a tar, as docker
// cp reads it: entries named under p's last component (under "." for a
// path ending in "/."), a symlink as a link. head is called with the
// path's stat before the first byte is written.
func (e *Engine) ArchivePath(ref, p string, head func(PathStat), w io.Writer) error {
	return e.containerRoot(ref, func(rootfd int, m *userns.Mapping) error {
		st, err := statIn(rootfd, ref, p)
		if err != nil {
			return err
		}
		dir, base, follow := splitPath(p)
		name := base
		if follow {
			// The directory itself, its entries under "./" when asked
			// for with "/.", else under its own name.
			dir, base = p, "."
			name = st.Name
		}
		dfd, err := rootfs.OpenInRoot(rootfd, dir)
		if err != nil {
			return err
		}
		defer unix.Close(dfd)
		root, err := os.OpenRoot(rootfs.ProcFd(dfd))
		if err != nil {
			return err
		}
		defer root.Close()
		head(st)
		tw := tar.NewWriter(w)
		if err := tarTree(tw, root, base, name, m); err != nil {
			return err
		}
		return tw.Close()
	})
}

// tarTree writes the tree at base in root, renamed to name, to tw.
// Symlinks are archived as links, never followed.
func tarTree(tw *tar.Writer, root *os.Root, base, name string, m *userns.Mapping) error {
	top, err := root.Lstat(base)
	if err != nil {
		return err
	}
	if !top.IsDir() {
		return tarEntry(tw, root, base, name, top, m)
	}
	return fs.WalkDir(root.FS(), base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := root.Lstat(p)
		if err != nil {
			return err
		}
		skip := p != base && info.IsDir() && pseudoFS(root, p, top)
		rel := ""
		if p != base {
			rel = strings.TrimPrefix(p, base+"/")
			if base == "." {
				rel = p
			}
		}
		entry := path.Join(name, rel)
		if name == "." {
			entry = "./" + rel
		}
		if err := tarEntry(tw, root, p, entry, info, m); err != nil || !skip {
			return err
		}
		return fs.SkipDir
	})
}

// pseudoFS reports whether the directory p (below top) is a mount of a
// kernel or memory file system — /proc, /sys, /dev, a tmpfs — whose
// content docker cp leaves out, as dockerd (which sees only the root
// filesystem and volumes) does.
func pseudoFS(root *os.Root, p string, top fs.FileInfo) bool {
	st, ok1 := top.Sys().(*syscall.Stat_t)
	fi, err := root.Lstat(p)
	if err != nil {
		return false
	}
	dst, ok2 := fi.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 || st.Dev == dst.Dev {
		return false
	}
	f, err := root.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var sfs unix.Statfs_t
	if unix.Fstatfs(int(f.Fd()), &sfs) != nil {
		return false
	}
	switch sfs.Type {
	case unix.PROC_SUPER_MAGIC, unix.SYSFS_MAGIC, unix.DEVPTS_SUPER_MAGIC, 0x19800202, // mqueue
		unix.CGROUP_SUPER_MAGIC, unix.CGROUP2_SUPER_MAGIC, unix.TMPFS_MAGIC:
		return true
	}
	return false
}

// tarEntry writes the file p of root to tw under name.
// A container's host ids are archived as its own ids (m: its user
// namespace, nil for none).
func tarEntry(tw *tar.Writer, root *os.Root, p, name string, info fs.FileInfo, m *userns.Mapping) error {
	link := ""
	if info.Mode()&fs.ModeSymlink != 0 {
		var err error
		if link, err = root.Readlink(p); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(info, link)
	if err != nil {
		return nil // a socket: not archived, as docker's archiver
	}
	hdr.Name = name
	if info.IsDir() && !strings.HasSuffix(hdr.Name, "/") {
		hdr.Name += "/"
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		// As docker's archiver: the file type in the mode's high bits.
		hdr.Mode |= int64(st.Mode & syscall.S_IFMT)
	}
	if m != nil {
		hdr.Uid, hdr.Gid = m.ToContainer(hdr.Uid, hdr.Gid)
		hdr.Uname, hdr.Gname = "", ""
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return nil
	}
	f, err := root.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyN(tw, f, hdr.Size)
	return err
}

// ExtractToDir unpacks the tar r into the directory p of a container, as
// docker cp writes it, with the layer unpacker's guarantees: nothing lands
// outside that directory.
func (e *Engine) ExtractToDir(ref, p string, r io.Reader) error {
	return e.containerRoot(ref, func(rootfd int, m *userns.Mapping) error {
		st, err := statIn(rootfd, ref, p)
		if err == nil && st.Mode&fs.ModeSymlink != 0 {
			st, err = statIn(rootfd, ref, p+"/")
		}
		if err != nil {
			return err
		}
		if !st.Mode.IsDir() {
			return errdefs.New(errdefs.ErrInvalid, "extraction point is not a directory")
		}
		fd, err := rootfs.OpenInRoot(rootfd, p)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		var ro unix.Statfs_t
		if unix.Fstatfs(fd, &ro) == nil && ro.Flags&unix.ST_RDONLY != 0 {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("container rootfs is marked read-only: %s is on a read-only file system", p))
		}
		var opts unpack.Options
		if m != nil {
			opts.MapIDs = m.ToHost
		}
		if _, err := unpack.Unpack(r, rootfs.ProcFd(fd), opts); err != nil {
			if errors.Is(err, unix.EROFS) {
				return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s is on a read-only file system", p))
			}
			return errdefs.New(errdefs.ErrInvalid, "extracting the archive: "+err.Error())
		}
		return nil
	})
}
