// Package storage keeps image layers unpacked on disk and makes container
// root filesystems from them: each layer is unpacked once, in overlayfs
// form, into layers/sha256/<diffID>; a container's rootfs is an overlay
// mount of its image's layers plus a writable upper in rw/<key>.
//
// Layers are keyed by diffID (the digest of the uncompressed tar), not by
// their chain: in overlayfs form a layer's directory does not depend on the
// layers below it, so images that share a layer share its directory.
//
// Contract: a directory under layers/sha256 is always a complete, verified
// layer. Unpacking happens in layers/tmp and is renamed in by Commit; Open
// removes anything left in layers/tmp. Which image and container uses what
// is recorded by the caller (image.Store); this package only owns
// directories and mounts. Safe for concurrent use.
package storage

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/storage/quota"
	"github.com/berth-project/berth/storage/unpack"
	"github.com/berth-project/berth/userns"
)

// Snapshotter owns the layers/ and rw/ directories under root.
type Snapshotter struct {
	root   string
	quota  quota.Backend // for sized writable layers, chosen at Open
	driver string        // Overlay or FuseOverlayfs (SetDriver)
}

// Open makes the directories and removes unfinished unpacks.
func Open(root string) (*Snapshotter, error) {
	s := &Snapshotter{root: root}
	if err := os.RemoveAll(s.tmpDir()); err != nil {
		return nil, err
	}
	for _, d := range []string{filepath.Join(root, "layers", "sha256"), s.tmpDir(), filepath.Join(root, "rw")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	s.quota = quota.Detect(filepath.Join(root, "rw"))
	return s, nil
}

// QuotaBackend names how sized writable layers are limited on this host.
func (s *Snapshotter) QuotaBackend() string { return s.quota.Name() }

func (s *Snapshotter) tmpDir() string { return filepath.Join(s.root, "layers", "tmp") }

// LayerPath is the directory of the unpacked layer with this diffID.
func (s *Snapshotter) LayerPath(diffID digest.Digest) string {
	return filepath.Join(s.root, "layers", "sha256", diffID.Encoded())
}

// HasLayer reports whether the layer is unpacked.
func (s *Snapshotter) HasLayer(diffID digest.Digest) bool {
	if diffID.Validate() != nil {
		return false
	}
	fi, err := os.Stat(s.LayerPath(diffID))
	return err == nil && fi.IsDir()
}

// Layers lists the diffIDs of all unpacked layers.
func (s *Snapshotter) Layers() ([]digest.Digest, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "layers", "sha256"))
	if err != nil {
		return nil, err
	}
	var out []digest.Digest
	for _, e := range ents {
		out = append(out, digest.NewDigestFromEncoded(digest.SHA256, e.Name()))
	}
	return out, nil
}

// RemoveLayer deletes an unpacked layer. The caller makes sure no image or
// container uses it.
func (s *Snapshotter) RemoveLayer(diffID digest.Digest) error {
	if err := diffID.Validate(); err != nil {
		return fmt.Errorf("layer %q: %w", diffID, errdefs.ErrInvalid)
	}
	if err := s.removeShiftedLayer(diffID); err != nil {
		return err
	}
	return os.RemoveAll(s.LayerPath(diffID))
}

// Pending is a layer unpacked and verified but not yet visible. Exactly one
// of Commit and Abort must be called.
type Pending struct {
	s      *Snapshotter
	diffID digest.Digest
	dir    string
	// Bytes of file content written.
	Bytes int64
}

