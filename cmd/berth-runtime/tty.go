package main

import (
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/berth-project/berth/container/console"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// ttyProxy serves a foreground `run` or `exec` whose process has a terminal
// but no --console-socket was given: the runtime receives the pty master
// itself and copies it to and from its own stdio, as runc does.
type ttyProxy struct {
	local, remote *os.File
	master        *os.File
	restore       func()
	out           chan struct{}
}

func newTTYProxy() (*ttyProxy, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &ttyProxy{local: os.NewFile(uintptr(fds[0]), "console-local"), remote: os.NewFile(uintptr(fds[1]), "console-remote")}, nil
}

// attach receives the master and starts copying. Call after the process
// was created.
func (t *ttyProxy) attach() error {
	t.remote.Close()
	m, err := console.Receive(t.local)
	if err != nil {
		return err
	}
	t.master = m
	in := int(os.Stdin.Fd())
	if term.IsTerminal(in) {
		if st, err := term.MakeRaw(in); err == nil {
			t.restore = func() { _ = term.Restore(in, st) }
		}
		t.resize()
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		go func() {
			for range winch {
				t.resize()
			}
		}()
	}
	go func() { _, _ = io.Copy(m, os.Stdin) }()
	t.out = make(chan struct{})
	go func() {
		_, _ = io.Copy(os.Stdout, m)
		close(t.out)
	}()
	return nil
}

func (t *ttyProxy) resize() {
	ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ)
	if err == nil && t.master != nil {
		_ = unix.IoctlSetWinsize(int(t.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// close waits briefly for the last output, then restores the terminal.
func (t *ttyProxy) close() {
	if t.out != nil {
		select {
		case <-t.out:
		case <-time.After(time.Second):
		}
	}
	if t.restore != nil {
		t.restore()
	}
	t.local.Close()
	t.remote.Close()
}

// forwardSignals relays the signals this process receives to pid, until
// the returned function is called.
func forwardSignals(pid int) func() {
	ch := make(chan os.Signal, 64)
	signal.Notify(ch)
	go func() {
		for s := range ch {
			sig := s.(syscall.Signal)
			switch sig {
			case syscall.SIGCHLD, syscall.SIGWINCH, syscall.SIGURG, syscall.SIGPIPE:
				continue
			}
			_ = unix.Kill(pid, sig)
		}
	}()
	return func() { signal.Stop(ch); close(ch) }
}
