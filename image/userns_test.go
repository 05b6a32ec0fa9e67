package image_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/test/registry"
	"github.com/berth-project/berth/userns"
)

// A rootfs mounted for a user namespace shows the image's files owned by
// the mapped ids, keeps the layers as they are on disk, and stores what
// is written with host ids.
func TestRootfsMappedForAUserNamespace(t *testing.T) {
	requireRoot(t)
	reg := registry.Start(t, registry.Options{})
	reg.Push(t, "owned:v1", registry.Image(t, "amd64", nil, registry.Layer(t, registry.Tar(t,
		registry.Entry{Name: "etc/", Type: '5'},
		registry.Entry{Name: "etc/owned", Body: "x", Uid: 1234, Gid: 55}), "gzip")))
	root := t.TempDir()
	s := openStore(t, image.Options{Root: root})
	img, err := s.Pull(context.Background(), reg.Ref("owned:v1"), image.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := userns.Mapping{UID: userns.Range{Start: 2100000, Size: userns.BlockSize}, GID: userns.Range{Start: 2200000, Size: userns.BlockSize}}
	ns, err := userns.Open(m)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if _, err := s.PrepareRootfs("mapped", reg.Ref("owned:v1")); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := s.MountRootfsMapped("mapped", dir, ns, m.RootUID(), m.RootGID()); err != nil {
		s.RemoveRootfs("mapped")
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Unmount(dir, unix.MNT_DETACH)
		if err := s.RemoveRootfs("mapped"); err != nil {
			t.Error(err)
		}
	})
	stat := func(p string) (uint32, uint32) {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Uid, st.Gid
	}
	if u, g := stat(filepath.Join(dir, "etc/owned")); u != 2101234 || g != 2200055 {
		t.Errorf("etc/owned in the mapped rootfs: %d:%d, want 2101234:2200055", u, g)
	}
	if u, g := stat(dir); u != 2100000 || g != 2200000 {
		t.Errorf("the rootfs's root: %d:%d, want the container root's 2100000:2200000", u, g)
	}
	// The layer on disk is unchanged: the same image serves every mapping.
	layer := filepath.Join(root, "storage/layers/sha256", img.Config.RootFS.DiffIDs[0].Encoded(), "etc/owned")
	if u, g := stat(layer); u != 1234 || g != 55 {
		t.Errorf("the layer on disk: %d:%d, want 1234:55", u, g)
	}
	// A copy-up keeps the mapped owner in the upper directory.
	if err := os.WriteFile(filepath.Join(dir, "etc/owned"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	if u, _ := stat(filepath.Join(root, "storage/rw/mapped/upper/etc/owned")); u != 2101234 {
		t.Errorf("copied up: uid %d on disk, want the host id 2101234", u)
	}
}