// Unpack reads the uncompressed layer tar r to its end into a temporary
// directory and checks that its digest is diffID.
func (s *Snapshotter) Unpack(diffID digest.Digest, r io.Reader, opts unpack.Options) (*Pending, error) {
	if err := diffID.Validate(); err != nil || diffID.Algorithm() != digest.SHA256 {
		return nil, fmt.Errorf("layer diffID %q: %w", diffID, errdefs.ErrInvalid)
	}
	dir, err := os.MkdirTemp(s.tmpDir(), diffID.Encoded()[:12]+"-")
	if err != nil {
		return nil, err
	}
	// The layer's root entry, if any, sets the real mode; mkdtemp's 0700
	// would otherwise make / unreadable to users in the container.
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	h := sha256.New()
	n, err := unpack.Unpack(io.TeeReader(r, h), dir, opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if got := digest.NewDigest(digest.SHA256, h); got != diffID {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("uncompressed content has digest %s, the image config says %s: %w", got, diffID, errdefs.ErrInvalid)
	}
	return &Pending{s: s, diffID: diffID, dir: dir, Bytes: n}, nil
}

// Commit makes the layer visible. If another unpack of the same layer won
// the race, this one is discarded: both are the same verified content.
func (p *Pending) Commit() error {
	err := os.Rename(p.dir, p.s.LayerPath(p.diffID))
	if err != nil && p.s.HasLayer(p.diffID) {
		err = nil
	}
	p.Abort()
	return err
}

// Abort discards the unpacked layer.
func (p *Pending) Abort() {
	if p.dir != "" {
		os.RemoveAll(p.dir)
		p.dir = ""
	}
}

var keyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

func (s *Snapshotter) rwDir(key string) string { return filepath.Join(s.root, "rw", key) }

// Prepare makes the writable layer for key on top of layers (base first).
// Every layer must be unpacked.
func (s *Snapshotter) Prepare(key string, layers []digest.Digest) error {
	return s.PrepareSized(key, layers, 0)
}

// PrepareSized is Prepare with the writable layer limited to size bytes
// (0: unlimited): its upper and work directories live in rw/<key>/fs, a
// directory limited by the host's quota backend (storage/quota).
func (s *Snapshotter) PrepareSized(key string, layers []digest.Digest, size int64) error {
	if !keyRE.MatchString(key) {
		return fmt.Errorf("snapshot key %q: %w", key, errdefs.ErrInvalid)
	}
	for _, l := range layers {
		if !s.HasLayer(l) {
			return fmt.Errorf("layer %s is not unpacked: %w", l, errdefs.ErrNotFound)
		}
	}
	dir := s.rwDir(key)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("snapshot %q: %w", key, errdefs.ErrConflict)
		}
		return err
	}
	lower := make([]string, len(layers))
	for i, l := range layers {
		lower[len(layers)-1-i] = l.Encoded()
	}
	base := dir
	if size > 0 {
		base = filepath.Join(dir, "fs")
		if err := s.quota.Create(base, size); err != nil {
			os.RemoveAll(dir)
			return err
		}
	}
	for _, d := range []string{"upper", "work"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			quota.Remove(base)
			os.RemoveAll(dir)
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "lower"), []byte(strings.Join(lower, "\n")), 0o600); err != nil {
		os.RemoveAll(dir)
		return err
	}
	return nil
}

// Snapshots lists the keys of the writable layers.
func (s *Snapshotter) Snapshots() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "rw"))
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, e := range ents {
		keys = append(keys, e.Name())
	}
	return keys, nil
}

