// Package unpack extracts one image layer (an uncompressed tar stream) into
// a directory, in overlayfs form: OCI whiteouts become the character device
// 0/0 and opaque directories get the trusted.overlay.opaque xattr.
//
// Contract: nothing outside the target directory is ever created, changed or
// followed. Entry names must be relative and stay inside the directory;
// every parent directory is opened with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS), so an entry written "through" a symlink — one the
// layer made itself or one pointing anywhere else — is refused, and so is a
// hard link whose target is not an entry already inside the directory.
// Symlink targets themselves are data: they are stored as written and only
// ever resolved inside a container's root.
//
// Unpack leaves the directory half-filled on error; the caller owns it and
// removes it (storage does, by extracting into a temporary directory).
package unpack

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/userns"
)

// Options tune what a layer may contain.
type Options struct {
	// AllowDevices permits character and block device entries. Without it
	// a device node in the layer is an error (whiteouts are not entries of
	// the layer and are always written).
	AllowDevices bool
	// MapIDs, if set, turns an entry's uid and gid into the ids stored
	// (a container's user namespace: its ids to the host's).
	MapIDs func(uid, gid int) (int, int)
}

// owner is the uid and gid hdr's entry is stored with.
func (u *unpacker) owner(hdr *tar.Header) (int, int) {
	if u.opts.MapIDs != nil {
		return u.opts.MapIDs(hdr.Uid, hdr.Gid)
	}
	return hdr.Uid, hdr.Gid
}

// Opaque is the xattr overlayfs reads to hide a lower directory's content:
// trusted.overlay.opaque, or user.overlay.opaque in a user namespace
// (where overlayfs is mounted with userxattr and trusted.* is out of
// reach; a rootless daemon's layers are its own).
var Opaque = opaqueName()

func opaqueName() string {
	if userns.Nested() {
		return "user.overlay.opaque"
	}
	return "trusted.overlay.opaque"
}

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// Unpack reads the tar stream r to its end and writes its entries under
// dir, which must exist. It returns the layer's size as docker counts it:
// the bytes of file content written and of symlink targets.
// Errors name the entry.
func Unpack(r io.Reader, dir string, opts Options) (int64, error) {
	root, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", dir, err)
	}
	u := &unpacker{root: root, opts: opts, lastFd: -1, umask: processUmask(), inflight: map[string]bool{}}
	defer u.close()
	defer u.stopWorkers()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return u.written.Load(), fmt.Errorf("reading tar: %w", err)
		}
		if err := u.failed(); err != nil {
			return u.written.Load(), err
		}
		if err := u.dispatch(hdr, tr); err != nil {
			return u.written.Load(), fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
	if err := u.wait(); err != nil {
		return u.written.Load(), err
	}
	if err := u.finishDirs(); err != nil {
		return u.written.Load(), err
	}
	// The tar end marker may be followed by padding; the caller hashes the
	// whole stream, so consume it.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return u.written.Load(), fmt.Errorf("reading tar: %w", err)
	}
	return u.written.Load(), nil
}

// Small regular files are read into memory and written by a few workers
// at once: creating a file costs the kernel far more than writing a few
// kilobytes (about 0.7 ms of CPU on this project's test host's ext4), and
// a layer of many small files would otherwise create them one by one.
// Creations in one directory serialise on its lock, so files go to the
// worker their directory hashes to, and the queues are deep enough for the
// reader to run ahead into the next directories.
const (
	smallFile  = 256 << 10
	workers    = 4
	queueDepth = 32
)

// job is a small file for a worker; fd is the parent directory's own
// (dup'ed) descriptor.
type job struct {
	fd   int
	base string
	name string
	hdr  *tar.Header
	body []byte
}

