package engine

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/berth-project/berth/errdefs"
	"golang.org/x/sys/unix"
)

// Export writes a container's filesystem (the image's layers and its
// writable layer, merged) to w as a tar, as docker export does. A container
// that is not running has its root filesystem mounted for the time of the
// export. Symbolic links are archived as links, never followed.
func (e *Engine) Export(ref string, w io.Writer) error {
	e.mu.Lock()
	c, err := e.lookup(ref)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	id, running := c.rec.ID, c.rec.State.Running()
	if !running {
		// The writable layer is mounted here for the export: no start
		// may mount it at the same time.
		if c.busy != "" {
			e.mu.Unlock()
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s is %s", id, c.busy))
		}
		c.busy = "exporting"
		defer e.unbusy(c)
	}
	e.mu.Unlock()
	root := filepath.Join(e.bundleDir(id), "rootfs")
	if !running {
		tmp, err := os.MkdirTemp(filepath.Join(e.o.ExecRoot, "containers"), "export-")
		if err != nil {
			return err
		}
		defer os.Remove(tmp)
		if err := e.o.Images.MountRootfs(id, tmp); err != nil {
			return fmt.Errorf("mount the root filesystem of %s: %w", id, err)
		}
		defer unix.Unmount(tmp, unix.MNT_DETACH)
		root = tmp
	}
	tw := tar.NewWriter(w)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if d.IsDir() {
			hdr.Name += "/"
		}
		if st, ok := info.Sys().(*unix.Stat_t); ok {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
			hdr.Uname, hdr.Gname = "", ""
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return fmt.Errorf("export %s: %w", id, err)
	}
	return tw.Close()
}
