// Package monitor is the one process per host that is the parent of every
// container berthd runs: it creates containers through the container
// library, holds their stdio (writing logs in json-file format and serving
// attach streams), reaps them as a child subreaper and keeps their exit
// statuses until berthd has read them. berthd can stop, crash and restart
// without touching a running container.
//
// berthd talks to it over a unix socket, one request per connection: a
// JSON request line, a JSON response line, and then, for Attach, Exec and
// Events, a stream on the same connection.
package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-project/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Op names a request.
type Op string

const (
	OpCreate Op = "create" // set up a container, blocked at its start barrier
	OpStart  Op = "start"  // release the barrier
	OpAttach Op = "attach" // the connection becomes the container's stdio
	OpExec   Op = "exec"   // start a process in a container; the connection becomes its stdio
	OpResize Op = "resize"
	OpKill   Op = "kill"
	OpList   Op = "list"   // every process the monitor holds, running or exited
	OpForget Op = "forget" // drop an exited process's record
	OpEvents Op = "events" // the connection streams Exit records
	// OpAdopt takes over a running container a lost monitor held: its
	// output FIFOs, its log; OpExited then tells its exit status (the
	// monitor is not its parent: berthd, which reaped it, is).
	OpAdopt  Op = "adopt"
	OpExited Op = "exited"
	// OpReopenLog: the process's log is opened anew at its path.
	OpReopenLog Op = "reopen-log"
)

// Request is the first line a client sends.
type Request struct {
	Op Op
	ID string // container id; for exec processes "<container id>.<exec id>"

	// Create.
	Bundle    string      `json:",omitempty"`
	Log       *LogConfig  `json:",omitempty"`
	Stdio     StdioConfig `json:",omitempty"`
	Container string      `json:",omitempty"` // exec: the container to run in

	// Exec.
	Process *specs.Process `json:",omitempty"`

	// Attach (and Exec's own attachment).
	Attach AttachConfig `json:",omitempty"`

	// Resize.
	Height, Width uint16 `json:",omitempty"`

	// Kill.
	Signal int  `json:",omitempty"`
	All    bool `json:",omitempty"`

	// Adopt (with Log and Stdio) and Exited.
	Pid      int `json:",omitempty"`
	ExitCode int `json:",omitempty"`
}

// FifoDir is where a container's output FIFOs are, under the monitor's
// directory: they outlive a monitor (berthd holds them open too), so a
// new monitor can take the container's output over (OpAdopt).
func FifoDir(monitorDir, id string) string { return filepath.Join(monitorDir, "fifo", id) }

// SaveExit writes a container's exit status next to its FIFOs as soon as
// it is known (reaped by the monitor, or by berthd for an adopted
// container): a monitor lost before reporting it leaves it there
// (SavedExit), instead of taking it along.
func SaveExit(monitorDir, id string, code int) {
	dir := FifoDir(monitorDir, id)
	if os.MkdirAll(dir, 0o700) == nil {
		_ = os.WriteFile(filepath.Join(dir, "exit"), []byte(strconv.Itoa(code)), 0o600)
	}
}

// SavedExit is the exit status a monitor saved for container id when it
// reaped it (in FifoDir), if any: a monitor lost before reporting an exit
// leaves it for berthd there.
func SavedExit(monitorDir, id string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(FifoDir(monitorDir, id), "exit"))
	if err != nil {
		return 0, false
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return code, err == nil
}

// LogConfig is where a container's output is logged (json-file).
type LogConfig struct {
	Path     string
	MaxSize  int64
	MaxFiles int
	Format   string `json:",omitempty"` // logfile.Options.Format
}

// StdioConfig says how a process's stdio is wired.
type StdioConfig struct {
	Tty       bool
	OpenStdin bool // keep a stdin pipe that attached clients write to
	StdinOnce bool // close the stdin pipe when the first attached client ends its input
	Height    uint16
	Width     uint16
}

// AttachConfig picks the streams of an attachment. Without a terminal,
// output is multiplexed in docker's 8-byte framing (stream, 0, 0, 0, size
// big-endian uint32); with one, raw.
type AttachConfig struct {
	Stdin, Stdout, Stderr bool
}

// Response is the line the monitor answers with.
type Response struct {
	Error string `json:",omitempty"`
	Class string `json:",omitempty"` // the error's kind (errorClasses)
	Pid   int    `json:",omitempty"`
	Procs []Proc `json:",omitempty"`
}

// Proc is a process the monitor holds.
type Proc struct {
	ID       string
	Pid      int
	Running  bool
	ExitCode int
	ExitedAt time.Time
	// OOMKilled: the OOM killer killed a process in the container's
	// cgroup (read before the cgroup is removed with the container).
	OOMKilled bool `json:",omitempty"`
	// Log, set in an event that is not an exit: the container's output
	// stopped being logged (a full disk) or is logged again.
	Log *LogNotice `json:",omitempty"`
}

// LogNotice reports lost log lines: the first loss (Resumed false, with
// its error) and the return to logging (Resumed true, Lines lost).
type LogNotice struct {
	Resumed bool
	Lines   int64
	Error   string
}

// Exit is an event: a process ended and its output is drained.
type Exit = Proc

// errorClasses are the error kinds that cross the monitor's socket, by
// their wire names: one table for both directions, so no kind is lost on
// the way (a missing cgroup controller stays "unavailable", a 503).
var errorClasses = []struct {
	name string
	kind error
}{
	{"notfound", errdefs.ErrNotFound}, {"conflict", errdefs.ErrConflict}, {"invalid", errdefs.ErrInvalid},
	{"unavailable", errdefs.ErrUnavailable}, {"unauthorized", errdefs.ErrUnauthorized}, {"forbidden", errdefs.ErrForbidden},
	{"notmodified", errdefs.ErrNotModified},
}

