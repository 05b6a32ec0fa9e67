package integration

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/container/console"
	"github.com/berth-project/berth/test/checker/report"
	"github.com/berth-project/berth/test/harness"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestRootCapabilities(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding: []string{"CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_ADMIN"}, Permitted: []string{"CAP_CHOWN", "CAP_NET_RAW"},
		Effective: []string{"CAP_CHOWN"}, Inheritable: []string{"CAP_NET_RAW"}, Ambient: []string{"CAP_NET_RAW"},
	}
	rep := b.Report()
	// Root's effective set becomes its whole permitted set at execve; with
	// no_new_privs (the default spec's) permitted cannot grow past what the
	// config permitted, so SYS_ADMIN stays only in the bounding set.
	want := map[string]string{"CapBnd": "0000000000202001", "CapPrm": "0000000000002001", "CapEff": "0000000000002001", "CapInh": "0000000000002000", "CapAmb": "0000000000002000"}
	for k, v := range want {
		if rep.Caps[k] != v {
			t.Errorf("%s = %s, want %s", k, rep.Caps[k], v)
		}
	}
}

func TestProcessSettings(t *testing.T) {
	b := harness.NewBundle(t)
	p := b.Spec.Process
	p.User = specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{10, 20}, Umask: ptr(uint32(0o077))}
	p.Cwd = "/work/dir"
	p.Env = append(p.Env, "BERTH_TEST=yes")
	// The checker is a Go program, and Go raises its own NOFILE soft limit
	// to the hard one at start: soft != hard is checked on CORE.
	p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 512}, {Type: "RLIMIT_CORE", Soft: 4096, Hard: 8192}}
	p.OOMScoreAdj = ptr(123)
	p.NoNewPrivileges = false
	p.Capabilities = &specs.LinuxCapabilities{
		Bounding: []string{"CAP_CHOWN", "CAP_NET_RAW"}, Permitted: []string{"CAP_CHOWN", "CAP_NET_RAW"},
		Effective: []string{"CAP_CHOWN"}, Inheritable: []string{"CAP_NET_RAW"}, Ambient: []string{"CAP_NET_RAW"},
	}
	p.Args = []string{"/bin/checker", "arg1", "arg two"}
	b.Spec.Domainname = "example.test"
	b.Spec.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.msgmax": "4096"}
	rep := b.Report()
	if rep.UID != 1000 || rep.EUID != 1000 || rep.GID != 1001 || rep.EGID != 1001 {
		t.Errorf("ids %d/%d %d/%d, want 1000 1001", rep.UID, rep.EUID, rep.GID, rep.EGID)
	}
	if groups := slices.Sorted(slices.Values(rep.Groups)); !slices.Equal(groups, []int{10, 20}) {
		t.Errorf("groups %v, want [10 20]", rep.Groups)
	}
	if rep.Umask != 0o077 {
		t.Errorf("umask %o, want 077", rep.Umask)
	}
	if rep.Cwd != "/work/dir" {
		t.Errorf("cwd %q", rep.Cwd)
	}
	// As runc: HOME is added when the spec has none, from the user's
	// passwd entry ("/" for a uid it does not list).
	if want := append(slices.Clone(p.Env), "HOME=/"); !slices.Equal(rep.Env, want) {
		t.Errorf("env %v, want exactly %v", rep.Env, want)
	}
	if rep.Rlimits["NOFILE"] != [2]uint64{512, 512} || rep.Rlimits["CORE"] != [2]uint64{4096, 8192} {
		t.Errorf("rlimits %v", rep.Rlimits)
	}
	if rep.OOMScoreAdj != "123" {
		t.Errorf("oom_score_adj %q", rep.OOMScoreAdj)
	}
	if rep.NoNewPrivs != 0 {
		t.Errorf("no_new_privs set without being asked")
	}
	// CHOWN=0 → 0x1, NET_RAW=13 → 0x2000. A non-root user keeps across
	// execve only its ambient capabilities in permitted and effective.
	want := map[string]string{"CapBnd": "0000000000002001", "CapPrm": "0000000000002000", "CapEff": "0000000000002000", "CapInh": "0000000000002000", "CapAmb": "0000000000002000"}
	for k, v := range want {
		if rep.Caps[k] != v {
			t.Errorf("%s = %s, want %s", k, rep.Caps[k], v)
		}
	}
	if jsonOf(rep.Args) != `["/bin/checker","arg1","arg two"]` {
		t.Errorf("args %v", rep.Args)
	}
	if rep.Domainname != "example.test" {
		t.Errorf("domainname %q", rep.Domainname)
	}
	b.AssertNothingLeft()
}

