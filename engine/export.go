package engine

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Export writes a container's filesystem (the image's layers and its
// writable layer, merged) to w as a tar, as docker export does. A container
// that is not running has its root filesystem mounted for the time of the
// export. Symbolic links are archived as links, never followed.
func (e *Engine) Export(ref string, w io.Writer) error {
	var c *ctr
	var rec Record
	var id string
	var running bool
	if err := e.withCtr(ref, func(found *ctr) error {
		c, rec, id, running = found, found.rec, found.rec.ID, found.rec.State.Running()
		// The writable layer is mounted here for the export: no start
		// may mount it at the same time.
		return e.claimStopped(c, running, "exporting")
	}); err != nil {
		return err
	}
	if !running {
		defer e.unbusy(c)
	}
	root := filepath.Join(e.bundleDir(id), "rootfs")
	if !running {
		tmp, err := os.MkdirTemp(filepath.Join(e.o.ExecRoot, "containers"), "export-")
		if err != nil {
			return err
		}
		defer os.Remove(tmp)
		if err := e.mountRootfs(&rec, tmp); err != nil {
			return fmt.Errorf("mount the root filesystem of %s: %w", id, err)
		}
		defer unix.Unmount(tmp, unix.MNT_DETACH)
		root = tmp
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	tw := tar.NewWriter(w)
	err = fs.WalkDir(r.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		info, err := r.Lstat(p)
		if err != nil {
			return err
		}
		return tarEntry(tw, r, p, p, info, rec.IDMap)
	})
	if err != nil {
		return fmt.Errorf("export %s: %w", id, err)
	}
	return tw.Close()
}