func (r *Response) err() error {
	if r.Error == "" {
		return nil
	}
	for _, c := range errorClasses {
		if c.name == r.Class {
			return fmt.Errorf("%s: %w", r.Error, c.kind)
		}
	}
	return errors.New(r.Error)
}

func errorResponse(err error) Response {
	r := Response{Error: err.Error()}
	for _, c := range errorClasses {
		if errors.Is(err, c.kind) {
			r.Class = c.name
			break
		}
	}
	return r
}

// Client reaches a monitor at a socket path. It holds no connection.
type Client struct{ Socket string }

// call sends req on a new connection and reads the response line. On
// success the connection is returned open when keep is set.
func (c Client) call(req Request, keep bool) (Response, net.Conn, error) {
	conn, err := net.Dial("unix", c.Socket)
	if err != nil {
		return Response{}, nil, fmt.Errorf("berth-monitor: %w: %w", err, errdefs.ErrUnavailable)
	}
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		conn.Close()
		return Response{}, nil, fmt.Errorf("berth-monitor: %w", err)
	}
	// Read the response byte by byte up to its newline, so that nothing
	// of the stream after it is buffered away from the caller.
	line, err := readLine(conn)
	if err != nil {
		conn.Close()
		return Response{}, nil, fmt.Errorf("berth-monitor: %s: %w", req.Op, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		conn.Close()
		return Response{}, nil, fmt.Errorf("berth-monitor: bad response: %w", err)
	}
	if err := resp.err(); err != nil {
		conn.Close()
		return resp, nil, err
	}
	if !keep {
		conn.Close()
		return resp, nil, nil
	}
	return resp, conn, nil
}

func readLine(conn net.Conn) ([]byte, error) {
	var line []byte
	b := make([]byte, 1)
	for {
		if _, err := conn.Read(b); err != nil {
			return nil, err
		}
		if b[0] == '\n' {
			return line, nil
		}
		line = append(line, b[0])
	}
}

// Create sets up a container from bundle (the monitor's child, blocked at
// its start barrier) and returns its pid.
func (c Client) Create(id, bundle string, log *LogConfig, stdio StdioConfig) (int, error) {
	r, _, err := c.call(Request{Op: OpCreate, ID: id, Bundle: bundle, Log: log, Stdio: stdio}, false)
	return r.Pid, err
}

// Start releases a created container.
func (c Client) Start(id string) error {
	_, _, err := c.call(Request{Op: OpStart, ID: id}, false)
	return err
}

// Attach returns a connection carrying the process's chosen streams. It
// ends when the process's output does.
func (c Client) Attach(id string, a AttachConfig) (net.Conn, error) {
	_, conn, err := c.call(Request{Op: OpAttach, ID: id, Attach: a}, true)
	return conn, err
}

// Exec starts p in a running container as process id ("<ctr>.<exec>").
// With any stream attached, the returned connection carries them from the
// first byte; otherwise it is nil.
func (c Client) Exec(container, id string, p *specs.Process, stdio StdioConfig, a AttachConfig) (int, net.Conn, error) {
	keep := a.Stdin || a.Stdout || a.Stderr
	r, conn, err := c.call(Request{Op: OpExec, ID: id, Container: container, Process: p, Stdio: stdio, Attach: a}, keep)
	return r.Pid, conn, err
}

// Resize sets a process's terminal size.
func (c Client) Resize(id string, height, width uint16) error {
	_, _, err := c.call(Request{Op: OpResize, ID: id, Height: height, Width: width}, false)
	return err
}

// ReopenLog has the monitor open a process's log file anew.
func (c Client) ReopenLog(id string) error {
	_, _, err := c.call(Request{Op: OpReopenLog, ID: id}, false)
	return err
}

// Kill signals a container's init, or with all every process in it.
func (c Client) Kill(id string, sig int, all bool) error {
	_, _, err := c.call(Request{Op: OpKill, ID: id, Signal: sig, All: all}, false)
	return err
}

// Adopt has the monitor take over a running container whose monitor was
// lost: its output FIFOs and its log.
func (c Client) Adopt(id string, pid int, log *LogConfig, stdio StdioConfig) error {
	_, _, err := c.call(Request{Op: OpAdopt, ID: id, Pid: pid, Log: log, Stdio: stdio}, false)
	return err
}

// Exited tells the monitor an adopted container's exit status.
func (c Client) Exited(id string, code int) error {
	_, _, err := c.call(Request{Op: OpExited, ID: id, ExitCode: code}, false)
	return err
}

// List returns every process the monitor holds.
func (c Client) List() ([]Proc, error) {
	r, _, err := c.call(Request{Op: OpList}, false)
	return r.Procs, err
}

// Forget drops the record of an exited process.
func (c Client) Forget(id string) error {
	_, _, err := c.call(Request{Op: OpForget, ID: id}, false)
	return err
}

// Events streams Exit records (and log notices, Exit.Log set) to fn until the connection ends (an error),
// fn returns an error, or ctx ends.
func (c Client) Events(ctx context.Context, ready func(), fn func(Exit) error) error {
	_, conn, err := c.call(Request{Op: OpEvents}, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if ready != nil {
		ready()
	}
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		var e Exit
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("berth-monitor: bad event: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("berth-monitor: event stream ended")
}