// dispatch hands a small regular file to the workers and does every other
// entry in order. An entry whose name (or hard-link target, or whiteout
// target) a worker is still writing waits for the workers first.
func (u *unpacker) dispatch(hdr *tar.Header, r io.Reader) error {
	p, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	regular := hdr.Typeflag == tar.TypeReg // archive/tar reads the old '\x00' type as TypeReg
	if !regular || hdr.Size > smallFile || p == "." || strings.HasPrefix(base, whiteoutPrefix) {
		clash := u.inflight[p]
		if hdr.Typeflag == tar.TypeLink {
			if t, err := cleanName(hdr.Linkname); err == nil && u.inflight[t] {
				clash = true
			}
		}
		if name, ok := strings.CutPrefix(base, whiteoutPrefix); ok && u.inflight[path.Join(dir, name)] {
			clash = true
		}
		if clash {
			if err := u.wait(); err != nil {
				return err
			}
		}
		n, err := u.entry(hdr, p, dir, base, r)
		u.written.Add(n)
		return err
	}
	if u.inflight[p] {
		if err := u.wait(); err != nil {
			return err
		}
	}
	pfd, err := u.openDir(dir, true)
	if err != nil {
		return err
	}
	body := getBody(int(hdr.Size))
	if _, err := io.ReadFull(r, body); err != nil {
		putBody(body)
		return fmt.Errorf("reading tar: %w", err)
	}
	fd, err := unix.FcntlInt(uintptr(pfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if u.jobs == nil {
		u.startWorkers()
	}
	u.inflight[p] = true
	u.pending.Add(1)
	h := fnv.New32a()
	h.Write([]byte(dir))
	u.jobs[h.Sum32()%workers] <- job{fd: fd, base: base, name: hdr.Name, hdr: hdr, body: body}
	return nil
}

// Bodies of queued small files come from pools of 16 KiB and smallFile
// sized buffers, so a layer of thousands of files does not churn the heap.
var (
	smallBodies = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}
	largeBodies = sync.Pool{New: func() any { b := make([]byte, smallFile); return &b }}
)

func getBody(n int) []byte {
	p := &largeBodies
	if n <= 16<<10 {
		p = &smallBodies
	}
	return (*p.Get().(*[]byte))[:n]
}

func putBody(b []byte) {
	b = b[:cap(b)]
	switch cap(b) {
	case 16 << 10:
		smallBodies.Put(&b)
	case smallFile:
		largeBodies.Put(&b)
	}
}

func (u *unpacker) startWorkers() {
	u.jobs = make([]chan job, workers)
	for i := range u.jobs {
		ch := make(chan job, queueDepth)
		u.jobs[i] = ch
		u.workers.Go(func() {
			for j := range ch {
				u.work(j)
			}
		})
	}
}

func (u *unpacker) work(j job) {
	defer u.pending.Done()
	defer unix.Close(j.fd)
	if u.failed() != nil {
		return
	}
	defer putBody(j.body)
	n, err := u.createFile(j.fd, j.base, j.hdr, bytes.NewBuffer(j.body))
	u.written.Add(n)
	if err != nil {
		u.errMu.Lock()
		if u.err == nil {
			u.err = fmt.Errorf("entry %q: %w", j.name, err)
		}
		u.errMu.Unlock()
	}
}

// failed returns the first error a worker met.
func (u *unpacker) failed() error {
	u.errMu.Lock()
	defer u.errMu.Unlock()
	return u.err
}

// wait lets every dispatched file finish.
func (u *unpacker) wait() error {
	u.pending.Wait()
	clear(u.inflight)
	return u.failed()
}

func (u *unpacker) stopWorkers() {
	for _, ch := range u.jobs {
		close(ch)
	}
	u.workers.Wait()
	u.jobs = nil
}

type dirMeta struct {
	path  string
	mode  uint32
	atime time.Time
	mtime time.Time
}

type unpacker struct {
	root    int
	opts    Options
	lastDir string // cache of the most recent parent directory
	lastFd  int
	dirs    []dirMeta // mode and times applied at the end, children first
	umask   uint32
	written atomic.Int64

	// Small files in flight (see dispatch). inflight is only touched by
	// the reading goroutine.
	jobs     []chan job // one queue per worker
	workers  sync.WaitGroup
	pending  sync.WaitGroup
	inflight map[string]bool
	errMu    sync.Mutex
	err      error
}

// processUmask reads the umask without changing it (umask(2) can only
// swap, which would race with other threads creating files).
func processUmask() uint32 {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return uint32(m)
				}
			}
		}
	}
	return 0o777 // unknown: always chmod
}