// Lower returns the diffIDs a snapshot stands on, top first.
func (s *Snapshotter) Lower(key string) ([]digest.Digest, error) {
	if !keyRE.MatchString(key) {
		return nil, fmt.Errorf("snapshot key %q: %w", key, errdefs.ErrInvalid)
	}
	b, err := os.ReadFile(filepath.Join(s.rwDir(key), "lower"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var out []digest.Digest
	for l := range strings.SplitSeq(string(b), "\n") {
		if l != "" {
			out = append(out, digest.NewDigestFromEncoded(digest.SHA256, l))
		}
	}
	return out, nil
}

// maxMountData is the kernel's limit on mount(2)'s data (one page).
const maxMountData = 4095

// MountOptions returns the overlay options for key's rootfs.
func (s *Snapshotter) MountOptions(key string) (string, error) {
	dirs, rw, err := s.layout(key)
	if err != nil {
		return "", err
	}
	return s.overlayOptions(key, dirs, rw)
}

// layout is key's layer directories (top first) and the directory of
// its upper and work.
func (s *Snapshotter) layout(key string) (dirs []string, rw string, err error) {
	if dirs, err = s.lowerDirs(key); err != nil {
		return nil, "", err
	}
	if rw, err = s.rwBase(key); err != nil {
		return nil, "", err
	}
	return dirs, rw, nil
}

// overlayOptions are the overlay options of key's rootfs over the layer
// directories dirs (top first), with its upper and work in rw.
func (s *Snapshotter) overlayOptions(key string, dirs []string, rw string) (string, error) {
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,index=off", strings.Join(dirs, ":"), filepath.Join(rw, "upper"), filepath.Join(rw, "work"))
	if userns.Nested() {
		// Root of a user namespace (a rootless daemon): overlayfs keeps
		// its xattrs in user.* (unpack.Opaque).
		opts += ",userxattr"
	}
	if len(opts) > maxMountData {
		return "", fmt.Errorf("snapshot %q: %d layers make overlay options longer than the kernel accepts: %w", key, len(dirs), errdefs.ErrUnavailable)
	}
	return opts, nil
}

// lowerDirs are the layer directories of key's rootfs, top first. overlayfs
// needs a lower layer: an image without layers gets an empty one.
func (s *Snapshotter) lowerDirs(key string) ([]string, error) {
	lower, err := s.Lower(key)
	if err != nil {
		return nil, err
	}
	dirs := make([]string, len(lower))
	for i, l := range lower {
		dirs[i] = s.LayerPath(l)
	}
	if len(dirs) == 0 {
		empty := filepath.Join(s.root, "layers", "empty")
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return nil, err
		}
		dirs = []string{empty}
	}
	return dirs, nil
}

// Mount mounts key's rootfs on target, an existing directory.
func (s *Snapshotter) Mount(key, target string) error {
	if s.driver == FuseOverlayfs {
		dirs, rw, err := s.layout(key)
		if err != nil {
			return err
		}
		return s.mountFuse(key, target, dirs, rw)
	}
	opts, err := s.MountOptions(key)
	if err != nil {
		return err
	}
	if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay for %q on %s: %w", key, target, err)
	}
	return nil
}

// Unmount detaches target's mount; not mounted is not an error.
func Unmount(target string) error {
	err := unix.Unmount(target, unix.MNT_DETACH)
	if err == unix.EINVAL || err == unix.ENOENT {
		return nil
	}
	return err
}

// rwBase is the directory holding key's upper and work: rw/<key>, or the
// limited directory rw/<key>/fs, made ready (a loop image mounted again
// after a reboot, say).
func (s *Snapshotter) rwBase(key string) (string, error) {
	dir := s.rwDir(key)
	base := filepath.Join(dir, "fs")
	if _, err := os.Stat(base); err != nil {
		return dir, nil
	}
	if err := quota.Ready(base); err != nil {
		return "", err
	}
	return base, nil
}

// Remove deletes key's writable layer. The caller unmounts it first.
func (s *Snapshotter) Remove(key string) error {
	if !keyRE.MatchString(key) {
		return fmt.Errorf("snapshot key %q: %w", key, errdefs.ErrInvalid)
	}
	if err := quota.Remove(filepath.Join(s.rwDir(key), "fs")); err != nil {
		return fmt.Errorf("snapshot %q: %w", key, err)
	}
	return os.RemoveAll(s.rwDir(key))
}

// Usage returns the bytes used by key's writable layer (what docker calls
// SizeRw): the apparent size of every file in upper.
func (s *Snapshotter) Usage(key string) (int64, error) {
	if !keyRE.MatchString(key) {
		return 0, fmt.Errorf("snapshot key %q: %w", key, errdefs.ErrInvalid)
	}
	base, err := s.rwBase(key)
	if err != nil {
		return 0, err
	}
	return DirSize(filepath.Join(base, "upper"))
}

// DirSize sums the sizes of the regular files under dir, counting each
// hard-linked file once.
func DirSize(dir string) (int64, error) {
	var total int64
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*unix.Stat_t); ok && st.Nlink > 1 {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		total += fi.Size()
		return nil
	})
	return total, err
}

