package build

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/container/rootfs"
	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/storage"
	"github.com/berth-project/berth/storage/unpack"
)

// copySpec is a COPY or ADD instruction.
type copySpec struct {
	instructions.SourcesAndDest
	from, chown, chmod string
	add                bool
}

// source is one file or directory to copy: where it is on the host and
// the name it keeps under a directory destination.
type source struct {
	host string
	base string
	fi   fs.FileInfo
}

// RootfsPrefix starts the keys of the writable roots that COPY steps
// mount; one left by a crash is removed when berthd starts.
const RootfsPrefix = "build-"

// mounted is an image's root mounted for a step; release undoes it.
type mounted struct {
	dir, key string
	b        *Builder
}

func (b *Builder) mount(id digest.Digest) (*mounted, error) {
	var rnd [6]byte
	rand.Read(rnd[:])
	m := &mounted{b: b, key: RootfsPrefix + hex.EncodeToString(rnd[:])}
	if err := os.MkdirAll(b.TmpDir, 0o700); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(b.TmpDir, m.key+"-")
	if err != nil {
		return nil, err
	}
	m.dir = dir
	if err := b.Images.PrepareBuildRootfs(m.key, id); err != nil {
		os.Remove(dir)
		return nil, err
	}
	if err := b.Images.MountRootfs(m.key, dir); err != nil {
		b.Images.RemoveRootfs(m.key)
		os.Remove(dir)
		return nil, err
	}
	return m, nil
}

// unmount detaches the root, keeping its writable layer.
func (m *mounted) unmount() error {
	if m.dir == "" {
		return nil
	}
	if err := storage.Unmount(m.dir); err != nil {
		return err
	}
	os.Remove(m.dir)
	m.dir = ""
	return nil
}

// release unmounts and removes the writable layer.
func (m *mounted) release() {
	m.unmount()
	m.b.Images.RemoveRootfs(m.key)
}

func (r *run) copyStep(s *stageState, c instructions.Command, cs copySpec) error {
	name := strings.ToUpper(c.Name())
	if len(cs.SourceContents) > 0 {
		return errdefs.New(errdefs.ErrInvalid, name+" with a heredoc needs BuildKit; this builder is docker's classic one")
	}
	srcRoot := r.dir
	if cs.from != "" {
		id, err := r.fromImage(cs.from)
		if err != nil {
			return err
		}
		m, err := r.b.mount(id)
		if err != nil {
			return err
		}
		defer m.release()
		srcRoot = m.dir
	}
	var srcs []source
	glob := false
	for _, p := range cs.SourcePaths {
		if cs.add && (strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://") || strings.HasPrefix(p, "git@")) {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("ADD %s: remote sources are not fetched by this builder; download it into the build context and ADD that", p))
		}
		found, isGlob, err := r.sources(srcRoot, p, cs.from != "")
		if err != nil {
			return err
		}
		glob = glob || isGlob
		srcs = append(srcs, found...)
	}
	dest := absIn(s.config.WorkingDir, cs.DestPath)
	toDir := strings.HasSuffix(cs.DestPath, "/") || strings.HasSuffix(cs.DestPath, "/.") || cs.DestPath == "." || len(srcs) > 1 || glob
	if len(cs.SourcePaths) > 1 && !toDir {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("When using %s with more than one source file, the destination must be a directory and end with a /", name))
	}
	var chmod *os.FileMode
	if cs.chmod != "" {
		m, err := strconv.ParseUint(cs.chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid chmod parameter: %s", cs.chmod))
		}
		fm := os.FileMode(m)
		chmod = &fm
	}
	h := sha256.New()
	for _, src := range srcs {
		if err := hashTree(h, src); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	sum := hex.EncodeToString(h.Sum(nil))
	key := cacheKey(s.id, "copy", sourceOf(c), s.config.WorkingDir, sum)
	if r.fromCache(s, key) {
		return nil
	}
	m, err := r.b.mount(s.id)
	if err != nil {
		return err
	}
	defer m.release()
	rootfd, err := unix.Open(m.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)
	uid, gid := 0, 0
	if cs.chown != "" {
		if uid, gid, err = lookupOwner(rootfd, cs.chown); err != nil {
			return err
		}
	}
	if !toDir {
		if fd, err := rootfs.OpenInRoot(rootfd, dest); err == nil {
			var st unix.Stat_t
			if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
				toDir = true
			}
			unix.Close(fd)
		}
	}
	cp := &copier{uid: uid, gid: gid, chmod: chmod}
	for _, src := range srcs {
		var err error
		switch {
		case src.fi.IsDir():
			err = cp.intoDir(rootfd, dest, src, true)
		case cs.add && isArchive(src.host):
			err = cp.extract(rootfd, dest, src.host)
		case toDir:
			err = cp.intoDir(rootfd, dest, src, false)
		default:
			err = cp.intoDir(rootfd, path.Dir(dest), source{host: src.host, base: path.Base(dest), fi: src.fi}, false)
		}
		if err != nil {
			return fmt.Errorf("%s failed: %w", name, err)
		}
	}
	if err := m.unmount(); err != nil {
		return err
	}
	img, err := r.b.Images.Commit(image.CommitOptions{Parent: s.id, Config: s.config,
		Layer:   r.b.Images.RootfsLayer(m.key),
		History: historyOf(fmt.Sprintf("/bin/sh -c #(nop) %s %s:%s in %s ", name, sourceKind(srcs), sum, dest))})
	if err != nil {
		return err
	}
	return r.stepDone(s, key, img)
}

