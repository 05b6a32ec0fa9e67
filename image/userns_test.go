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

// ownedImage pulls an image whose files have owners (etc/owned 1234:55,
// etc/suid set-uid root) into a new store, and gives a mapping to mount
// it for.
func ownedImage(t *testing.T) (*registry.Registry, string, *image.Store, *image.Image, userns.Mapping) {
	t.Helper()
	requireRoot(t)
	reg := registry.Start(t, registry.Options{})
	reg.Push(t, "owned:v1", registry.Image(t, "amd64", nil, registry.Layer(t, registry.Tar(t,
		registry.Entry{Name: "etc/", Type: '5'},
		registry.Entry{Name: "etc/owned", Body: "x", Uid: 1234, Gid: 55},
		registry.Entry{Name: "etc/suid", Body: "x", Mode: 0o4755}), "gzip")))
	root := t.TempDir()
	s := openStore(t, image.Options{Root: root})
	img, err := s.Pull(context.Background(), reg.Ref("owned:v1"), image.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := userns.Mapping{UID: userns.Range{Start: 2100000, Size: userns.BlockSize}, GID: userns.Range{Start: 2200000, Size: userns.BlockSize}}
	return reg, root, s, img, m
}

// A rootfs mounted for a user namespace shows the image's files owned by
// the mapped ids, keeps the layers as they are on disk, and stores what
// is written with host ids.
func TestRootfsMappedForAUserNamespace(t *testing.T) {
	reg, root, s, img, m := ownedImage(t)
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

// Where layers cannot be idmapped, each is chown-copied once per range:
// the rootfs shows the same owners as an idmapped one, set-id bits
// survive, the copy is reused by the next rootfs of the range, the layer
// itself is unchanged, and the copies go with RemoveShifted.
func TestRootfsShiftedForAUserNamespace(t *testing.T) {
	reg, root, s, img, m := ownedImage(t)
	stat := func(p string) (uint32, uint32, uint32) {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Uid, st.Gid, st.Mode & 0o7777
	}
	copyDir := filepath.Join(root, "storage/shifted/2100000-2200000", img.Config.RootFS.DiffIDs[0].Encoded())
	var firstIno uint64
	for _, key := range []string{"shifted1", "shifted2"} {
		if _, err := s.PrepareRootfs(key, reg.Ref("owned:v1")); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := s.MountRootfsShifted(key, dir, m); err != nil {
			s.RemoveRootfs(key)
			t.Fatal(err)
		}
		if u, g, _ := stat(filepath.Join(dir, "etc/owned")); u != 2101234 || g != 2200055 {
			t.Errorf("%s: etc/owned %d:%d, want 2101234:2200055", key, u, g)
		}
		if u, _, mode := stat(filepath.Join(dir, "etc/suid")); u != 2100000 || mode != 0o4755 {
			t.Errorf("%s: etc/suid uid %d mode %04o, want 2100000 04755", key, u, mode)
		}
		if u, g, _ := stat(dir); u != 2100000 || g != 2200000 {
			t.Errorf("%s: the root %d:%d, want the container root's", key, u, g)
		}
		var st syscall.Stat_t
		syscall.Stat(filepath.Join(copyDir, "etc/owned"), &st)
		if firstIno == 0 {
			firstIno = st.Ino
		} else if st.Ino != firstIno {
			t.Errorf("the second rootfs of the range made a new copy")
		}
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Error(err)
		}
		if err := s.RemoveRootfs(key); err != nil {
			t.Error(err)
		}
	}
	if u, g, _ := stat(filepath.Join(root, "storage/layers/sha256", img.Config.RootFS.DiffIDs[0].Encoded(), "etc/owned")); u != 1234 || g != 55 {
		t.Errorf("the layer on disk: %d:%d, want 1234:55", u, g)
	}
	if err := s.RemoveShifted(m); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(copyDir)); !os.IsNotExist(err) {
		t.Errorf("the range's copies after RemoveShifted: %v", err)
	}
}
