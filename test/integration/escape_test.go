package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/test/harness"
	"golang.org/x/sys/unix"
)

// TestRuntimeBinaryNotWritableFromContainer reproduces CVE-2019-5736: the
// container makes an exec'd runtime process exec /proc/self/exe (so the
// runtime binary runs inside the container), holds it through
// /proc/<pid>/exe, and tries to reopen it for writing once it exited. The
// runtime runs from a read-only mount, so the reopen must fail with EROFS.
func TestRuntimeBinaryNotWritableFromContainer(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Root.Readonly = false
	b.Spec.Process.Args = []string{"sleep", "60"}
	if err := os.Symlink("/proc/self/exe", filepath.Join(b.Rootfs, "evil-exe")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(b.Rootfs, "tmp/fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.Write()
	b.MustRuntime("run", "-d", b.ID)
	// The exec'd init execs /evil-exe: the kernel resolves /proc/self/exe
	// to the runtime binary. That runtime CLI fails to find a container and
	// blocks writing its error to --log /tmp/fifo until a reader comes.
	b.MustRuntime("exec", "-d", b.ID, "/evil-exe", "--log", "/tmp/fifo", "state", "none")
	// Detached, so that no runtime process stays running on the host (the
	// binary would be busy, ETXTBSY, rather than read-only).
	b.MustRuntime("exec", "-d", b.ID, "sh", "-c", "/bin/checker reopen-exe /tmp/fifo > /tmp/result 2>&1; echo done >> /tmp/result")
	var out string
	for i := 0; i < 1000 && !strings.Contains(out, "done"); i++ {
		data, _ := os.ReadFile(filepath.Join(b.Rootfs, "tmp/result"))
		out = string(data)
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(out, "holding") {
		t.Fatalf("the attack did not get hold of the runtime binary: %q", out)
	}
	if !strings.Contains(out, "read-only file system") {
		t.Errorf("runtime binary reopened from inside the container: %q", out)
	}
	b.MustRuntime("delete", "--force", b.ID)
	b.AssertNothingLeft()
}

// TestCwdThroughLeakedDescriptor: process.cwd naming a descriptor the
// runtime inherited (/proc/self/fd/N on a host directory, CVE-2024-21626)
// must not put the process in a host directory — whether or not the
// descriptor was passed on with --preserve-fds.
func TestCwdThroughLeakedDescriptor(t *testing.T) {
	for _, preserve := range []bool{false, true} {
		b := harness.NewBundle(t)
		hostDir := t.TempDir()
		os.WriteFile(filepath.Join(hostDir, "host-secret"), []byte("x"), 0o644)
		d, err := os.Open(hostDir)
		if err != nil {
			t.Fatal(err)
		}
		b.Spec.Process.Cwd = "/proc/self/fd/3"
		b.Spec.Process.Args = []string{"sh", "-c", "ls; pwd"}
		b.Write()
		args := []string{"run", b.ID}
		if preserve {
			args = []string{"run", "--preserve-fds", "1", b.ID}
		}
		r := b.RuntimeWith(func(c *exec.Cmd) { c.ExtraFiles = []*os.File{d} }, args...)
		d.Close()
		if strings.Contains(r.Stdout, "host-secret") {
			t.Errorf("preserve=%v: the container's cwd is the host directory: %s", preserve, r)
		}
		if r.Code == 0 {
			t.Errorf("preserve=%v: a cwd outside the root was accepted: %s", preserve, r)
		}
		b.AssertNothingLeft()
	}
}

// TestExecCwdThroughLeakedDescriptor: the same through `exec --cwd`, where
// no rootfs is prepared and only the init's own check stands.
func TestExecCwdThroughLeakedDescriptor(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Process.Args = []string{"sleep", "60"}
	b.Write()
	b.MustRuntime("run", "-d", b.ID)
	hostDir := t.TempDir()
	os.WriteFile(filepath.Join(hostDir, "host-secret"), []byte("x"), 0o644)
	d, err := os.Open(hostDir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, args := range [][]string{
		{"exec", "--preserve-fds", "1", "--cwd", "/proc/self/fd/3", b.ID, "sh", "-c", "ls; pwd"},
		{"exec", "--cwd", "/proc/self/fd/3", b.ID, "sh", "-c", "ls; pwd"},
	} {
		r := b.RuntimeWith(func(c *exec.Cmd) { c.ExtraFiles = []*os.File{d} }, args...)
		if strings.Contains(r.Stdout, "host-secret") || r.Code == 0 {
			t.Errorf("%v: %s", args, r)
		}
	}
	b.MustRuntime("delete", "--force", b.ID)
}
