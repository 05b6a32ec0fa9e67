package monitor

import (
	"io"
	"log/slog"
	"os"
	"os/signal"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A held process's exit is reported at once, even while a create or a
// hook holds spawnMu (waiting for a child of its own), and that child's
// status stays its waiter's.
func TestExitReportedWhileSpawnMuHeld(t *testing.T) {
	s := NewServer(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.idle = time.NewTimer(time.Hour)
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, unix.SIGCHLD)
	defer signal.Stop(sigc)
	go s.reap(sigc)

	// A hook's child, waited for by its own runner under spawnMu.
	s.spawnMu.RLock()
	hook, err := os.StartProcess("/bin/sh", []string{"sh", "-c", "exit 7"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	// A held process, exiting while the hook's runner still holds spawnMu.
	held, err := os.StartProcess("/bin/sh", []string{"sh", "-c", "exit 3"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	p := newProc("held", StdioConfig{})
	p.pid = held.Pid
	s.register(p)

	select {
	case <-p.reaped:
		if p.exitCode != 3 {
			t.Errorf("exit code %d, want 3", p.exitCode)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held process's exit waited for spawnMu")
	}
	st, err := hook.Wait()
	s.spawnMu.RUnlock()
	if err != nil || st.ExitCode() != 7 {
		t.Errorf("the hook's own wait: %v, %v (its status was taken)", st, err)
	}
}