func TestSysctlApplied(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	b.Spec.Process.Args = []string{"cat", "/proc/sys/net/ipv4/ip_forward"}
	b.Write()
	if r := b.MustRuntime("run", b.ID); strings.TrimSpace(r.Stdout) != "1" {
		t.Errorf("ip_forward inside = %q, want 1", r.Stdout)
	}
	host, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	t.Logf("host ip_forward stays %s", strings.TrimSpace(string(host)))
}

func TestExec(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Process.Args = []string{"sleep", "60"}
	b.Spec.Root.Readonly = false
	b.Write()
	b.MustRuntime("run", "-d", b.ID)
	initPid := b.State().Pid
	initNS := map[string]string{}
	for _, ns := range []string{"pid", "net", "ipc", "uts", "mnt", "cgroup"} {
		initNS[ns], _ = os.Readlink("/proc/" + itoa(initPid) + "/ns/" + ns)
	}

	var rep report.Report
	r := b.MustRuntime("exec", "--env", "EXTRA=1", "--cwd", "/tmp", "--user", "1000:1000", b.ID, "/bin/checker")
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("exec checker: %v %s", err, r)
	}
	if rep.Pid == 1 || rep.Pid == 0 {
		t.Errorf("exec'd pid %d: want a new pid in the container's pid namespace", rep.Pid)
	}
	for ns, want := range initNS {
		if rep.Namespaces[ns] != want {
			t.Errorf("exec'd process in %s %s, init in %s", ns, rep.Namespaces[ns], want)
		}
	}
	if rep.Cwd != "/tmp" || rep.UID != 1000 || rep.GID != 1000 || !slices.Contains(rep.Env, "EXTRA=1") {
		t.Errorf("exec process cwd %q uid %d gid %d env %v", rep.Cwd, rep.UID, rep.GID, rep.Env)
	}
	if len(rep.Fds) != 3 {
		t.Errorf("exec'd process fds %v, want 0 1 2", rep.Fds)
	}
	if !strings.Contains(rep.Cgroup, ":/") || strings.Contains(rep.Cgroup, b.ID) {
		t.Errorf("exec'd process cgroup %q: want the container's (shown as / in its cgroup namespace)", rep.Cgroup)
	}

	if r := b.Runtime("exec", b.ID, "sh", "-c", "exit 42"); r.Code != 42 {
		t.Errorf("exec exit status: %s, want 42", r)
	}
	if r := b.Runtime("exec", b.ID, "nosuchbinary"); r.Code != 255 || !strings.Contains(r.Stderr, "nosuchbinary") {
		t.Errorf("exec of a missing binary: %s, want exit 255 as runc's", r)
	}

	proc := filepath.Join(b.Dir, "process.json")
	pj, _ := json.Marshal(specs.Process{Args: []string{"sh", "-c", "echo from-process-json $X"}, Env: []string{"X=42", "PATH=/bin"}, Cwd: "/"})
	os.WriteFile(proc, pj, 0o644)
	if r := b.MustRuntime("exec", "--process", proc, b.ID); strings.TrimSpace(r.Stdout) != "from-process-json 42" {
		t.Errorf("exec --process: %s", r)
	}

	pidFile := filepath.Join(b.Dir, "exec.pid")
	b.MustRuntime("exec", "-d", "--pid-file", pidFile, b.ID, "sh", "-c", "echo detached > /tmp/marker; sleep 60")
	pf, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for i := 0; i < 100; i++ {
		json.Unmarshal([]byte(b.MustRuntime("ps", "--format", "json", b.ID).Stdout), &pids)
		if len(pids) == 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if p, _ := strconv.Atoi(strings.TrimSpace(string(pf))); !slices.Contains(pids, p) {
		t.Errorf("detached exec pid %s not among the container's %v", pf, pids)
	}
	b.MustRuntime("delete", "--force", b.ID)
	b.AssertNothingLeft()
}

func TestExecInUserNamespace(t *testing.T) {
	b := harness.NewBundle(t)
	userNS(t, b)
	b.Spec.Process.Args = []string{"sleep", "60"}
	b.Write()
	b.MustRuntime("run", "-d", b.ID)
	var rep report.Report
	r := b.MustRuntime("exec", b.ID, "/bin/checker")
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatal(err, r)
	}
	initUser, _ := os.Readlink("/proc/" + itoa(b.State().Pid) + "/ns/user")
	if rep.Namespaces["user"] != initUser || rep.UIDMap != "0 100000 65536" || rep.UID != 0 {
		t.Errorf("exec in user namespace: ns %s (init %s), uid_map %q, uid %d", rep.Namespaces["user"], initUser, rep.UIDMap, rep.UID)
	}
	b.MustRuntime("delete", "-f", b.ID)
	b.AssertNothingLeft()
}