func (u *unpacker) close() {
	if u.lastFd >= 0 && u.lastFd != u.root {
		unix.Close(u.lastFd)
	}
	unix.Close(u.root)
}

// cleanName checks a tar path and returns it relative to the root, "."
// for the root itself.
func cleanName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", errors.New("absolute path in layer")
	}
	p := path.Clean(name)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", errors.New("path leads out of the layer")
	}
	return p, nil
}

const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// openDir opens dir (relative, cleaned) beneath the root, never through a
// symlink. With create, missing components are made (0755, owned by the
// caller, as tar does for implied parents).
func (u *unpacker) openDir(dir string, create bool) (int, error) {
	if dir == "." || dir == "" {
		return u.root, nil
	}
	if dir == u.lastDir {
		return u.lastFd, nil
	}
	how := &unix.OpenHow{Flags: unix.O_DIRECTORY | unix.O_RDONLY | unix.O_CLOEXEC, Resolve: beneath}
	fd, err := unix.Openat2(u.root, dir, how)
	if err == unix.ENOENT && create {
		fd, err = u.mkdirAll(dir)
	}
	if err != nil {
		return -1, describe(dir, err)
	}
	if u.lastFd >= 0 && u.lastFd != u.root {
		unix.Close(u.lastFd)
	}
	u.lastDir, u.lastFd = dir, fd
	return fd, nil
}

