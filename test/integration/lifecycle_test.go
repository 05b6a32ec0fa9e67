package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-project/berth/test/harness"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestRunFromInside(t *testing.T) {
	b := harness.NewBundle(t)
	rep := b.Report()
	if rep.Pid != 1 {
		t.Errorf("pid = %d, want 1 (the user's process keeps init's pid)", rep.Pid)
	}
	if rep.Hostname != "berth" {
		t.Errorf("hostname = %q, want berth", rep.Hostname)
	}
	for _, ns := range []string{"pid", "net", "ipc", "uts", "mnt", "cgroup"} {
		if rep.Namespaces[ns] == "" || rep.Namespaces[ns] == harness.HostNS(ns) {
			t.Errorf("namespace %s = %q, host has %q: want a new one", ns, rep.Namespaces[ns], harness.HostNS(ns))
		}
	}
	if rep.Namespaces["user"] != harness.HostNS("user") {
		t.Errorf("user namespace changed without being asked for")
	}
	// CAP_KILL(5), CAP_NET_BIND_SERVICE(10), CAP_AUDIT_WRITE(29).
	for _, set := range []string{"CapBnd", "CapEff", "CapPrm"} {
		if rep.Caps[set] != "0000000020000420" {
			t.Errorf("%s = %s, want 0000000020000420", set, rep.Caps[set])
		}
	}
	if rep.Caps["CapInh"] != "0000000000000000" || rep.Caps["CapAmb"] != "0000000000000000" {
		t.Errorf("inheritable/ambient = %s/%s, want empty", rep.Caps["CapInh"], rep.Caps["CapAmb"])
	}
	if rep.NoNewPrivs != 1 {
		t.Errorf("no_new_privs = %d, want 1", rep.NoNewPrivs)
	}
	if got := rep.Rlimits["NOFILE"]; got != [2]uint64{1024, 1024} {
		t.Errorf("RLIMIT_NOFILE = %v, want [1024 1024]", got)
	}
	if len(rep.Groups) != 0 {
		t.Errorf("supplementary groups %v leaked from the runtime, want none", rep.Groups)
	}
	if rep.Cwd != "/" || rep.UID != 0 || rep.GID != 0 {
		t.Errorf("cwd %q uid %d gid %d, want / 0 0", rep.Cwd, rep.UID, rep.GID)
	}
	if len(rep.Fds) != 3 {
		t.Errorf("open descriptors %v, want only 0 1 2", rep.Fds)
	}
	if !strings.HasPrefix(rep.Mounts["/"], "ro") {
		t.Errorf("/ mounted %q, want read-only (root.readonly)", rep.Mounts["/"])
	}
	for _, m := range []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"} {
		if _, ok := rep.Mounts[m]; !ok {
			t.Errorf("mount %s missing; have %v", m, rep.Mounts)
		}
	}
	// With a cgroup namespace the container sees its own cgroup as the root.
	for _, l := range strings.Split(strings.TrimSpace(rep.Cgroup), "\n") {
		if !strings.HasSuffix(l, ":/") {
			t.Errorf("/proc/self/cgroup line %q: want the namespace root /", l)
		}
	}
	b.AssertNothingLeft()
}

func TestRunExitStatus(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   int
	}{
		{"exit 0", 0}, {"exit 7", 7}, {"exit 255", 255},
	} {
		b := harness.NewBundle(t)
		b.Spec.Process.Args = []string{"sh", "-c", tc.script}
		b.Write()
		if r := b.Runtime("run", b.ID); r.Code != tc.want {
			t.Errorf("%q: %s, want exit %d", tc.script, r, tc.want)
		}
		b.AssertNothingLeft()
	}
}

