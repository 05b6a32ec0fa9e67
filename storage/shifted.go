package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/userns"
)

// Shifted layers are the fallback where layers cannot be idmapped (a
// kernel before idmapped overlay layers, a file system that refuses
// idmapped mounts): a chown-copy of each layer per mapping, made once
// under shifted/<uid>-<gid>/<diffID> with every id moved into the
// mapping's host range, and kept for the next container of that mapping.
// A copy is complete or absent: it is made in layers/tmp and renamed in.

func (s *Snapshotter) shiftedDir(m userns.Mapping) string {
	return filepath.Join(s.root, "shifted", fmt.Sprintf("%d-%d", m.UID.Start, m.GID.Start))
}

// MountShifted mounts key's rootfs on target for a container whose ids
// are m's, over chown-copied layers (made now if missing). The upper's
// root is owned by the container's root, as with MountMapped.
func (s *Snapshotter) MountShifted(key, target string, m userns.Mapping) error {
	lower, err := s.Lower(key)
	if err != nil {
		return err
	}
	dirs := make([]string, 0, len(lower))
	for _, l := range lower {
		d, err := s.shiftedLayer(l, m)
		if err != nil {
			return fmt.Errorf("snapshot %q: copy layer %s for uids from %d: %w", key, l.Encoded()[:12], m.UID.Start, err)
		}
		dirs = append(dirs, d)
	}
	if len(dirs) == 0 {
		if dirs, err = s.lowerDirs(key); err != nil {
			return err
		}
	}
	rw, err := s.rwBase(key)
	if err != nil {
		return err
	}
	if err := os.Lchown(filepath.Join(rw, "upper"), m.RootUID(), m.RootGID()); err != nil {
		return err
	}
	opts, err := s.overlayOptions(key, dirs, rw)
	if err != nil {
		return err
	}
	if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay for %q on %s: %w", key, target, err)
	}
	return nil
}

// shiftedLayer returns the directory of layer l's copy for m, making it.
func (s *Snapshotter) shiftedLayer(l digest.Digest, m userns.Mapping) (string, error) {
	dst := filepath.Join(s.shiftedDir(m), l.Encoded())
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	if err := os.MkdirAll(s.shiftedDir(m), 0o700); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(s.tmpDir(), "shift-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	copyDir := filepath.Join(tmp, "layer")
	if out, err := exec.Command("cp", "-a", "--reflink=auto", "--", s.LayerPath(l), copyDir).CombinedOutput(); err != nil {
		return "", fmt.Errorf("cp: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if err := ShiftTree(copyDir, m.ToHost); err != nil {
		return "", err
	}
	if err := os.Rename(copyDir, dst); err != nil {
		if errors.Is(err, fs.ErrExist) || errors.Is(err, unix.ENOTEMPTY) {
			return dst, nil // made by a container of the same mapping meanwhile
		}
		return "", err
	}
	return dst, nil
}

// ShiftTree changes the owner of every entry under dir by shift, links
// themselves and not their targets, keeping set-id bits (chown clears
// them).
func ShiftTree(dir string, shift func(uid, gid int) (int, int)) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		uid, gid := shift(int(st.Uid), int(st.Gid))
		if err := os.Lchown(p, uid, gid); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK && st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
			return unix.Chmod(p, st.Mode&0o7777)
		}
		return nil
	})
}

// RemoveShifted deletes the layer copies made for m (its last container
// is gone). The caller has unmounted every rootfs over them.
func (s *Snapshotter) RemoveShifted(m userns.Mapping) error {
	return os.RemoveAll(s.shiftedDir(m))
}

// removeShiftedLayer deletes every mapping's copy of layer l.
func (s *Snapshotter) removeShiftedLayer(l digest.Digest) error {
	dirs, _ := filepath.Glob(filepath.Join(s.root, "shifted", "*", l.Encoded()))
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	return nil
}

// ProbeMapped reports whether layers can be idmapped here (MountMapped
// works): an overlay of an idmapped copy of an empty directory, through
// the user namespace ns, is made and dropped. The error says why not.
func (s *Snapshotter) ProbeMapped(ns *os.File) error {
	tmp, err := s.probeDirs()
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	mfd, err := mappedOverlay([]string{filepath.Join(tmp, "lower")}, filepath.Join(tmp, "upper"), filepath.Join(tmp, "work"), ns)
	if err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	unix.Close(mfd) // a detached mount: closing it unmounts it
	return nil
}
