package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/monitor"
	"github.com/moby/moby/api/pkg/stdcopy"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// execProc is an exec instance: created, then started once. Fields are
// guarded by Engine.mu. Exec instances live in memory only, as in docker.
type execProc struct {
	id        string
	container string
	cfg       ctypes.ExecCreateRequest
	started   bool
	pid       int
	exitCode  *int
	done      chan struct{}
}

func (x *execProc) running() bool { return x.started && x.exitCode == nil }

// isExecID: exec processes are held by the monitor as "<container>.<exec>".
func isExecID(id string) bool { return strings.Contains(id, ".") }

// ExecCreate makes an exec instance in a running container.
func (e *Engine) ExecCreate(ref string, cfg ctypes.ExecCreateRequest) (string, error) {
	if len(cfg.Cmd) == 0 {
		return "", errdefs.New(errdefs.ErrInvalid, "No exec command specified")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.lookup(ref)
	if err != nil {
		return "", err
	}
	if !c.rec.State.Running() {
		return "", errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s is not running", c.rec.ID))
	}
	if c.rec.State.Status == ctypes.StatePaused {
		return "", errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s is paused, unpause the container before exec", c.rec.ID))
	}
	id := newID()
	e.execs[id] = &execProc{id: id, container: c.rec.ID, cfg: cfg, done: make(chan struct{})}
	go e.emit(c, events.Action("exec_create: "+strings.Join(cfg.Cmd, " ")), map[string]string{"execID": id})
	return id, nil
}

// ExecStartError is an exec whose process could not be started (a
// missing binary, a bad user or working directory): its exit code is 126.
type ExecStartError struct{ Err error }

func (e *ExecStartError) Error() string { return e.Err.Error() }
func (e *ExecStartError) Unwrap() error { return e.Err }

// ExecStart starts an exec instance. Unless detach, the returned
// connection carries its streams (raw when tty) until it exits.
func (e *Engine) ExecStart(execID string, detach bool, consoleSize *[2]uint) (net.Conn, bool, error) {
	e.mu.Lock()
	x := e.execs[execID]
	if x == nil {
		e.mu.Unlock()
		return nil, false, errdefs.New(errdefs.ErrNotFound, "No such exec instance: "+execID)
	}
	if x.started {
		e.mu.Unlock()
		return nil, false, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("Error: Exec command %s is already running", execID))
	}
	c := e.ctrs[x.container]
	if c == nil || !c.rec.State.Running() {
		e.mu.Unlock()
		return nil, false, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s is not running", x.container))
	}
	x.started = true
	rec := c.rec
	e.mu.Unlock()
	fail := func(err error) (net.Conn, bool, error) {
		e.mu.Lock()
		code := 126
		x.exitCode = &code
		close(x.done)
		e.mu.Unlock()
		return nil, false, &ExecStartError{Err: err}
	}
	p, err := e.execProcess(rec, x.cfg)
	if err != nil {
		return fail(err)
	}
	stdio := monitor.StdioConfig{Tty: x.cfg.Tty, OpenStdin: x.cfg.AttachStdin, StdinOnce: true}
	size := x.cfg.ConsoleSize
	if consoleSize != nil {
		size = consoleSize
	}
	if size != nil && size[0] > 0 && size[1] > 0 {
		stdio.Height, stdio.Width = uint16(size[0]), uint16(size[1])
	}
	attach := monitor.AttachConfig{}
	if !detach {
		attach = monitor.AttachConfig{Stdin: x.cfg.AttachStdin, Stdout: x.cfg.AttachStdout, Stderr: x.cfg.AttachStderr}
	}
	pid, conn, err := e.mon.Exec(rec.ID, rec.ID+"."+execID, p, stdio, attach)
	if err != nil {
		return fail(err)
	}
	e.mu.Lock()
	x.pid = pid
	e.mu.Unlock()
	e.emit(c, events.Action("exec_start: "+strings.Join(x.cfg.Cmd, " ")), map[string]string{"execID": execID})
	return conn, x.cfg.Tty, nil
}

