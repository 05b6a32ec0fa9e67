package integration

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/seccomp"
	"github.com/berth-project/berth/test/harness"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestSeccompErrnoAndArguments(t *testing.T) {
	for _, nnp := range []bool{true, false} {
		b := harness.NewBundle(t)
		b.Spec.Root.Readonly = false
		b.Spec.Process.NoNewPrivileges = nnp
		b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: ptr(uint(unix.EXDEV))},
				{Names: []string{"sethostname"}, Action: specs.ActErrno},
				// Refuse setting the setuid bit: mode is argument 1 of
				// chmod and 2 of fchmodat.
				{Names: []string{"chmod"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0o4000, ValueTwo: 0o4000, Op: specs.OpMaskedEqual}}},
				{Names: []string{"fchmodat"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 2, Value: 0o4000, ValueTwo: 0o4000, Op: specs.OpMaskedEqual}}},
			},
		}
		b.Spec.Process.Args = []string{"sh", "-c", `
mkdir /tmp/d 2>&1
hostname other 2>&1
touch /tmp/f; chmod 0755 /tmp/f && echo chmod-plain-ok; chmod 4755 /tmp/f 2>&1
grep Seccomp: /proc/self/status`}
		b.Write()
		out := b.MustRuntime("run", b.ID).Stdout
		for _, want := range []string{
			"can't create directory '/tmp/d': Invalid cross-device link",
			"sethostname: Operation not permitted", "chmod-plain-ok",
			"chmod: /tmp/f: Operation not permitted", "Seccomp:\t2",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("nnp=%v: output lacks %q:\n%s", nnp, want, out)
			}
		}
	}
}

// TestSeccompNotifyListener: the listener at listenerPath receives the
// notify descriptor with the container's state, as runc sends them.
func TestSeccompNotifyListener(t *testing.T) {
	b := harness.NewBundle(t)
	sock := filepath.Join(b.Dir, "listener.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b.Spec.Root.Readonly = false
	b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow, ListenerPath: sock, ListenerMetadata: "meta-42",
		Flags:    []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}},
	}
	b.Spec.Process.Args = []string{"sh", "-c", "mkdir /tmp/x 2>&1; echo after"}
	b.Write()
	type got struct {
		state specs.ContainerProcessState
		fds   int
		err   error
	}
	ch := make(chan got, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			ch <- got{err: err}
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 8192), make([]byte, 64)
		n, oobn, _, _, err := c.(*net.UnixConn).ReadMsgUnix(buf, oob)
		var g got
		g.err = err
		if err == nil {
			g.err = json.Unmarshal(buf[:n], &g.state)
			msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
			for _, m := range msgs {
				fds, _ := unix.ParseUnixRights(&m)
				g.fds += len(fds)
				for _, fd := range fds {
					// Closing the listener makes the notified mkdir fail.
					unix.Close(fd)
				}
			}
		}
		ch <- g
	}()
	r := b.Runtime("run", b.ID)
	var g got
	select {
	case g = <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("listener got nothing")
	}
	if g.err != nil || g.fds != 1 {
		t.Fatalf("listener: %v, %d descriptors", g.err, g.fds)
	}
	if g.state.Metadata != "meta-42" || g.state.State.ID != b.ID || g.state.Pid <= 0 || len(g.state.Fds) != 1 || g.state.Fds[0] != specs.SeccompFdName {
		t.Errorf("listener state %+v", g.state)
	}
	if r.Code != 0 || !strings.Contains(r.Stdout, "after") {
		t.Errorf("run: %s", r)
	}
	if _, err := os.Stat(filepath.Join(b.Rootfs, "tmp/x")); err == nil {
		t.Errorf("notified mkdir went through without a listener answer")
	}
}