// fromImage names the image COPY --from reads: an earlier stage by name or
// index, else an image.
func (r *run) fromImage(from string) (digest.Digest, error) {
	if st, ok := r.stages[strings.ToLower(from)]; ok {
		return st.id, nil
	}
	img, err := r.b.Images.Get(from)
	if err != nil && errdefs.NotFound(err) {
		img, err = r.b.Images.Pull(r.ctx, from, image.PullOptions{})
	}
	if err != nil {
		return "", fmt.Errorf("COPY --from=%s: %w", from, err)
	}
	return img.ID, nil
}

// sources resolves one source of COPY or ADD inside root (the context, or
// a stage's root when inRoot): a path or a glob, never outside root, never
// through a symlink out of it, never a file .dockerignore excludes.
func (r *run) sources(root, p string, inRoot bool) ([]source, bool, error) {
	clean := path.Clean("/" + filepath.ToSlash(p))
	if !inRoot && strings.HasPrefix(path.Clean(filepath.ToSlash(p)), "../") {
		return nil, false, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("COPY failed: forbidden path outside the build context: %s", p))
	}
	rel := strings.TrimPrefix(clean, "/")
	if strings.ContainsAny(rel, "*?[") {
		var out []source
		err := filepath.WalkDir(root, func(hp string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rp, _ := filepath.Rel(root, hp)
			if rp == "." {
				return nil
			}
			ok, _ := path.Match(rel, filepath.ToSlash(rp))
			if ok && !r.ignored(rp, inRoot) {
				fi, err := d.Info()
				if err != nil {
					return err
				}
				out = append(out, source{host: hp, base: d.Name(), fi: fi})
			}
			if d.IsDir() && strings.Count(filepath.ToSlash(rp), "/") >= strings.Count(rel, "/") {
				return filepath.SkipDir
			}
			return nil
		})
		if err != nil {
			return nil, true, err
		}
		if len(out) == 0 {
			return nil, true, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("COPY failed: no source files were specified for %s", p))
		}
		return out, true, nil
	}
	host := filepath.Join(root, rel)
	if inRoot && rel != "" {
		rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, false, err
		}
		defer unix.Close(rootfd)
		fd, err := rootfs.OpenInRoot(rootfd, rel)
		if err != nil {
			return nil, false, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("COPY failed: stat %s: file does not exist", clean))
		}
		defer unix.Close(fd)
		real, err := os.Readlink(rootfs.ProcFd(fd))
		if err != nil {
			return nil, false, err
		}
		host = real
	}
	fi, err := os.Lstat(host)
	if err != nil || (rel != "" && r.ignored(rel, inRoot)) {
		return nil, false, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("COPY failed: file not found in build context or excluded by .dockerignore: stat %s: file does not exist", rel))
	}
	return []source{{host: host, base: path.Base(clean), fi: fi}}, false, nil
}

// ignored reports whether .dockerignore excludes rel from the context.
func (r *run) ignored(rel string, inRoot bool) bool {
	if inRoot || r.ignore == nil {
		return false
	}
	ok, _ := r.ignore.MatchesOrParentMatches(filepath.ToSlash(rel))
	return ok
}

// hashTree feeds src's names, modes and contents to h: the cache key of a
// COPY changes when any of them does.
func hashTree(h io.Writer, src source) error {
	return filepath.Walk(src.host, func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src.host, p)
		fmt.Fprintf(h, "%s\x00%s\x00%o\x00%d\x00", src.base, rel, fi.Mode(), fi.Size())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			t, _ := os.Readlink(p)
			io.WriteString(h, t)
		case fi.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(h, f)
			f.Close()
			return err
		}
		return nil
	})
}

// copier writes sources into a mounted root.
type copier struct {
	uid, gid int
	chmod    *os.FileMode
}

// intoDir copies src under the directory dir of the root (made if
// missing, resolved in the root): a directory's content when contents,
// else src itself as dir/src.base.
func (cp *copier) intoDir(rootfd int, dir string, src source, contents bool) error {
	fd, err := rootfs.MkdirAllIn(rootfd, dir, 0o755)
	if err != nil {
		return fmt.Errorf("destination %s: %w", dir, err)
	}
	defer unix.Close(fd)
	root, err := os.OpenRoot(rootfs.ProcFd(fd))
	if err != nil {
		return err
	}
	defer root.Close()
	if !contents {
		return cp.one(root, src.host, src.base, src.fi)
	}
	return filepath.Walk(src.host, func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src.host, p)
		if rel == "." {
			return nil
		}
		return cp.one(root, p, rel, fi)
	})
}

