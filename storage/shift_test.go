package storage

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-project/berth/userns"
)

// ShiftTree moves owners by a mapping (here host ids back to container
// ids, as for a volume's copy-up), set-id bits kept, links not followed.
func TestShiftTree(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	m := userns.Mapping{UID: userns.Range{Start: 200000, Size: 65536}, GID: userns.Range{Start: 300000, Size: 65536}}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "d"), 0o755)
	suid := filepath.Join(dir, "d", "suid")
	os.WriteFile(suid, nil, 0o755)
	outside := filepath.Join(t.TempDir(), "outside")
	os.WriteFile(outside, nil, 0o644)
	os.Symlink(outside, filepath.Join(dir, "link"))
	for p, ids := range map[string][2]int{dir: {200000, 300000}, filepath.Join(dir, "d"): {201000, 301000}, suid: {200005, 300007}, filepath.Join(dir, "link"): {200001, 300001}} {
		if err := os.Lchown(p, ids[0], ids[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(suid, os.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	if err := ShiftTree(dir, m.ToContainer); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string][3]uint32{dir: {0, 0, 0o755}, filepath.Join(dir, "d"): {1000, 1000, 0o755}, suid: {5, 7, 0o4755}, outside: {0, 0, 0o644}} {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != want[0] || st.Gid != want[1] || st.Mode&0o7777 != want[2] {
			t.Errorf("%s: %d:%d %04o, want %d:%d %04o", p, st.Uid, st.Gid, st.Mode&0o7777, want[0], want[1], want[2])
		}
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(dir, "link"), &st); err != nil || st.Uid != 1 || st.Gid != 1 {
		t.Errorf("the link itself: %d:%d %v, want 1:1", st.Uid, st.Gid, err)
	}
}

// SetDriver: the kernel's overlayfs where a probe mount works, a named
// driver when asked, and an unknown one refused with the choices.
func TestSetDriver(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting overlayfs needs root")
	}
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if d, err := s.SetDriver(""); err != nil || d != Overlay || s.Driver() != Overlay {
		t.Errorf("auto: %q %v, want %s", d, err, Overlay)
	}
	if _, err := s.SetDriver("zfs"); err == nil || !strings.Contains(err.Error(), "overlay2 or fuse-overlayfs") {
		t.Errorf("an unknown driver: %v", err)
	}
	if ents, _ := os.ReadDir(s.tmpDir()); len(ents) != 0 {
		t.Errorf("the probe left %d entries in layers/tmp", len(ents))
	}
}