// TestDefaultProfile: the template's filter lets ordinary programs run and
// refuses what needs privileges the container lacks; controls show each
// refusal is the filter's doing.
func TestDefaultProfile(t *testing.T) {
	probe := "grep Seccomp: /proc/self/status; unshare -U true && echo unshare-ok || echo unshare-refused; linux32 uname -m"
	run := func(mutate func(*harness.Bundle)) string {
		b := harness.NewBundle(t)
		b.Spec.Process.Args = []string{"sh", "-c", probe}
		mutate(b)
		b.Write()
		return b.MustRuntime("run", b.ID).Stdout
	}
	out := run(func(b *harness.Bundle) {})
	for _, want := range []string{"Seccomp:\t2", "unshare-refused", "i686"} {
		if !strings.Contains(out, want) {
			t.Errorf("default profile: output lacks %q:\n%s", want, out)
		}
	}
	// Control: without a filter the same container may create a user
	// namespace (no capability is needed for that).
	if out := run(func(b *harness.Bundle) { b.Spec.Linux.Seccomp = nil }); !strings.Contains(out, "unshare-ok") {
		t.Errorf("control without seccomp: %s", out)
	}
	// With CAP_SYS_ADMIN the profile allows namespace creation, as Docker's.
	out = run(func(b *harness.Bundle) {
		c := b.Spec.Process.Capabilities
		c.Bounding = append(c.Bounding, "CAP_SYS_ADMIN")
		c.Effective = append(c.Effective, "CAP_SYS_ADMIN")
		c.Permitted = append(c.Permitted, "CAP_SYS_ADMIN")
		b.Spec.Linux.Seccomp = seccomp.DefaultProfile(c.Bounding)
	})
	if !strings.Contains(out, "unshare-ok") {
		t.Errorf("default profile with CAP_SYS_ADMIN: %s", out)
	}
	// The checker (a Go program: threads via clone, no namespace flags)
	// runs under it.
	b := harness.NewBundle(t)
	if rep := b.Report(); rep.Pid != 1 {
		t.Errorf("checker under the default profile: %+v", rep)
	}
}

// TestSeccompActions: each action on mkdir, seen from a shell as PID 1 of
// the container (a signal-killed process makes run exit 128+signal;
// SIGSYS is 31).
func TestSeccompActions(t *testing.T) {
	for _, c := range []struct {
		action specs.LinuxSeccompAction
		flags  []specs.LinuxSeccompFlag
		code   int    // run's exit status
		out    string // in the output
	}{
		{specs.ActKillProcess, nil, 128 + 31, ""},
		{specs.ActKillThread, nil, 128 + 31, ""},
		{specs.ActKill, nil, 128 + 31, ""},
		{specs.ActTrap, nil, 128 + 31, ""},
		// No tracer is attached: the syscall fails with ENOSYS.
		{specs.ActTrace, nil, 0, "Function not implemented"},
		{specs.ActLog, []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"}, 0, "made"},
	} {
		b := harness.NewBundle(t)
		b.Spec.Root.Readonly = false
		b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow, Flags: c.flags,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: c.action}},
		}
		// exec: mkdir itself is PID 1, so a signal ends the container.
		b.Spec.Process.Args = []string{"sh", "-c", "mkdir /tmp/d 2>&1 && echo made; exit 0"}
		if c.code != 0 {
			b.Spec.Process.Args = []string{"mkdir", "/tmp/d"}
		}
		b.Write()
		r := b.Runtime("run", b.ID)
		if r.Code != c.code || !strings.Contains(r.Stdout, c.out) {
			t.Errorf("%s: %s, want exit %d and %q", c.action, r, c.code, c.out)
		}
		b.AssertNothingLeft()
	}
	b := harness.NewBundle(t)
	b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"}}
	b.Write()
	if r := b.Runtime("create", b.ID); r.Code == 0 || !strings.Contains(r.Stderr, "SCMP_ACT_NOTIFY") {
		t.Errorf("WAIT_KILLABLE_RECV without a notify rule: %s", r)
	}
	b.AssertNothingLeft()
}

// TestProfileWithoutCloseRange: a profile from before close_range existed,
// loaded early (no_new_privs off), must not break the init's own steps.
func TestProfileWithoutCloseRange(t *testing.T) {
	for _, nnp := range []bool{false, true} {
		b := harness.NewBundle(t)
		b.Spec.Process.NoNewPrivileges = nnp
		b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"close_range"}, Action: specs.ActErrno}},
		}
		rep := b.Report()
		if len(rep.Fds) != 3 {
			t.Errorf("nnp=%v: descriptors %v, want 0 1 2", nnp, rep.Fds)
		}
	}
}
