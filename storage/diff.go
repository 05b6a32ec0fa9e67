package storage

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/storage/unpack"
)

// Change is one path a writable layer changed, as docker diff reports it.
type Change struct {
	Path string // absolute, inside the container
	Kind int    // 0 modified, 1 added, 2 deleted (the Engine API's numbers)
}

// Change kinds.
const (
	Modified = 0
	Added    = 1
	Deleted  = 2
)

// placeholders are the mount points the runtime makes in a container's
// root (docker keeps them in an init layer). Empty, they are not changes
// the container made: docker diff and commit leave them out.
var placeholders = map[string]bool{"dev": true, "proc": true, "sys": true,
	"etc/hostname": true, "etc/hosts": true, "etc/resolv.conf": true}

// isPlaceholder reports whether rel is a mount point the runtime made and
// nothing filled.
func isPlaceholder(rel string, fi fs.FileInfo, p string) bool {
	if !placeholders[filepath.ToSlash(rel)] {
		return false
	}
	if fi.Mode().IsRegular() {
		return fi.Size() == 0
	}
	if fi.IsDir() {
		ents, err := os.ReadDir(p)
		return err == nil && len(ents) == 0
	}
	return false
}

// UpperDir is the directory holding what key's container wrote, in
// overlayfs form.
func (s *Snapshotter) UpperDir(key string) (string, error) {
	if !keyRE.MatchString(key) {
		return "", fmt.Errorf("snapshot key %q: %w", key, errdefs.ErrInvalid)
	}
	if _, err := os.Stat(s.rwDir(key)); err != nil {
		return "", fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
	}
	base, err := s.rwBase(key)
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "upper"), nil
}

// isWhiteout reports whether fi is overlayfs's whiteout, a 0/0 char device.
func isWhiteout(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0
}

func isOpaque(p string) bool {
	b := make([]byte, 8)
	n, err := unix.Lgetxattr(p, unpack.Opaque, b)
	return err == nil && n == 1 && b[0] == 'y'
}

// inLower reports whether rel exists in key's lower layers: in the topmost
// that has an entry for it, that entry is not a whiteout. (Opaque
// directories above it are not looked at.)
func (s *Snapshotter) inLower(lower []digest.Digest, rel string) bool {
	for _, l := range lower {
		p := filepath.Join(s.LayerPath(l), rel)
		fi, err := os.Lstat(p)
		if err == nil {
			return !isWhiteout(fi)
		}
	}
	return false
}

// Changes lists what key's writable layer added, changed and deleted,
// sorted by path, as docker diff prints it.
func (s *Snapshotter) Changes(key string) ([]Change, error) {
	upper, err := s.UpperDir(key)
	if err != nil {
		return nil, err
	}
	lower, err := s.Lower(key)
	if err != nil {
		return nil, err
	}
	var out []Change
	err = filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == upper {
			return nil
		}
		rel, _ := filepath.Rel(upper, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		abs := "/" + filepath.ToSlash(rel)
		if isPlaceholder(rel, fi, p) {
			return nil
		}
		switch {
		case isWhiteout(fi):
			out = append(out, Change{Path: abs, Kind: Deleted})
		case s.inLower(lower, rel):
			out = append(out, Change{Path: abs, Kind: Modified})
		default:
			out = append(out, Change{Path: abs, Kind: Added})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("changes of %q: %w", key, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	// A directory that was only copied up for placeholders under it is
	// not a change either.
	kept := out[:0]
	for i, c := range out {
		if c.Kind == Modified && (i+1 == len(out) || !strings.HasPrefix(out[i+1].Path, c.Path+"/")) {
			if fi, err := os.Lstat(filepath.Join(upper, c.Path)); err == nil && fi.IsDir() {
				continue
			}
		}
		kept = append(kept, c)
	}
	return kept, nil
}

// WriteLayer writes key's writable layer to w as an uncompressed OCI layer
// tar: overlayfs whiteouts become .wh. entries, opaque directories get
// .wh..wh..opq, hard links within the layer stay links. Entries are in
// walk order (lexical), times as on disk, so the same upper dir gives the
// same bytes. mapIDs, if set, turns the ids on disk into the ids archived
// (a user-namespaced container's host ids into its own).
func (s *Snapshotter) WriteLayer(key string, w io.Writer, mapIDs func(uid, gid int) (int, int)) error {
	upper, err := s.UpperDir(key)
	if err != nil {
		return err
	}
	return WriteDirLayer(upper, w, mapIDs)
}

// WriteDirLayer is WriteLayer for an upper directory given by path.
func WriteDirLayer(upper string, w io.Writer, mapIDs func(uid, gid int) (int, int)) error {
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{} // dev, inode → first name
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == upper {
			return nil
		}
		rel, _ := filepath.Rel(upper, p)
		name := filepath.ToSlash(rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if isPlaceholder(rel, fi, p) {
			if fi.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if isWhiteout(fi) {
			dir, base := path.Split(name)
			return tw.WriteHeader(&tar.Header{Name: dir + ".wh." + base, Typeflag: tar.TypeReg, Mode: 0o600, ModTime: fi.ModTime(), Format: tar.FormatPAX})
		}
		link := ""
		if fi.Mode().IsRegular() {
			st := fi.Sys().(*syscall.Stat_t)
			if st != nil && st.Nlink > 1 {
				k := [2]uint64{st.Dev, st.Ino}
				if first, ok := links[k]; ok {
					link = first
				} else {
					links[k] = name
				}
			}
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		hdr.Name = name
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if link != "" && fi.Mode().IsRegular() {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, link, 0
		}
		hdr.Uname, hdr.Gname = "", ""
		if mapIDs != nil {
			hdr.Uid, hdr.Gid = mapIDs(hdr.Uid, hdr.Gid)
		}
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
		if caps, err := getxattr(p, "security.capability"); err == nil && len(caps) > 0 {
			hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": string(caps)}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		if fi.IsDir() && isOpaque(p) {
			return tw.WriteHeader(&tar.Header{Name: name + "/.wh..wh..opq", Typeflag: tar.TypeReg, Mode: 0o600, ModTime: fi.ModTime(), Format: tar.FormatPAX})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("writing layer of %s: %w", upper, err)
	}
	return tw.Close()
}

func getxattr(p, name string) ([]byte, error) {
	b := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, b)
	if errors.Is(err, unix.ERANGE) {
		b = make([]byte, 64<<10)
		n, err = unix.Lgetxattr(p, name, b)
	}
	if err != nil {
		return nil, err
	}
	return b[:n], nil
}