func (u *unpacker) mkdirAll(dir string) (int, error) {
	fd := u.root
	for comp := range strings.SplitSeq(dir, "/") {
		if err := unix.Mkdirat(fd, comp, 0o755); err != nil && err != unix.EEXIST {
			return -1, err
		}
		how := &unix.OpenHow{Flags: unix.O_DIRECTORY | unix.O_RDONLY | unix.O_CLOEXEC, Resolve: beneath}
		next, err := unix.Openat2(fd, comp, how)
		if fd != u.root {
			unix.Close(fd)
		}
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

func describe(dir string, err error) error {
	switch err {
	case unix.ELOOP:
		return fmt.Errorf("parent %q passes through a symlink", dir)
	case unix.EXDEV:
		return fmt.Errorf("parent %q leads out of the layer", dir)
	case unix.ENOTDIR:
		return fmt.Errorf("parent %q is not a directory", dir)
	}
	return fmt.Errorf("parent %q: %w", dir, err)
}

// entry writes one entry whose cleaned path p is dir/base.
func (u *unpacker) entry(hdr *tar.Header, p, dir, base string, r io.Reader) (int64, error) {
	if p == "." {
		if hdr.Typeflag != tar.TypeDir {
			return 0, errors.New("layer root is not a directory")
		}
		return 0, u.dirEntry(u.root, ".", p, hdr)
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		return 0, u.whiteout(dir, base)
	}
	pfd, err := u.openDir(dir, true)
	if err != nil {
		return 0, err
	}
	if hdr.Typeflag == tar.TypeReg {
		return u.createFile(pfd, base, hdr, r)
	}
	if err := replace(pfd, base, hdr.Typeflag == tar.TypeDir); err != nil {
		return 0, err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return 0, u.dirEntry(pfd, base, p, hdr)
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return 0, err
		}
		// A link's size is its target's length, counted as docker counts
		// a layer's size.
		return int64(len(hdr.Linkname)), u.meta(pfd, base, hdr, false)
	case tar.TypeLink:
		return 0, u.hardlink(pfd, base, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock:
		if !u.opts.AllowDevices {
			return 0, errors.New("device nodes are not allowed in this layer")
		}
		kind := uint32(unix.S_IFCHR)
		if hdr.Typeflag == tar.TypeBlock {
			kind = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(pfd, base, kind|0o600, int(dev)); err != nil {
			return 0, err
		}
		return 0, u.meta(pfd, base, hdr, true)
	case tar.TypeFifo:
		if err := unix.Mknodat(pfd, base, unix.S_IFIFO|0o600, 0); err != nil {
			return 0, err
		}
		return 0, u.meta(pfd, base, hdr, true)
	}
	return 0, fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
}

// replace removes what is in the way of a new entry named base. A directory
// stays when the new entry is a directory too (its metadata is updated).
func replace(pfd int, base string, isDir bool) error {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if isDir {
			return nil
		}
		if err := unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR); err != nil {
			return fmt.Errorf("replacing directory: %w", err)
		}
		return nil
	}
	return unix.Unlinkat(pfd, base, 0)
}

// whiteout writes the overlayfs form of an OCI whiteout entry.
func (u *unpacker) whiteout(dir, base string) error {
	pfd, err := u.openDir(dir, true)
	if err != nil {
		return err
	}
	if base == whiteoutOpaque {
		if err := unix.Fsetxattr(pfd, Opaque, []byte("y"), 0); err != nil {
			return fmt.Errorf("marking %q opaque: %w", dir, err)
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // other AUFS metadata: nothing to do for overlayfs
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return errors.New("malformed whiteout")
	}
	if err := replace(pfd, name, false); err != nil {
		return err
	}
	return unix.Mknodat(pfd, name, unix.S_IFCHR, 0)
}

func (u *unpacker) dirEntry(pfd int, base, p string, hdr *tar.Header) error {
	if base != "." {
		if err := unix.Mkdirat(pfd, base, 0o755); err != nil && err != unix.EEXIST {
			return err
		}
	}
	uid, gid := u.owner(hdr)
	if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := setXattrs(pfd, base, hdr); err != nil {
		return err
	}
	u.dirs = append(u.dirs, dirMeta{path: p, mode: uint32(hdr.Mode) & 0o7777, atime: hdr.AccessTime, mtime: hdr.ModTime})
	return nil
}

// createFile writes a regular file, clearing away what already has its
// name. Most entries are new, so the create is tried first; it fails
// before reading r, which the retry then reads.
func (u *unpacker) createFile(pfd int, base string, hdr *tar.Header, r io.Reader) (int64, error) {
	n, err := u.file(pfd, base, hdr, r)
	if err == unix.EEXIST {
		if err := replace(pfd, base, false); err != nil {
			return 0, err
		}
		n, err = u.file(pfd, base, hdr, r)
	}
	return n, err
}

// file writes a regular file; it returns unix.EEXIST, unwrapped, when
// something already has the name.
func (u *unpacker) file(pfd int, base string, hdr *tar.Header, r io.Reader) (int64, error) {
	mode := uint32(hdr.Mode) & 0o7777
	// Created with its final mode when the umask leaves it whole, else
	// privately and chmod'ed below.
	createMode, chmod := mode, mode&^u.umask != mode || mode&0o7000 != 0
	if chmod {
		createMode = 0o600
	}
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, createMode)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var n int64
	if b, ok := r.(*bytes.Buffer); ok {
		n, err = writeAll(fd, b.Bytes())
	} else {
		bp := bufPool.Get().(*[]byte)
		n, err = copyToFd(fd, r, *bp)
		bufPool.Put(bp)
	}
	if err != nil {
		return n, err
	}
	if n != hdr.Size {
		return n, fmt.Errorf("short content: %d of %d bytes", n, hdr.Size)
	}
	// Through the descriptor: the name could be swapped, the file cannot.
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return n, fmt.Errorf("chown: %w", err)
	}
	if chmod {
		if err := unix.Fchmod(fd, mode); err != nil {
			return n, fmt.Errorf("chmod: %w", err)
		}
	}
	if err := setXattrs(fd, ".", hdr); err != nil {
		return n, err
	}
	return n, futimens(fd, hdr.AccessTime, hdr.ModTime)
}

// futimens sets the times of the file fd refers to (utimensat with a NULL
// path, which x/sys/unix does not offer).
func futimens(fd int, atime, mtime time.Time) error {
	if atime.IsZero() {
		atime = mtime
	}
	ts := [2]unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return fmt.Errorf("set times: %w", e)
	}
	return nil
}

