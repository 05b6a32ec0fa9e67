package userns

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/errdefs"
)

func TestReadSubIDs(t *testing.T) {
	p := filepath.Join(t.TempDir(), "subuid")
	os.WriteFile(p, []byte("# comment\nalice:100000:65536\nberth:200000:131072\n1234:400000:65536\nberth:600000:10\n"), 0o644)
	got, err := ReadSubIDs(p, "berth", 1234)
	want := []Range{{200000, 131072}, {400000, 65536}, {600000, 10}}
	if err != nil || len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("ReadSubIDs = %v, %v; want %v", got, err, want)
	}
	if got, err := ReadSubIDs(filepath.Join(t.TempDir(), "none"), "berth", 1); err != nil || got != nil {
		t.Errorf("missing file: %v, %v", got, err)
	}
	os.WriteFile(p, []byte("berth:100000\n"), 0o644)
	if _, err := ReadSubIDs(p, "berth", 1); !errdefs.Invalid(err) || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("broken line: %v", err)
	}
}

// Blocks are disjoint, handed out once, come back when freed, and the
// pool says when it is empty.
func TestPool(t *testing.T) {
	// 3 whole uid blocks (the tail of the second range is too short), 2 gid blocks.
	p := NewPool([]Range{{100000, 2 * BlockSize}, {500000, BlockSize + 5}}, []Range{{100000, 2 * BlockSize}}, "the subordinate ids of user berth")
	if p.Size() != 2 {
		t.Fatalf("size %d, want 2", p.Size())
	}
	a, err := p.Alloc("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Alloc("b")
	if err != nil {
		t.Fatal(err)
	}
	if a.UID == b.UID || a.GID == b.GID || a.UID.Start+BlockSize > b.UID.Start && b.UID.Start+BlockSize > a.UID.Start {
		t.Fatalf("overlapping blocks: %+v %+v", a, b)
	}
	if _, err := p.Alloc("c"); !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "user berth") {
		t.Fatalf("exhausted pool: %v", err)
	}
	p.Free("a")
	c, err := p.Alloc("c")
	if err != nil || c != a {
		t.Fatalf("after a freed: %+v %v, want a's %+v", c, err, a)
	}
	q := NewPool([]Range{{100000, 2 * BlockSize}}, []Range{{100000, 2 * BlockSize}}, "x")
	if err := q.Reserve("b", b); err != nil {
		t.Fatal(err)
	}
	if err := q.Reserve("z", b); !errdefs.Conflict(err) {
		t.Errorf("one block reserved for two owners: %v", err)
	}
	if d, err := q.Alloc("d"); err != nil || d.UID == b.UID {
		t.Errorf("alloc after reserve: %+v %v", d, err)
	}
}

func TestMappingIDs(t *testing.T) {
	m := Mapping{UID: Range{100000, BlockSize}, GID: Range{300000, BlockSize}}
	if u, g := m.ToHost(0, 5); u != 100000 || g != 300005 {
		t.Errorf("ToHost(0,5) = %d,%d", u, g)
	}
	if u, g := m.ToHost(70000, -1); u != 65534 || g != 65534 {
		t.Errorf("ToHost outside = %d,%d", u, g)
	}
	if u, g := m.ToContainer(100007, 0); u != 7 || g != 65534 {
		t.Errorf("ToContainer = %d,%d", u, g)
	}
}

// A tree cloned through a namespace's mapping shows its files owned by
// the mapped ids.
func TestCloneMapsIDs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	m := Mapping{UID: Range{3100000, BlockSize}, GID: Range{3200000, BlockSize}}
	ns, err := Open(m)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	src, dst := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), nil, 0o644)
	os.Lchown(filepath.Join(src, "f"), 7, 8)
	tree, err := Clone(src, ns)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	dstfd, err := unix.Open(dst, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dstfd)
	if err := Attach(tree, dstfd); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(dst, unix.MNT_DETACH)
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dst, "f"), &st); err != nil || st.Uid != 3100007 || st.Gid != 3200008 {
		t.Errorf("through the mapping: uid %d gid %d (%v), want 3100007 3200008", st.Uid, st.Gid, err)
	}
	// Host root is not in the mapping: it cannot make files through it.
	if err := os.WriteFile(filepath.Join(dst, "g"), nil, 0o644); err == nil {
		t.Error("host root wrote through the mapping")
	}
}