// Verify reports unpacked-layer directories that are not named by a valid
// digest and snapshots whose lower layers are missing.
func (s *Snapshotter) Verify() []error {
	var errs []error
	layers, err := s.Layers()
	if err != nil {
		return []error{err}
	}
	for _, l := range layers {
		if l.Validate() != nil {
			errs = append(errs, fmt.Errorf("layer directory %q is not a digest", l.Encoded()))
		}
	}
	if ents, _ := os.ReadDir(s.tmpDir()); len(ents) > 0 {
		errs = append(errs, fmt.Errorf("%d unfinished unpack(s) in %s", len(ents), s.tmpDir()))
	}
	keys, err := s.Snapshots()
	if err != nil {
		return append(errs, err)
	}
	for _, k := range keys {
		lower, err := s.Lower(k)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, l := range lower {
			if !slices.Contains(layers, l) {
				errs = append(errs, fmt.Errorf("snapshot %q: layer %s is missing", k, l))
			}
		}
	}
	return errs
}

// MountMapped mounts key's rootfs on target for a container in the user
// namespace ns, whose root is host uid:gid: each lower layer is an
// idmapped clone (a file stored as uid N shows as N's host id in ns), so
// layers are shared by every mapping and never copied or chowned. The
// upper directory is not mapped: what the container writes is stored
// with its host ids, and the upper's root is owned by the container's
// root. Layers are handed to overlayfs as file descriptors (fsconfig
// FSCONFIG_SET_FD, Linux 6.13).
func (s *Snapshotter) MountMapped(key, target string, ns *os.File, uid, gid int) error {
	dirs, rw, err := s.layout(key)
	if err != nil {
		return err
	}
	upper := filepath.Join(rw, "upper")
	if err := os.Lchown(upper, uid, gid); err != nil {
		return err
	}
	mfd, err := mappedOverlay(dirs, upper, filepath.Join(rw, "work"), ns)
	if err != nil {
		return fmt.Errorf("mount overlay for %q: %w", key, err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount overlay for %q on %s: %w", key, target, err)
	}
	return nil
}

// mappedOverlay makes a detached overlay mount (its descriptor) of the
// layer directories dirs, each an idmapped clone through ns handed over
// by descriptor (fsconfig lowerdir+, Linux 6.13), with upper and work.
func mappedOverlay(dirs []string, upper, work string, ns *os.File) (int, error) {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen: %w", err)
	}
	defer unix.Close(fsfd)
	// The clones stay open until the overlay is made: closing a detached
	// tree's last descriptor unmounts it.
	for _, d := range dirs {
		tree, err := userns.Clone(d, ns)
		if err != nil {
			return -1, err
		}
		defer tree.Close()
		if err := unix.FsconfigSetFd(fsfd, "lowerdir+", int(tree.Fd())); err != nil {
			return -1, fmt.Errorf("layer %s by descriptor (lowerdir+, Linux 6.13): %w", d, err)
		}
	}
	for _, kv := range [][2]string{{"upperdir", upper}, {"workdir", work}, {"index", "off"}} {
		if err := unix.FsconfigSetString(fsfd, kv[0], kv[1]); err != nil {
			return -1, fmt.Errorf("%s=%s: %w", kv[0], kv[1], err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, fmt.Errorf("on idmapped layers: %w%s", err, fsLog(fsfd))
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("fsmount: %w", err)
	}
	return mfd, nil
}

// fsLog reads the messages the kernel left on a filesystem context (the
// reason an fsconfig failed), as ": msg; msg", or "".
func fsLog(fsfd int) string {
	var out []string
	buf := make([]byte, 512)
	for range 8 {
		n, err := unix.Read(fsfd, buf)
		if err != nil || n <= 0 {
			break
		}
		out = append(out, strings.TrimSpace(string(buf[:n])))
	}
	if len(out) == 0 {
		return ""
	}
	return ": " + strings.Join(out, "; ")
}
