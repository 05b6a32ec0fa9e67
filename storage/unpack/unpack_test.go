package unpack_test

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/storage/unpack"
	"github.com/berth-project/berth/test/registry"
)

func TestMetadataAndWhiteouts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: ownership, device-node whiteouts and trusted.* xattrs")
	}
	tb := registry.Tar(t,
		registry.Entry{Name: "./", Type: tar.TypeDir, Mode: 0o750},
		registry.Entry{Name: "ro/", Type: tar.TypeDir, Mode: 0o555, Uid: 7},
		registry.Entry{Name: "ro/child", Body: "c", Mode: 0o640},
		registry.Entry{Name: "deep/er/file", Body: "implied parents"},
		registry.Entry{Name: "fifo", Type: tar.TypeFifo, Mode: 0o620},
		registry.Entry{Name: "twice", Body: "first"},
		registry.Entry{Name: "twice", Body: "second"},
		registry.Entry{Name: "link", Type: tar.TypeSymlink, Linkname: "/nowhere", Uid: 3},
		registry.Entry{Name: "opq/", Type: tar.TypeDir},
		registry.Entry{Name: "opq/.wh..wh..opq"},
		registry.Entry{Name: ".wh.deleted"},
		registry.Entry{Name: "null", Type: tar.TypeChar},
	)
	dir := t.TempDir()
	n, err := unpack.Unpack(bytes.NewReader(tb), dir, unpack.Options{AllowDevices: true})
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len("c")+len("implied parents")+len("first")+len("second")+len("/nowhere")) {
		t.Errorf("%d bytes of content and link targets", n)
	}
	st := func(p string) unix.Stat_t {
		var s unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, p), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	mtime := time.Unix(1700000000, 0).Unix()
	for p, want := range map[string]uint32{".": unix.S_IFDIR | 0o750, "ro": unix.S_IFDIR | 0o555, "ro/child": unix.S_IFREG | 0o640, "fifo": unix.S_IFIFO | 0o620, "deep/er": unix.S_IFDIR | 0o755, "null": unix.S_IFCHR | 0o644} {
		s := st(p)
		if s.Mode != want {
			t.Errorf("%s: mode %o, want %o", p, s.Mode, want)
		}
		if p != "deep/er" && s.Mtim.Sec != mtime {
			t.Errorf("%s: mtime %d, want %d (directories set after their children)", p, s.Mtim.Sec, mtime)
		}
	}
	if s := st("ro"); s.Uid != 7 {
		t.Errorf("ro: uid %d", s.Uid)
	}
	if s := st("link"); s.Uid != 3 || s.Mode&unix.S_IFMT != unix.S_IFLNK {
		t.Errorf("link: uid %d mode %o", s.Uid, s.Mode)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "twice")); string(b) != "second" {
		t.Errorf("a repeated entry: %q, want the last", b)
	}
	if s := st("deleted"); s.Mode != unix.S_IFCHR || s.Rdev != 0 {
		t.Errorf("whiteout: mode %o rdev %d, want a 0/0 character device", s.Mode, s.Rdev)
	}
	buf := make([]byte, 4)
	if n, err := unix.Lgetxattr(filepath.Join(dir, "opq"), unpack.Opaque, buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque xattr: %q %v", buf[:n], err)
	}
}