// execProcess is the container's process with the exec's command, env,
// user and working directory.
func (e *Engine) execProcess(rec Record, cfg ctypes.ExecCreateRequest) (*specs.Process, error) {
	raw, err := os.ReadFile(filepath.Join(e.bundleDir(rec.ID), "config.json"))
	if err != nil {
		return nil, fmt.Errorf("container %s: its config is gone: %w", rec.ID, err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, err
	}
	p := *spec.Process
	p.Args = cfg.Cmd
	p.Env = append(slices.Clone(p.Env), cfg.Env...)
	if cfg.WorkingDir != "" {
		p.Cwd = cfg.WorkingDir
	}
	if cfg.User != "" {
		u, err := resolveUser(spec.Root.Path, cfg.User, nil)
		if err != nil {
			return nil, err
		}
		p.User = u
	}
	if cfg.Privileged {
		all, err := capSet(&ctypes.HostConfig{Privileged: true})
		if err != nil {
			return nil, err
		}
		p.Capabilities = &specs.LinuxCapabilities{Bounding: p.Capabilities.Bounding, Effective: all, Permitted: all}
	}
	return &p, nil
}

// handleExecExit records an exec's exit code.
func (e *Engine) handleExecExit(x monitor.Exit) {
	_ = e.mon.Forget(x.ID)
	_, execID, _ := strings.Cut(x.ID, ".")
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.execs[execID]
	if p == nil || p.exitCode != nil {
		return
	}
	code := x.ExitCode
	p.exitCode = &code
	close(p.done)
	if c := e.ctrs[p.container]; c != nil {
		go e.emit(c, events.ActionExecDie, map[string]string{"execID": execID, "exitCode": strconv.Itoa(code)})
	}
}

// ExecInspect describes an exec instance.
func (e *Engine) ExecInspect(execID string) (*ctypes.ExecInspectResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := e.execs[execID]
	if x == nil {
		return nil, errdefs.New(errdefs.ErrNotFound, "No such exec instance: "+execID)
	}
	priv := x.cfg.Privileged
	return &ctypes.ExecInspectResponse{
		ID: x.id, Running: x.running(), ExitCode: x.exitCode, ContainerID: x.container, Pid: x.pid,
		OpenStdin: x.cfg.AttachStdin, OpenStdout: x.cfg.AttachStdout, OpenStderr: x.cfg.AttachStderr,
		CanRemove: x.exitCode != nil,
		ProcessConfig: &ctypes.ExecProcessConfig{
			Tty: x.cfg.Tty, Entrypoint: x.cfg.Cmd[0], Arguments: x.cfg.Cmd[1:], Privileged: &priv, User: x.cfg.User,
		},
	}, nil
}

// ExecResize sets an exec's terminal size.
func (e *Engine) ExecResize(execID string, height, width uint16) error {
	e.mu.Lock()
	x := e.execs[execID]
	e.mu.Unlock()
	if x == nil {
		return errdefs.New(errdefs.ErrNotFound, "No such exec instance: "+execID)
	}
	return e.mon.Resize(x.container+"."+execID, height, width)
}

// ExecWait waits up to timeout for an exec's exit code to be known.
func (e *Engine) ExecWait(execID string, timeout time.Duration) {
	e.mu.Lock()
	x := e.execs[execID]
	e.mu.Unlock()
	if x == nil {
		return
	}
	select {
	case <-x.done:
	case <-time.After(timeout):
	}
}

// ExecIO are the streams of RunExec: Stdin (nil: none), Stdout and
// Stderr (nil: discarded; with Tty the terminal's output goes to Stdout),
// and terminal sizes (height, width) while it runs.
type ExecIO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Tty            bool
	Resize         <-chan [2]uint16
}

// CopyStreams joins the streams of s to conn, a monitor connection of an
// exec or attach (raw: a terminal's; else docker's multiplexed output):
// s.Stdin to conn, its end of input to conn's, and conn's output to
// s.Stdout and s.Stderr. The channel gets the output copy's outcome once
// conn's output ends.
func CopyStreams(conn net.Conn, raw bool, s ExecIO) <-chan error {
	out, errw := s.Stdout, s.Stderr
	if out == nil {
		out = io.Discard
	}
	if errw == nil {
		errw = io.Discard
	}
	done := make(chan error, 1)
	go func() {
		if raw {
			_, err := io.Copy(out, conn)
			done <- err
			return
		}
		_, err := stdcopy.StdCopy(out, errw, conn)
		done <- err
	}()
	if s.Stdin != nil {
		go func() {
			io.Copy(conn, s.Stdin)
			if uc, ok := conn.(*net.UnixConn); ok {
				uc.CloseWrite()
			}
		}()
	}
	return done
}

// ErrExecTimeout is RunExec's error for a process it killed at its
// timeout.
var ErrExecTimeout = errors.New("the command did not finish in time and was killed")

// RunExec runs cmd in a running container with the streams of s and
// returns its exit code once it has ended and its output is delivered.
// At timeout (> 0) or when ctx ends, the process is killed. The exec
// instance is not kept.
func (e *Engine) RunExec(ctx context.Context, ref string, cmd []string, s ExecIO, timeout time.Duration) (int, error) {
	execID, err := e.ExecCreate(ref, ctypes.ExecCreateRequest{Cmd: cmd, Tty: s.Tty,
		AttachStdin: s.Stdin != nil, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return -1, err
	}
	defer e.forgetExec(execID)
	conn, _, err := e.ExecStart(execID, false, nil)
	if err != nil {
		return -1, err
	}
	defer conn.Close()
	done := CopyStreams(conn, s.Tty, s)
	var expire <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expire = t.C
	}
	kill := func() {
		e.mu.Lock()
		x := e.execs[execID]
		e.mu.Unlock()
		if x != nil {
			_ = e.mon.Kill(x.container+"."+execID, int(unix.SIGKILL), false)
		}
		conn.Close()
		<-done
	}
	for {
		select {
		case <-done:
			e.ExecWait(execID, 5*time.Second)
			insp, err := e.ExecInspect(execID)
			if err != nil || insp.ExitCode == nil {
				return -1, fmt.Errorf("exec %v: its exit status was lost", cmd)
			}
			return *insp.ExitCode, nil
		case sz, ok := <-s.Resize:
			if !ok {
				s.Resize = nil
				continue
			}
			_ = e.ExecResize(execID, sz[0], sz[1])
		case <-expire:
			kill()
			return -1, ErrExecTimeout
		case <-ctx.Done():
			kill()
			return -1, ctx.Err()
		}
	}
}