// TestRunKilledExitStatus: a container killed by a signal makes `run`
// exit 128+signal, as a shell reports it.
func TestRunKilledExitStatus(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Process.Args = []string{"sleep", "60"}
	b.Write()
	pidFile := filepath.Join(b.Dir, "pid")
	done := make(chan harness.Result)
	go func() { done <- b.Runtime("run", "--pid-file", pidFile, b.ID) }()
	var pid int
	for i := 0; i < 500 && pid == 0; i++ {
		if pf, err := os.ReadFile(pidFile); err == nil {
			pid, _ = strconv.Atoi(string(pf))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if pid == 0 {
		t.Fatal("no pid file")
	}
	waitExe(pid, "busybox")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.Code != 137 {
		t.Errorf("run of a SIGKILLed container: %s, want exit 137", r)
	}
	b.AssertNothingLeft()
}

func TestCreateStartKillDelete(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Process.Args = []string{"sleep", "60"}
	b.Write()
	pidFile := filepath.Join(b.Dir, "pid")
	b.MustRuntime("create", "--pid-file", pidFile, b.ID)
	st := b.State()
	if st.Status != specs.StateCreated || st.Pid <= 0 || st.ID != b.ID || st.Bundle != b.Dir {
		t.Fatalf("after create: %+v", st)
	}
	if pf, _ := os.ReadFile(pidFile); strings.TrimSpace(string(pf)) != itoa(st.Pid) {
		t.Errorf("pid file %q, state pid %d", pf, st.Pid)
	}
	// Before start the process is the runtime's init, not yet sleep.
	if exe, _ := os.Readlink("/proc/" + itoa(st.Pid) + "/exe"); strings.HasSuffix(exe, "busybox") {
		t.Errorf("process exec'd before start: %s", exe)
	}
	if r := b.Runtime("start", b.ID); r.Code != 0 {
		t.Fatalf("start: %s", r)
	}
	st2 := b.State()
	if st2.Status != specs.StateRunning || st2.Pid != st.Pid {
		t.Fatalf("after start: %+v (pid before %d)", st2, st.Pid)
	}
	if exe := waitExe(st.Pid, "busybox"); !strings.HasSuffix(exe, "busybox") {
		t.Errorf("after start /proc/%d/exe = %q, want busybox (same pid)", st.Pid, exe)
	}
	if r := b.Runtime("start", b.ID); r.Code == 0 {
		t.Errorf("second start succeeded: %s", r)
	}
	if r := b.Runtime("delete", b.ID); r.Code == 0 || !strings.Contains(r.Stderr, "running") {
		t.Errorf("delete of a running container: %s, want a refusal", r)
	}
	// PID 1 of a namespace ignores signals it has no handler for, except
	// SIGKILL: TERM leaves sleep running.
	b.MustRuntime("kill", b.ID, "TERM")
	time.Sleep(50 * time.Millisecond)
	if st := b.State(); st.Status != specs.StateRunning {
		t.Errorf("SIGTERM stopped PID 1 without a handler: %+v", st)
	}
	b.MustRuntime("kill", b.ID, "KILL")
	waitStatus(t, b, specs.StateStopped)
	b.MustRuntime("delete", b.ID)
	if r := b.Runtime("state", b.ID); r.Code == 0 || !strings.Contains(r.Stderr, "does not exist") {
		t.Errorf("state after delete: %s", r)
	}
	b.AssertNothingLeft()
}

func TestDeleteCreatedContainer(t *testing.T) {
	b := harness.NewBundle(t)
	b.Write()
	b.MustRuntime("create", b.ID)
	b.MustRuntime("delete", b.ID)
	b.AssertNothingLeft()
}

func TestDeleteForce(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Process.Args = []string{"sleep", "60"}
	b.Write()
	b.MustRuntime("run", "-d", b.ID)
	b.MustRuntime("delete", "--force", b.ID)
	b.AssertNothingLeft()
	if r := b.Runtime("delete", "--force", b.ID); r.Code != 0 {
		t.Errorf("delete --force of a missing container should succeed as runc's: %s", r)
	}
}

func TestKillSignalForms(t *testing.T) {
	for _, sig := range []string{"9", "KILL", "SIGKILL"} {
		b := harness.NewBundle(t)
		b.Spec.Process.Args = []string{"sleep", "60"}
		b.Write()
		b.MustRuntime("run", "-d", b.ID)
		b.MustRuntime("kill", b.ID, sig)
		waitStatus(t, b, specs.StateStopped)
		b.MustRuntime("delete", b.ID)
		b.AssertNothingLeft()
	}
	b := harness.NewBundle(t)
	b.Write()
	b.MustRuntime("create", b.ID)
	if r := b.Runtime("kill", b.ID, "NOSUCHSIG"); r.Code == 0 || !strings.Contains(r.Stderr, "unknown signal") {
		t.Errorf("bad signal: %s", r)
	}
	// Signal 0, as runc takes it: whether the init can be signalled.
	if r := b.Runtime("kill", b.ID, "0"); r.Code != 0 {
		t.Errorf("kill 0 of a created container: %s", r)
	}
	b.MustRuntime("kill", b.ID, "KILL")
	waitStatus(t, b, specs.StateStopped)
	if r := b.Runtime("kill", b.ID, "0"); r.Code == 0 {
		t.Errorf("kill 0 of a stopped container succeeded: %s", r)
	}
}

func TestKillAll(t *testing.T) {
	b := harness.NewBundle(t)
	// PID 1 ignores SIGTERM-less default signals; its children do not.
	b.Spec.Process.Args = []string{"sh", "-c", "sleep 60 & sleep 60 & wait"}
	b.Write()
	b.MustRuntime("run", "-d", b.ID)
	var pids []int
	for i := 0; i < 100 && len(pids) < 3; i++ {
		json.Unmarshal([]byte(b.MustRuntime("ps", "--format", "json", b.ID).Stdout), &pids)
		time.Sleep(10 * time.Millisecond)
	}
	if len(pids) != 3 {
		t.Fatalf("ps: %v, want 3 processes", pids)
	}
	b.MustRuntime("kill", "--all", b.ID, "KILL")
	waitStatus(t, b, specs.StateStopped)
	for _, p := range pids {
		if err := syscall.Kill(p, 0); err == nil {
			if exe, _ := os.Readlink("/proc/" + itoa(p) + "/exe"); strings.HasSuffix(exe, "busybox") {
				t.Errorf("process %d survived kill --all", p)
			}
		}
	}
	b.MustRuntime("delete", b.ID)
	b.AssertNothingLeft()
}

func TestStateNoticesDeadProcess(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Process.Args = []string{"sleep", "60"}
	b.Write()
	b.MustRuntime("run", "-d", b.ID)
	st := b.State()
	if err := syscall.Kill(st.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, b, specs.StateStopped)
	if st := b.State(); st.Pid != 0 {
		t.Errorf("stopped container reports pid %d", st.Pid)
	}
	b.MustRuntime("delete", b.ID)
	b.AssertNothingLeft()
}

func TestListAndPs(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Process.Args = []string{"sleep", "60"}
	b.Write()
	b.MustRuntime("run", "-d", b.ID)
	if q := b.MustRuntime("list", "-q").Stdout; strings.TrimSpace(q) != b.ID {
		t.Errorf("list -q = %q", q)
	}
	var entries []map[string]any
	if err := json.Unmarshal([]byte(b.MustRuntime("list", "--format", "json").Stdout), &entries); err != nil || len(entries) != 1 {
		t.Fatalf("list json: %v %v", err, entries)
	}
	if entries[0]["id"] != b.ID || entries[0]["status"] != "running" || entries[0]["bundle"] != b.Dir {
		t.Errorf("list json entry %v", entries[0])
	}
	table := b.MustRuntime("list").Stdout
	if !strings.Contains(table, "STATUS") || !strings.Contains(table, b.ID) {
		t.Errorf("list table %q", table)
	}
	ps := b.MustRuntime("ps", b.ID).Stdout
	if !strings.Contains(ps, "PID") || !strings.Contains(ps, "sleep 60") {
		t.Errorf("ps table %q", ps)
	}
	b.MustRuntime("delete", "-f", b.ID)
	b.AssertNothingLeft()
}

func itoa(i int) string { return strconv.Itoa(i) }

func waitStatus(t *testing.T, b *harness.Bundle, want specs.ContainerState) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if b.State().Status == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("status %s never reached; now %+v", want, b.State())
}

func waitExe(pid int, suffix string) string {
	var exe string
	for i := 0; i < 200; i++ {
		exe, _ = os.Readlink("/proc/" + itoa(pid) + "/exe")
		if strings.HasSuffix(exe, suffix) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return exe
}

// TestRunRelaysSignals: a signal sent to a foreground `run` reaches the
// container's PID 1, which here has a handler for it.
func TestRunRelaysSignals(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Process.Args = []string{"sh", "-c", "trap 'exit 3' TERM; echo ready; while true; do sleep 0.05; done"}
	b.Write()
	cmd := exec.Command(harness.RuntimeBin(), "--root", b.Root, "run", b.ID)
	cmd.Dir = b.Dir
	out, err := os.CreateTemp(b.Dir, "out")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		if data, _ := os.ReadFile(out.Name()); strings.Contains(string(data), "ready") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		data, _ := os.ReadFile(out.Name())
		t.Errorf("run after SIGTERM: %v, output %q; want exit 3 from the container's trap", err, data)
	}
	b.AssertNothingLeft()
}

// TestVersionAsRunc: --version in runc's form, which engines parse: the
// name and version, then commit, spec and go lines.
func TestVersionAsRunc(t *testing.T) {
	out, err := exec.Command(harness.RuntimeBin(), "--version").Output()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil || len(lines) != 4 || !strings.HasPrefix(lines[0], "berth-runtime version ") ||
		!strings.HasPrefix(lines[1], "commit: ") || lines[2] != "spec: "+specs.Version || !strings.HasPrefix(lines[3], "go: go") {
		t.Errorf("--version: %v\n%s", err, out)
	}
}

// start returns once the user's program runs: a signal sent the moment it
// returns reaches the program (the validation suite's killsig), not an
// init still in the runtime's code, where the kernel drops a signal
// without a handler at a PID namespace's init.
func TestStartReturnsAfterExec(t *testing.T) {
	for i := 0; i < 10; i++ {
		b := harness.NewBundle(t)
		b.Spec.Process.Args = []string{"sleep", "100"}
		b.Write()
		b.MustRuntime("create", b.ID)
		pid := b.State().Pid
		b.MustRuntime("start", b.ID)
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || filepath.Base(exe) != "busybox" {
			t.Fatalf("round %d: right after start the init runs %q (%v), not the user's program", i, exe, err)
		}
		b.MustRuntime("delete", "--force", b.ID)
	}
}
