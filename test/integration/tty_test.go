package integration

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/container/console"
	"github.com/berth-project/berth/test/harness"
	"golang.org/x/sys/unix"
)

// onTerminal runs the bundle's runtime with a fresh pseudo-terminal as its stdio,
// as a person at a shell would, types input, and returns what the terminal
// showed and the exit code.
func onTerminal(t *testing.T, b *harness.Bundle, input string, args ...string) (string, int) {
	t.Helper()
	master, slave, _, err := console.NewPty()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 99})
	cmd := exec.Command(b.Bin, append([]string{"--root", b.Root}, args...)...)
	cmd.Dir = b.Dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var out strings.Builder
	done := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				close(done)
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	master.Write([]byte(input))
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-waitErr:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("no exit; terminal showed %q", out.String())
	}
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		code = ee.ExitCode()
	}
	return out.String(), code
}

func TestRunInteractiveTerminal(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Process.Terminal = true
	b.Spec.Process.Args = []string{"sh"}
	b.Write()
	out, code := onTerminal(t, b, "tty; stty size; echo in-$((40+2)); exit 3\n", "run", b.ID)
	for _, want := range []string{"/dev/pts/0", "33 99", "in-42"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal lacks %q:\n%s", want, out)
		}
	}
	if code != 3 {
		t.Errorf("exit %d, want 3; terminal:\n%s", code, out)
	}
	b.AssertNothingLeft()
}

func TestExecInteractiveTerminal(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Process.Args = []string{"sleep", "60"}
	b.Write()
	b.MustRuntime("run", "-d", b.ID)
	out, code := onTerminal(t, b, "tty; echo pid-$$; exit 5\n", "exec", "-t", b.ID, "sh")
	if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "pid-") || strings.Contains(out, "pid-1\r") {
		t.Errorf("exec -t terminal:\n%s", out)
	}
	if code != 5 {
		t.Errorf("exit %d, want 5; terminal:\n%s", code, out)
	}
	b.MustRuntime("delete", "-f", b.ID)
	b.AssertNothingLeft()
}