func writeAll(fd int, b []byte) (int64, error) {
	var total int64
	for len(b) > 0 {
		w, err := unix.Write(fd, b)
		if err != nil {
			return total, fmt.Errorf("write: %w", err)
		}
		b = b[w:]
		total += int64(w)
	}
	return total, nil
}

func copyToFd(fd int, r io.Reader, buf []byte) (int64, error) {
	var total int64
	for {
		n, rerr := r.Read(buf)
		for off := 0; off < n; {
			w, err := unix.Write(fd, buf[off:n])
			if err != nil {
				return total, fmt.Errorf("write: %w", err)
			}
			off += w
			total += int64(w)
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, fmt.Errorf("reading tar: %w", rerr)
		}
	}
}

func (u *unpacker) hardlink(pfd int, base, target string) error {
	t, err := cleanName(target)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", target, err)
	}
	if t == "." {
		return errors.New("hard link to the layer root")
	}
	tdir, tbase := path.Split(t)
	tdir = strings.TrimSuffix(tdir, "/")
	how := &unix.OpenHow{Flags: unix.O_DIRECTORY | unix.O_RDONLY | unix.O_CLOEXEC, Resolve: beneath}
	tfd := u.root
	if tdir != "" {
		if tfd, err = unix.Openat2(u.root, tdir, how); err != nil {
			return fmt.Errorf("hard link target %q: %w", target, describe(tdir, err))
		}
		defer unix.Close(tfd)
	}
	if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
		if err == unix.ENOENT {
			return fmt.Errorf("hard link target %q is not in the layer", target)
		}
		return fmt.Errorf("hard link to %q: %w", target, err)
	}
	return nil
}

// meta sets owner, mode (not for symlinks), xattrs and times of base.
func (u *unpacker) meta(pfd int, base string, hdr *tar.Header, chmod bool) error {
	uid, gid := u.owner(hdr)
	if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if chmod {
		// After chown, which clears setuid and setgid bits.
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode)&0o7777, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if err := setXattrs(pfd, base, hdr); err != nil {
		return err
	}
	return setTimes(pfd, base, hdr.AccessTime, hdr.ModTime, unix.AT_SYMLINK_NOFOLLOW)
}

func setTimes(pfd int, base string, atime, mtime time.Time, flags int) error {
	if atime.IsZero() {
		atime = mtime
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(pfd, base, ts, flags); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// setXattrs sets the layer's xattrs on base in pfd, or on pfd itself when
// base is ".".
func setXattrs(pfd int, base string, hdr *tar.Header) error {
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		var err error
		if base == "." {
			err = unix.Fsetxattr(pfd, name, []byte(v), 0)
		} else {
			// base is one component and lsetxattr does not follow it.
			err = unix.Lsetxattr(fmt.Sprintf("/proc/self/fd/%d/%s", pfd, base), name, []byte(v), 0)
		}
		if err != nil {
			return fmt.Errorf("xattr %s: %w", name, err)
		}
	}
	return nil
}

// finishDirs applies directory modes and times once every child exists,
// deepest first, so that neither a read-only mode nor a later child spoils
// them. Each directory is reopened beneath the root without following
// symlinks: a later entry may have replaced it with one.
func (u *unpacker) finishDirs() error {
	for i := len(u.dirs) - 1; i >= 0; i-- {
		d := u.dirs[i]
		fd := u.root
		if d.path != "." {
			how := &unix.OpenHow{Flags: unix.O_DIRECTORY | unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW, Resolve: beneath}
			var err error
			if fd, err = unix.Openat2(u.root, d.path, how); err != nil {
				if err == unix.ENOENT || err == unix.ENOTDIR || err == unix.ELOOP {
					continue // replaced by a later entry
				}
				return fmt.Errorf("entry %q: %w", d.path, err)
			}
		}
		err := unix.Fchmod(fd, d.mode)
		if err == nil {
			err = futimens(fd, d.atime, d.mtime)
		}
		if fd != u.root {
			unix.Close(fd)
		}
		if err != nil {
			return fmt.Errorf("entry %q: %w", d.path, err)
		}
	}
	return nil
}
