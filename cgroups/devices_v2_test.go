package cgroups

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestDeviceProgramEnforced attaches a device program to a cgroup2
// directory of its own (the unified hierarchy on v2, the cgroup2 mount of
// a hybrid host: device programs need no controller) and runs a shell in
// it: the devices the rules allow open, the others do not, and the last
// matching rule wins.
func TestDeviceProgramEnforced(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	root := Root
	if HostMode() == Hybrid {
		root = filepath.Join(Root, "unified")
	} else if HostMode() != Unified {
		t.Skip("no cgroup2 mount")
	}
	b := make([]byte, 5)
	rand.Read(b)
	dir := filepath.Join(root, "berth-devtest-"+hex.EncodeToString(b))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeDir(dir) })
	i := func(v int64) *int64 { return &v }
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i(1), Minor: i(3), Access: "rwm"},  // null
		{Allow: true, Type: "c", Major: i(1), Access: "rwm"},               // all of major 1 ...
		{Allow: false, Type: "c", Major: i(1), Minor: i(11), Access: "rw"}, // ... but kmsg
		{Allow: false, Type: "c", Major: i(1), Minor: i(5), Access: "w"},   // ... and writing zero
	}
	if err := setDevicesV2(dir, rules); err != nil {
		t.Fatal(err)
	}
	// Replacing the program leaves exactly one attached.
	if err := setDevicesV2(dir, rules); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	cmd := exec.Command("sh", "-c", `
head -c1 /dev/null && echo null
head -c1 /dev/urandom >/dev/null && echo urandom
head -c1 /dev/zero >/dev/null && echo zero-read
true >/dev/zero && echo zero-write
head -c0 /dev/kmsg && echo kmsg
true </dev/tty && echo tty
exit 0`)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(string(out))
	want := []string{"null", "urandom", "zero-read"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("devices usable under the rules: %v, want %v", got, want)
	}
}

func TestDeviceProgramBadRule(t *testing.T) {
	if _, err := DeviceProgram([]specs.LinuxDeviceCgroup{{Type: "x"}}); err == nil || !strings.Contains(err.Error(), "linux.resources.devices") {
		t.Errorf("bad type: %v", err)
	}
	// Letters but r, w and m are ignored, as runc ignores them.
	if _, err := DeviceProgram([]specs.LinuxDeviceCgroup{{Type: "c", Access: "rwx"}}); err != nil {
		t.Errorf("rwx: %v", err)
	}
}
