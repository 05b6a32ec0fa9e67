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
