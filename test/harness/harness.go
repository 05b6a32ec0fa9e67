// Package harness runs berth-runtime for real in tests: it builds the
// runtime and the checker once, makes synthetic bundles (busybox-static and
// the checker, no download), and checks that nothing is left behind.
//
// Every helper needs root; RequireRoot skips a test with the reason.
package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/test/checker/report"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var (
	binDir     string
	runtimeBin string
	checkerBin string
	busybox    string
)

// Main builds the binaries, runs the tests and removes the binaries, and
// runs after (other harnesses' clean-ups) before it exits. Call it from
// TestMain.
func Main(m *testing.M, after ...func()) {
	code := func() int {
		if os.Geteuid() != 0 {
			return m.Run() // every test skips itself
		}
		var err error
		if binDir = os.Getenv(PrebuiltEnv); binDir == "" {
			if binDir, err = os.MkdirTemp("", "berth-test-bin-"); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(binDir)
			if err := build(binDir); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		runtimeBin = filepath.Join(binDir, "berth-runtime")
		checkerBin = filepath.Join(binDir, "checker")
		busybox, err = exec.LookPath("busybox")
		if err != nil {
			fmt.Fprintln(os.Stderr, "busybox not found: install Debian's busybox-static")
			return 1
		}
		defer container.RemoveExeMount(runtimeBin)
		return m.Run()
	}()
	for _, f := range after {
		f()
	}
	os.Exit(code)
}

// PrebuiltEnv names a directory holding berth-runtime and checker already
// built (as in the cgroup v2 guest, which has no Go toolchain); unset, Main
// builds them into a temporary directory.
const PrebuiltEnv = "BERTH_TEST_BIN_DIR"

// build makes the runtime as it ships (scripts/build.sh) and the checker
// in dir.
func build(dir string) error {
	_, self, _, _ := goruntime.Caller(0)
	builds := [][]string{
		{filepath.Join(filepath.Dir(self), "../../scripts/build.sh"), dir},
		{"go", "build", "-o", filepath.Join(dir, "checker"), "github.com/berth-project/berth/test/checker"},
	}
	for _, b := range builds {
		cmd := exec.Command(b[0], b[1:]...)
		cmd.Env = os.Environ()
		if b[0] == "go" {
			cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(b, " "), err, out)
		}
	}
	return nil
}

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: namespaces, cgroups and mounts are created for real")
	}
}

// RuntimeBin is the path of the berth-runtime built for this test run.
func RuntimeBin() string { return runtimeBin }

// CheckerBin is the path of the checker (test/checker) built for this
// test run: static, for images and rootfs.
func CheckerBin() string { return checkerBin }

// BusyboxApplets are linked into every synthetic rootfs.
var BusyboxApplets = []string{
	"sh", "ls", "cat", "echo", "hostname", "id", "mount", "ps", "sleep", "true", "false",
	"touch", "mkdir", "stat", "readlink", "test", "grep", "head", "wc", "dd", "ln", "rm", "kill", "env",
	"unshare", "nsenter", "mknod", "chmod", "pwd", "date", "umount", "tr", "sed", "awk", "cut", "seq", "uname", "linux32",
}