// userNS gives the bundle a user namespace mapping 0 → 100000 and chowns
// its rootfs to match.
func userNS(t *testing.T, b *harness.Bundle) {
	t.Helper()
	b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	b.Spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	b.Spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	chownForUserNS(t, b)
}

// chownForUserNS gives the rootfs to host uid 100000 and opens the path to
// it: t.TempDir is 0700, which the container's root (an unprivileged uid
// on the host) could not traverse.
func chownForUserNS(t *testing.T, b *harness.Bundle) {
	t.Helper()
	if out, err := exec.Command("chown", "-R", "100000:100000", b.Rootfs).CombinedOutput(); err != nil {
		t.Fatalf("chown rootfs: %v %s", err, out)
	}
	for _, d := range []string{b.Dir, filepath.Dir(b.Dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUserNamespace(t *testing.T) {
	b := harness.NewBundle(t)
	userNS(t, b)
	rep := b.Report()
	if rep.UIDMap != "0 100000 65536" || rep.GIDMap != "0 100000 65536" {
		t.Errorf("maps %q %q", rep.UIDMap, rep.GIDMap)
	}
	if rep.Namespaces["user"] == harness.HostNS("user") {
		t.Errorf("no new user namespace")
	}
	if rep.UID != 0 || rep.Pid != 1 {
		t.Errorf("uid %d pid %d, want 0 1", rep.UID, rep.Pid)
	}
	b.AssertNothingLeft()
}

// TestJoinNamespaces runs a second container in the first one's network,
// IPC and UTS namespaces, given by path.
func TestJoinNamespaces(t *testing.T) {
	a := harness.NewBundle(t)
	a.Spec.Process.Args = []string{"sleep", "60"}
	a.Spec.Hostname = "shared-uts"
	a.Write()
	a.MustRuntime("run", "-d", a.ID)
	apid := itoa(a.State().Pid)

	b := harness.NewBundle(t)
	b.Spec.Hostname = ""
	var nss []specs.LinuxNamespace
	for _, ns := range b.Spec.Linux.Namespaces {
		switch ns.Type {
		case specs.NetworkNamespace:
			ns.Path = "/proc/" + apid + "/ns/net"
		case specs.IPCNamespace:
			ns.Path = "/proc/" + apid + "/ns/ipc"
		case specs.UTSNamespace:
			ns.Path = "/proc/" + apid + "/ns/uts"
		}
		nss = append(nss, ns)
	}
	b.Spec.Linux.Namespaces = nss
	rep := b.Report()
	for _, ns := range []string{"net", "ipc", "uts"} {
		want, _ := os.Readlink("/proc/" + apid + "/ns/" + ns)
		if rep.Namespaces[ns] != want {
			t.Errorf("%s namespace %s, want the first container's %s", ns, rep.Namespaces[ns], want)
		}
	}
	if apidNS, _ := os.Readlink("/proc/" + apid + "/ns/pid"); rep.Namespaces["pid"] == apidNS {
		t.Errorf("pid namespace shared but not asked for")
	}
	if rep.Hostname != "shared-uts" {
		t.Errorf("hostname %q, want the joined UTS namespace's", rep.Hostname)
	}
	a.MustRuntime("delete", "-f", a.ID)
}

// TestNoMountNamespace: a config without a mount namespace inherits the
// runtime's (runtime-spec: an unlisted namespace is inherited); the init
// enters root.path by chroot and makes no mount, with a warning, so the
// host's mount table is left as it was. A mount label, meaningless
// without SELinux, is accepted with a warning.
func TestNoMountNamespace(t *testing.T) {
	b := harness.NewBundle(t)
	var nss []specs.LinuxNamespace
	for _, ns := range b.Spec.Linux.Namespaces {
		if ns.Type != specs.MountNamespace {
			nss = append(nss, ns)
		}
	}
	b.Spec.Linux.Namespaces = nss
	b.Spec.Linux.MountLabel = "system_u:object_r:container_file_t:s0"
	b.Spec.Process.Args = []string{"sleep", "60"}
	b.Write()
	r := b.MustRuntime("create", b.ID)
	for _, w := range []string{"no mount namespace", "linux.mountLabel: not applied"} {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("no warning %q: %s", w, r)
		}
	}
	pid := itoa(b.State().Pid)
	if got, _ := os.Readlink("/proc/" + pid + "/ns/mnt"); got != harness.HostNS("mnt") {
		t.Errorf("mount namespace %q, want the runtime's %q", got, harness.HostNS("mnt"))
	}
	if root, _ := os.Readlink("/proc/" + pid + "/root"); root != b.Rootfs {
		t.Errorf("root %q, want the bundle's rootfs %q", root, b.Rootfs)
	}
	// Neither the rootfs nor a masked path was mounted on the host.
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(mi), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && (strings.HasPrefix(f[4], b.Dir) || slices.Contains(b.Spec.Linux.MaskedPaths, f[4])) {
			t.Errorf("a mount on the host: %s", l)
		}
	}
	b.MustRuntime("delete", "--force", b.ID)
	b.AssertNothingLeft()
}

// TestJoinUserAndMountNamespacesByPath joins a user namespace given by path
// (the case the C constructor exists for) together with new namespaces
// created inside it.
func TestJoinUserNamespaceByPath(t *testing.T) {
	a := harness.NewBundle(t)
	userNS(t, a)
	a.Spec.Process.Args = []string{"sleep", "60"}
	a.Write()
	a.MustRuntime("run", "-d", a.ID)
	apid := itoa(a.State().Pid)

	b := harness.NewBundle(t)
	b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/" + apid + "/ns/user"})
	chownForUserNS(t, b)
	rep := b.Report()
	want, _ := os.Readlink("/proc/" + apid + "/ns/user")
	if rep.Namespaces["user"] != want || rep.UIDMap != "0 100000 65536" {
		t.Errorf("user ns %s map %q, want %s with the first container's map", rep.Namespaces["user"], rep.UIDMap, want)
	}
	a.MustRuntime("delete", "-f", a.ID)
}

func TestTerminalConsoleSocket(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Process.Terminal = true
	b.Spec.Process.ConsoleSize = &specs.Box{Height: 40, Width: 120}
	b.Spec.Process.Args = []string{"sh", "-c", "tty; stty size; echo done"}
	b.Write()
	sockPath := filepath.Join(b.Dir, "console.sock")
	l, err := net.Listen("unix", sockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan *os.File, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- nil
			return
		}
		f, _ := c.(*net.UnixConn).File()
		c.Close()
		m, err := console.Receive(f)
		f.Close()
		if err != nil {
			t.Error(err)
		}
		got <- m
	}()
	b.MustRuntime("create", "--console-socket", sockPath, b.ID)
	master := <-got
	if master == nil {
		t.Fatal("no terminal received")
	}
	defer master.Close()
	if !strings.HasPrefix(master.Name(), "/dev/pts/") {
		t.Errorf("terminal name %q", master.Name())
	}
	b.MustRuntime("start", b.ID)
	var out strings.Builder
	buf := make([]byte, 1024)
	master.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !strings.Contains(out.String(), "done") {
		n, err := master.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if !strings.Contains(out.String(), "/dev/pts/0") || !strings.Contains(out.String(), "40 120") {
		t.Errorf("terminal output %q: want /dev/pts/0 and size 40 120", out.String())
	}
	waitStatus(t, b, specs.StateStopped)
	b.MustRuntime("delete", b.ID)
	b.AssertNothingLeft()
}

func TestTerminalWithoutConsoleSocket(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Process.Terminal = true
	b.Write()
	r := b.Runtime("create", b.ID)
	if r.Code == 0 || !strings.Contains(r.Stderr, "console-socket") {
		t.Errorf("create with terminal and no console socket: %s", r)
	}
	b.AssertNothingLeft()
}

func TestPreserveFds(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Process.Args = []string{"sh", "-c", "echo through-fd3 >&3; ls /proc/self/fd"}
	b.Write()
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r := b.RuntimeWith(func(c *exec.Cmd) { c.ExtraFiles = []*os.File{wr} }, "run", "--preserve-fds", "1", b.ID)
	wr.Close()
	if r.Code != 0 {
		t.Fatal(r)
	}
	buf := make([]byte, 64)
	n, _ := rd.Read(buf)
	if strings.TrimSpace(string(buf[:n])) != "through-fd3" {
		t.Errorf("fd 3 carried %q", buf[:n])
	}
	if fds := strings.Fields(r.Stdout); len(fds) != 5 { // 0 1 2 3 and ls's own
		t.Errorf("fds in container %v, want 0-3 (+ls's)", fds)
	}
}

func TestNoPivot(t *testing.T) {
	b := harness.NewBundle(t)
	b.Write()
	r := b.MustRuntime("run", "--no-pivot", b.ID)
	var rep report.Report
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil || rep.Pid != 1 {
		t.Errorf("--no-pivot run: %v %s", err, r)
	}
	b.AssertNothingLeft()
}

func TestTimeNamespace(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
	b.Spec.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 86400 * 365}}
	b.Spec.Process.Args = []string{"cat", "/proc/uptime"}
	b.Write()
	r := b.MustRuntime("run", b.ID)
	up := strings.Fields(r.Stdout)
	if len(up) == 0 || len(strings.Split(up[0], ".")[0]) < 8 {
		t.Errorf("uptime inside %q: want over a year (boottime offset)", r.Stdout)
	}
}

