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

// signalRelay relays the signals this process receives to a process whose
// pid is set later. Setting up signal delivery costs Go a thread start (~1-2
// ms on a small machine), so it is begun before the container is created
// and overlaps that work; signals that arrive before the pid is known are
// delivered once it is.
type signalRelay struct {
	ch   chan os.Signal
	pid  chan int
	done chan struct{}
}

// forwarded lists the signals relayed: all that a terminal or a supervisor
// sends to stop, pause or notify a process.
var forwarded = []os.Signal{
	syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2,
	syscall.SIGALRM, syscall.SIGCONT, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU,
	syscall.SIGVTALRM, syscall.SIGPROF, syscall.SIGXCPU, syscall.SIGXFSZ, syscall.SIGPWR, syscall.SIGABRT,
}

func newSignalRelay() *signalRelay {
	r := &signalRelay{ch: make(chan os.Signal, 64), pid: make(chan int, 1), done: make(chan struct{})}
	go func() {
		signal.Notify(r.ch, forwarded...)
		var pid int
		var pending []os.Signal
		for {
			select {
			case pid = <-r.pid:
				for _, s := range pending {
					_ = unix.Kill(pid, s.(syscall.Signal))
				}
				pending = nil
			case s := <-r.ch:
				if pid == 0 {
					pending = append(pending, s)
					continue
				}
				_ = unix.Kill(pid, s.(syscall.Signal))
			case <-r.done:
				signal.Stop(r.ch)
				return
			}
		}
	}()
	return r
}

// target sets the pid to relay to.
func (r *signalRelay) target(pid int) { r.pid <- pid }

// stop ends the relay.
func (r *signalRelay) stop() { close(r.done) }