// one copies a single entry (not recursing) to name in root.
func (cp *copier) one(root *os.Root, host, name string, fi fs.FileInfo) error {
	mode := fi.Mode().Perm() | fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	if cp.chmod != nil {
		mode = *cp.chmod
	}
	if old, err := root.Lstat(name); err == nil && !(old.IsDir() && fi.IsDir()) {
		if err := root.RemoveAll(name); err != nil {
			return err
		}
	}
	switch {
	case fi.IsDir():
		if err := root.Mkdir(name, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(host)
		if err != nil {
			return err
		}
		if err := root.Symlink(t, name); err != nil {
			return err
		}
		return root.Lchown(name, cp.uid, cp.gid)
	case fi.Mode().IsRegular():
		in, err := os.Open(host)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, in)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s: not a file, directory or symlink", name)
	}
	if err := root.Lchown(name, cp.uid, cp.gid); err != nil {
		return err
	}
	if err := root.Chmod(name, mode); err != nil {
		return err
	}
	return root.Chtimes(name, fi.ModTime(), fi.ModTime())
}

// sourceKind names a COPY's sources in its history line as docker does:
// file (one file), dir (one directory) or multi.
func sourceKind(srcs []source) string {
	switch {
	case len(srcs) != 1:
		return "multi"
	case srcs[0].fi.IsDir():
		return "dir"
	}
	return "file"
}

// isArchive reports whether ADD extracts the file: a tar, plain or
// compressed with gzip or bzip2.
func isArchive(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	r, err := decompress(f)
	if err != nil {
		return false
	}
	hdr := make([]byte, 512)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return false
	}
	return bytes.Equal(hdr[257:262], []byte("ustar"))
}

// UnpackContext unpacks a build context (a tar, plain or compressed with
// gzip or bzip2, as docker build may send it) into dir, with the layer
// unpacker's guarantees: nothing written outside dir.
func UnpackContext(body io.Reader, dir string) error {
	r, err := decompress(body)
	if err == nil {
		_, err = unpack.Unpack(r, dir, unpack.Options{})
	}
	if err != nil {
		return errdefs.New(errdefs.ErrInvalid, "build context: "+err.Error())
	}
	return nil
}

// decompress reads through gzip or bzip2 when the stream starts with
// their magic number, else as it is.
func decompress(f io.Reader) (io.Reader, error) {
	br := bufio.NewReader(f)
	magic, _ := br.Peek(3)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzip.NewReader(br)
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(br), nil
	}
	return br, nil
}

// extract unpacks the archive at host into the directory dir of the root,
// with the layer unpacker's guarantees: nothing written outside dir.
func (cp *copier) extract(rootfd int, dir, host string) error {
	fd, err := rootfs.MkdirAllIn(rootfd, dir, 0o755)
	if err != nil {
		return fmt.Errorf("destination %s: %w", dir, err)
	}
	defer unix.Close(fd)
	f, err := os.Open(host)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := decompress(f)
	if err != nil {
		return err
	}
	_, err = unpack.Unpack(r, rootfs.ProcFd(fd), unpack.Options{})
	return err
}

// lookupOwner resolves --chown's user[:group], by number or by name in the
// root's /etc/passwd and /etc/group.
func lookupOwner(rootfd int, spec string) (int, int, error) {
	user, group, hasGroup := strings.Cut(spec, ":")
	uid, gid := -1, -1
	var err error
	if uid, err = strconv.Atoi(user); err != nil {
		u, g, ok := lookupName(rootfd, "/etc/passwd", user)
		if !ok {
			return 0, 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unable to convert uid/gid chown string to host mapping: can't find uid for user %s: no such user: %s", user, user))
		}
		uid, gid = u, g
	} else if !hasGroup {
		gid = uid
	}
	if hasGroup {
		if gid, err = strconv.Atoi(group); err != nil {
			g, _, ok := lookupName(rootfd, "/etc/group", group)
			if !ok {
				return 0, 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unable to convert uid/gid chown string to host mapping: can't find gid for group %s: no such group: %s", group, group))
			}
			gid = g
		}
	}
	if gid < 0 {
		gid = uid
	}
	return uid, gid, nil
}

// lookupName finds name in a passwd or group file of the root: its third
// field and, for passwd, its fourth.
func lookupName(rootfd int, file, name string) (int, int, bool) {
	fd, err := rootfs.OpenInRoot(rootfd, file)
	if err != nil {
		return 0, 0, false
	}
	defer unix.Close(fd)
	b, err := os.ReadFile(rootfs.ProcFd(fd))
	if err != nil {
		return 0, 0, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) >= 3 && f[0] == name {
			a, err := strconv.Atoi(f[2])
			if err != nil {
				return 0, 0, false
			}
			b := a
			if len(f) >= 4 {
				if n, err := strconv.Atoi(f[3]); err == nil {
					b = n
				}
			}
			return a, b, true
		}
	}
	return 0, 0, false
}