func ptr[T any](v T) *T { return &v }

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestPersonality(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
	b.Spec.Process.Args = []string{"uname", "-m"}
	b.Write()
	if out := strings.TrimSpace(b.MustRuntime("run", b.ID).Stdout); out != "i686" {
		t.Errorf("uname -m under LINUX32 = %q, want i686", out)
	}
	b2 := harness.NewBundle(t)
	b2.Spec.Linux.Personality = &specs.LinuxPersonality{Domain: "BSD"}
	b2.Write()
	if r := b2.Runtime("create", b2.ID); r.Code == 0 || !strings.Contains(r.Stderr, "linux.personality.domain") {
		t.Errorf("unknown personality: %s", r)
	}
	b2.AssertNothingLeft()
}

// TestSignalsStartDefault: the container's process and an exec'd one start
// with no signal ignored or blocked, even when the runtime's caller ignores
// some (berth-monitor ignores SIGINT and SIGHUP), as under runc and dockerd:
// otherwise Ctrl-C and --stop-signal INT never reach the program.
func TestSignalsStartDefault(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Process.Args = []string{"sleep", "60"}
	b.Write()
	ignoring := func(cmd *exec.Cmd) {
		cmd.Args = append([]string{"sh", "-c", `trap "" INT HUP QUIT TERM USR1; exec "$0" "$@"`}, cmd.Args...)
		cmd.Path = "/bin/sh"
	}
	if r := b.RuntimeWith(ignoring, "run", "-d", b.ID); r.Code != 0 {
		t.Fatalf("run -d: %s", r)
	}
	initPid := b.State().Pid
	checkSigs := func(what, status string) {
		t.Helper()
		for _, l := range strings.Split(status, "\n") {
			k, v, _ := strings.Cut(l, ":")
			if (k == "SigIgn" || k == "SigBlk") && strings.Trim(strings.TrimSpace(v), "0") != "" {
				t.Errorf("%s: %s %s, want none", what, k, strings.TrimSpace(v))
			}
		}
		if !strings.Contains(status, "SigIgn:") {
			t.Errorf("%s: no SigIgn in %q", what, status)
		}
	}
	st, err := os.ReadFile("/proc/" + itoa(initPid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	checkSigs("container process", string(st))
	r := b.RuntimeWith(ignoring, "exec", b.ID, "cat", "/proc/self/status")
	if r.Code != 0 {
		t.Fatalf("exec: %s", r)
	}
	checkSigs("exec'd process", r.Stdout)
	// The effect: a shell that sends itself SIGINT dies of it (130).
	if r := b.RuntimeWith(ignoring, "exec", b.ID, "sh", "-c", "kill -INT $$; echo survived"); r.Code != 130 || strings.Contains(r.Stdout, "survived") {
		t.Errorf("exec'd shell sent itself SIGINT: %s, want exit 130", r)
	}
	b.MustRuntime("delete", "--force", b.ID)
	b.AssertNothingLeft()
}

// TestSpecTemplatesRun: the config `runc spec` writes lists ambient
// capabilities that are not inheritable; runc and crun run it (the spec
// says a runtime should not fail for what it cannot grant), and so does
// berth-runtime, warning.
func TestSpecTemplatesRun(t *testing.T) {
	b := harness.NewBundle(t)
	caps := b.Spec.Process.Capabilities
	caps.Ambient = []string{"CAP_KILL", "CAP_AUDIT_WRITE"}
	caps.Inheritable = nil
	b.Spec.Process.Args = []string{"grep", "^CapAmb", "/proc/self/status"}
	b.Write()
	r := b.Runtime("run", b.ID)
	if r.Code != 0 || !strings.Contains(r.Stdout, "CapAmb:\t0000000000000000") || !strings.Contains(r.Stderr, "not both permitted and inheritable") {
		t.Errorf("ambient capabilities it cannot grant: %s", r)
	}
	b.AssertNothingLeft()
}