// MakeRootfs fills dir with busybox-static, its applets and the checker.
func MakeRootfs(t testing.TB, dir string) {
	t.Helper()
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for src, dst := range map[string]string{busybox: "bin/busybox", checkerBin: "bin/checker"} {
		if err := copyFile(src, filepath.Join(dir, dst)); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range BusyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

// UniqueID returns a container id no other test (or run) uses.
func UniqueID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return "bt-" + hex.EncodeToString(b)
}

// Bundle is a synthetic OCI bundle with its own state root.
type Bundle struct {
	t      testing.TB
	Dir    string
	Rootfs string
	Root   string // --root for the runtime
	ID     string
	Spec   *specs.Spec
	Bin    string // the runtime binary its commands run: berth-runtime unless NewBundleFor chose another
}

// NewBundle makes a bundle whose process runs the checker, with a unique
// id and cgroup, that is force-deleted when the test ends.
func NewBundle(t testing.TB) *Bundle {
	t.Helper()
	return NewBundleFor(t, runtimeBin)
}

// NewBundleFor is NewBundle whose commands run bin (runc, for a
// differential test) instead of berth-runtime.
func NewBundleFor(t testing.TB, bin string) *Bundle {
	t.Helper()
	RequireRoot(t)
	dir := t.TempDir()
	b := &Bundle{t: t, Dir: dir, Rootfs: filepath.Join(dir, "rootfs"), Root: filepath.Join(dir, "state"), ID: UniqueID(), Bin: bin}
	MakeRootfs(t, b.Rootfs)
	b.Spec = container.DefaultSpec(false)
	b.Spec.Process.Terminal = false
	b.Spec.Process.Args = []string{"/bin/checker"}
	b.Spec.Linux.CgroupsPath = "/" + b.ID
	t.Cleanup(func() {
		b.Runtime("delete", "--force", b.ID)
		for _, d := range b.CgroupDirs() {
			_ = unix.Rmdir(d)
		}
	})
	return b
}

// Write saves Spec as config.json.
func (b *Bundle) Write() {
	b.t.Helper()
	data, err := json.MarshalIndent(b.Spec, "", " ")
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), data, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// Result is one runtime command's outcome.
type Result struct {
	Stdout, Stderr string
	Code           int
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
}

// logLine is a runtime's log entry on stderr in runc's text form.
var logLine = regexp.MustCompile(`^time="[^"]*" level=(\w+) msg=("(?:[^"\\]|\\.)*")$`)

// Messages is stderr with each log entry in runc's text form
// (time="…" level=… msg="…") written as "level: message", unquoted, and
// other lines as they are.
func (r Result) Messages() string {
	lines := strings.Split(r.Stderr, "\n")
	for i, l := range lines {
		if m := logLine.FindStringSubmatch(l); m != nil {
			if msg, err := strconv.Unquote(m[2]); err == nil {
				lines[i] = m[1] + ": " + msg
			}
		}
	}
	return strings.Join(lines, "\n")
}

// Runtime runs <Bin> --root <Root> args... in the bundle directory,
// with stdin from /dev/null and a 60 s limit.
func (b *Bundle) Runtime(args ...string) Result {
	return b.RuntimeWith(nil, args...)
}

// RuntimeWith is Runtime with a hook to adjust the command before it runs.
func (b *Bundle) RuntimeWith(adjust func(*exec.Cmd), args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.Bin, append([]string{"--root", b.Root}, args...)...)
	cmd.Dir = b.Dir
	// Files, not pipes: a created container inherits the runtime's stdio
	// and would hold a pipe open long after the runtime exits.
	out, err := os.CreateTemp(b.Dir, "stdout-")
	if err != nil {
		return Result{Code: -1, Stderr: err.Error()}
	}
	defer os.Remove(out.Name())
	defer out.Close()
	errf, err := os.CreateTemp(b.Dir, "stderr-")
	if err != nil {
		return Result{Code: -1, Stderr: err.Error()}
	}
	defer os.Remove(errf.Name())
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = out, errf
	if adjust != nil {
		adjust(cmd)
	}
	err = cmd.Run()
	ob, _ := os.ReadFile(out.Name())
	eb, _ := os.ReadFile(errf.Name())
	r := Result{Stdout: string(ob), Stderr: string(eb)}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
	} else if err != nil {
		r.Code = -1
		r.Stderr += err.Error()
	}
	return r
}

// MustRuntime is Runtime that fails the test on a non-zero exit.
func (b *Bundle) MustRuntime(args ...string) Result {
	b.t.Helper()
	r := b.Runtime(args...)
	if r.Code != 0 {
		b.t.Fatalf("%s %s: %s", filepath.Base(b.Bin), strings.Join(args, " "), r)
	}
	return r
}

// Report runs the bundle to completion and parses the checker's report.
func (b *Bundle) Report() report.Report {
	b.t.Helper()
	b.Write()
	r := b.MustRuntime("run", b.ID)
	var rep report.Report
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		b.t.Fatalf("checker output: %v\n%s", err, r)
	}
	return rep
}

// State returns the runtime's state for the bundle's container.
func (b *Bundle) State() specs.State {
	b.t.Helper()
	r := b.MustRuntime("state", b.ID)
	var st specs.State
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		b.t.Fatalf("state output: %v\n%s", err, r)
	}
	return st
}

// CgroupDirs lists where the container's cgroup would be on every mounted
// hierarchy of this host.
func (b *Bundle) CgroupDirs() []string {
	var out []string
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, filepath.Join("/sys/fs/cgroup", e.Name(), b.Spec.Linux.CgroupsPath))
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		out = append(out, filepath.Join("/sys/fs/cgroup", b.Spec.Linux.CgroupsPath))
	}
	return out
}

// AssertNothingLeft fails the test if the container left a state directory,
// a cgroup, a process whose root is the rootfs, or a host mount under the
// bundle.
func (b *Bundle) AssertNothingLeft() {
	b.t.Helper()
	if _, err := os.Stat(filepath.Join(b.Root, b.ID)); err == nil {
		b.t.Errorf("state directory %s left behind", filepath.Join(b.Root, b.ID))
	}
	for _, d := range b.CgroupDirs() {
		if _, err := os.Stat(d); err == nil {
			b.t.Errorf("cgroup %s left behind", d)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/root")
	for _, p := range procs {
		if l, err := os.Readlink(p); err == nil && (l == b.Rootfs || strings.HasPrefix(l, b.Rootfs+"/")) {
			b.t.Errorf("process %s still runs in the rootfs", filepath.Dir(p))
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], b.Dir) {
			b.t.Errorf("host mount left behind: %s", l)
		}
	}
}

// Runc returns the path of Debian's runc, the oracle of the differential
// tests. Without it the test is skipped, unless BERTH_ORACLES=required.
func Runc(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("runc")
	if err != nil {
		if os.Getenv("BERTH_ORACLES") == "required" {
			t.Fatal("runc (Debian's runc) is not installed: it is this test's oracle")
		}
		t.Skip("runc is not installed: apt-get install runc to run this test")
	}
	return p
}

// HostNS returns the runtime's own namespace link for ns ("net", "pid" …).
func HostNS(ns string) string {
	l, _ := os.Readlink("/proc/self/ns/" + ns)
	return l
}
