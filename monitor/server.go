package monitor

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/container/console"
	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/logfile"
	"golang.org/x/sys/unix"
)

// Paths under a monitor's root directory.
const (
	SocketName  = "monitor.sock"
	PidfileName = "monitor.pid"
	RuntimeDir  = "runtime" // the container library's state root
)

// drainTimeout bounds how long output is read after a process exits: a
// descendant that escaped with the pipe must not hold the exit back.
const drainTimeout = 2 * time.Second

// A monitor with no process and no client exits: after idleExit, or
// firstClient when no client has come since it started.
const (
	idleExit    = time.Second
	firstClient = 5 * time.Second
)

// Server is the monitor. Preconditions: it runs as a child subreaper, so
// that every container init and exec'd process is its child.
type Server struct {
	root string
	log  *slog.Logger

	// spawnMu: spawning (and anything else that waits for a specific
	// child, like hooks) holds it for reading; the reaper's wait for any
	// child (orphans) holds it for writing, so it never steals a status.
	// The processes the monitor holds are reaped by pid, without it.
	spawnMu sync.RWMutex

	mu    sync.Mutex
	procs map[string]*proc
	byPid map[int]*proc
	subs  map[*subscriber]struct{}
	conns int
	idle  *time.Timer
	quit  chan struct{}
}

// proc is one process held: a container's init or an exec'd process.
type proc struct {
	id        string
	container bool
	pid       int
	tty       bool
	stdinOnce bool

	mu       sync.Mutex
	stdin    *os.File // pipe write end or the pty master; nil when closed
	master   *os.File // the pty master, when tty
	outputs  []*os.File
	log      *logfile.Writer
	atts     map[*attachment]struct{}
	draining sync.WaitGroup

	reaped    chan struct{} // closed by the reaper
	finished  chan struct{} // closed once output is drained and the exit reported
	exitCode  int
	exitedAt  time.Time
	oomKilled bool
	// adopted: taken over from a lost monitor; not our child, its exit
	// comes through OpExited.
	adopted  bool
	reapOnce sync.Once
	// pidfd refers to the process made by spawn (0: none, as for an
	// adopted one): signals aimed through it never reach another process
	// that took the pid after this one was reaped. Set before p is
	// registered; closed (and zeroed) by watch under mu.
	pidfd int
}

// signal sends sig to p's process: through its pidfd when it has one
// (ESRCH once reaped), else by pid.
func (p *proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pidfd > 0 {
		return unix.PidfdSendSignal(p.pidfd, sig, nil, 0)
	}
	return unix.Kill(p.pid, sig)
}

// attachment is one attached client. Its output goes through a queue of
// its own, written by its own goroutine: a client that stops reading holds
// back neither the process's output nor its log, and is dropped once its
// queue is full.
type attachment struct {
	conn net.Conn
	cfg  AttachConfig
	out  chan []byte   // framed output, in order; closed (under proc.mu) when no more comes
	done chan struct{} // closed by the writer once out is written or the client is gone
}

// attachQueue is how many output chunks (up to 16 KiB each) a client may
// fall behind before it is dropped.
const attachQueue = 1024

func newAttachment(conn net.Conn, cfg AttachConfig) *attachment {
	a := &attachment{conn: conn, cfg: cfg, out: make(chan []byte, attachQueue), done: make(chan struct{})}
	go a.write()
	return a
}

// write sends the queued output to the client, then closes its connection.
func (a *attachment) write() {
	defer close(a.done)
	defer a.conn.Close()
	alive := true
	for chunk := range a.out {
		if !alive {
			continue
		}
		a.conn.SetWriteDeadline(time.Now().Add(attachWriteTimeout))
		if _, err := a.conn.Write(chunk); err != nil {
			alive = false
			a.conn.Close()
		}
	}
}

type subscriber struct {
	ch   chan Exit
	conn net.Conn
}

// NewServer returns a monitor rooted at dir.
func NewServer(dir string, log *slog.Logger) *Server {
	return &Server{
		root: dir, log: log,
		procs: map[string]*proc{}, byPid: map[int]*proc{}, subs: map[*subscriber]struct{}{},
		quit: make(chan struct{}),
	}
}

// Serve listens on the root's socket until the monitor has been idle (no
// process, no client) for idleExit.
func (s *Server) Serve() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("becoming a child subreaper: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(s.root, RuntimeDir), 0o711); err != nil {
		return err
	}
	sock := filepath.Join(s.root, SocketName)
	if c, err := net.Dial("unix", sock); err == nil {
		c.Close()
		return fmt.Errorf("another monitor is listening on %s", sock)
	}
	os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	defer l.Close()
	if err := os.Chmod(sock, 0o600); err != nil {
		return err
	}
	pidfile := filepath.Join(s.root, PidfileName)
	if err := os.WriteFile(pidfile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
		return err
	}
	defer os.Remove(pidfile)

	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, unix.SIGCHLD)
	go s.reap(sigc)
	signal.Ignore(unix.SIGPIPE, unix.SIGHUP, unix.SIGINT)

	s.mu.Lock()
	s.idle = time.AfterFunc(firstClient, s.maybeQuit)
	s.mu.Unlock()
	go func() {
		<-s.quit
		l.Close()
	}()
	for {
		conn, err := l.Accept()
		if err != nil {
			select {
			case <-s.quit:
				return nil
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			s.log.Warn("accept", "err", err)
			continue
		}
		s.mu.Lock()
		s.conns++
		s.idle.Stop()
		s.mu.Unlock()
		go func() {
			s.handle(conn)
			conn.Close()
			s.mu.Lock()
			s.conns--
			s.armIdle()
			s.mu.Unlock()
		}()
	}
}

// armIdle starts the idle countdown when nothing is held. Called with mu.
func (s *Server) armIdle() {
	if s.conns == 0 && len(s.procs) == 0 {
		s.idle.Reset(idleExit)
	}
}

func (s *Server) maybeQuit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == 0 && len(s.procs) == 0 {
		select {
		case <-s.quit:
		default:
			close(s.quit)
		}
	}
}

func (s *Server) handle(conn net.Conn) {
	line, err := readLine(conn)
	if err != nil {
		return
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		reply(conn, errorResponse(fmt.Errorf("bad request: %v: %w", err, errdefs.ErrInvalid)))
		return
	}
	switch req.Op {
	case OpCreate:
		pid, err := s.create(req)
		replyErr(conn, Response{Pid: pid}, err)
	case OpStart:
		replyErr(conn, Response{}, s.start(req.ID))
	case OpAttach:
		s.attach(conn, req)
	case OpExec:
		s.exec(conn, req)
	case OpResize:
		replyErr(conn, Response{}, s.resize(req))
	case OpKill:
		replyErr(conn, Response{}, s.kill(req))
	case OpList:
		reply(conn, Response{Procs: s.list()})
	case OpForget:
		replyErr(conn, Response{}, s.forget(req.ID))
	case OpEvents:
		s.events(conn)
	case OpAdopt:
		replyErr(conn, Response{}, s.adopt(req))
	case OpExited:
		replyErr(conn, Response{}, s.exited(req))
	case OpReopenLog:
		replyErr(conn, Response{}, s.reopenLog(req.ID))
	default:
		reply(conn, errorResponse(fmt.Errorf("unknown op %q: %w", req.Op, errdefs.ErrInvalid)))
	}
}

func reply(conn net.Conn, r Response) error {
	return json.NewEncoder(conn).Encode(r)
}

func replyErr(conn net.Conn, r Response, err error) {
	if err != nil {
		r = errorResponse(err)
	}
	reply(conn, r)
}

func (s *Server) runtimeRoot() string { return filepath.Join(s.root, RuntimeDir) }

func (s *Server) get(id string) (*proc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.procs[id]
	if p == nil {
		return nil, fmt.Errorf("no process %q in the monitor: %w", id, errdefs.ErrNotFound)
	}
	return p, nil
}

// stdio makes a process's standard streams: the child's ends (to pass to
// the library, closed by the caller after the spawn), and the monitor's.
type stdio struct {
	child   container.Stdio
	console *os.File // the library's end of the console socketpair
	recv    *os.File // ours
}

func (s *Server) newStdio(p *proc, cfg StdioConfig) (*stdio, error) {
	if p.container && !cfg.Tty {
		return s.fifoStdio(p, cfg)
	}
	st := &stdio{}
	fail := func(err error) (*stdio, error) {
		st.closeChild()
		p.closeOurs()
		if st.recv != nil {
			st.recv.Close()
		}
		return nil, err
	}
	devnull := func() (*os.File, error) { return os.OpenFile(os.DevNull, os.O_RDWR, 0) }
	if cfg.Tty {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fail(err)
		}
		st.console, st.recv = os.NewFile(uintptr(fds[0]), "console"), os.NewFile(uintptr(fds[1]), "console-recv")
		for i := range st.child {
			if st.child[i], err = devnull(); err != nil {
				return fail(err)
			}
		}
		return st, nil
	}
	var err error
	if cfg.OpenStdin {
		r, w, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		st.child[0], p.stdin = r, w
	} else if st.child[0], err = devnull(); err != nil {
		return fail(err)
	}
	for i := 1; i <= 2; i++ {
		r, w, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		st.child[i] = w
		p.outputs = append(p.outputs, r)
	}
	return st, nil
}

// fifoStdio wires a container's stdio through FIFOs in FifoDir rather
// than pipes: the same kernel pipes once open, but reachable by path, so
// that berthd can hold them open too and a new monitor can take them over
// if this one is lost — the container's writes then wait in the pipe
// (1 MiB) instead of failing. Opened read side first (non-blocking), so
// no open waits.
func (s *Server) fifoStdio(p *proc, cfg StdioConfig) (*stdio, error) {
	st := &stdio{}
	dir := FifoDir(s.root, p.id)
	fail := func(err error) (*stdio, error) {
		st.closeChild()
		p.closeOurs()
		os.RemoveAll(dir)
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	fifo := func(name string) (string, error) {
		path := filepath.Join(dir, name)
		os.Remove(path)
		return path, unix.Mkfifo(path, 0o600)
	}
	if cfg.OpenStdin {
		path, err := fifo("0")
		if err != nil {
			return fail(err)
		}
		r, err := OpenFifo(path, unix.O_RDONLY)
		if err != nil {
			return fail(err)
		}
		st.child[0] = r
		if p.stdin, err = OpenFifo(path, unix.O_WRONLY); err != nil {
			return fail(err)
		}
		if err := setBlocking(r); err != nil { // the container's stdin blocks
			return fail(err)
		}
	} else {
		var err error
		if st.child[0], err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
			return fail(err)
		}
	}
	for i := 1; i <= 2; i++ {
		path, err := fifo(strconv.Itoa(i))
		if err != nil {
			return fail(err)
		}
		r, err := OpenFifo(path, unix.O_RDONLY)
		if err != nil {
			return fail(err)
		}
		p.outputs = append(p.outputs, r)
		w, err := OpenFifo(path, unix.O_WRONLY)
		if err != nil {
			return fail(err)
		}
		if err := setBlocking(w); err != nil {
			return fail(err)
		}
		st.child[i] = w
	}
	return st, nil
}

// OpenFifo opens a FIFO without waiting for its other side, with a
// larger buffer: output waits there while no monitor reads it. berthd
// opens its held ends with it too.
func OpenFifo(path string, mode int) (*os.File, error) {
	fd, err := unix.Open(path, mode|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, 1<<20)
	return os.NewFile(uintptr(fd), path), nil
}

func setBlocking(f *os.File) error {
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err == nil {
		_, err = unix.FcntlInt(f.Fd(), unix.F_SETFL, flags&^unix.O_NONBLOCK)
	}
	return err
}

// adopt takes over a running container a lost monitor held: its output
// and stdin FIFOs (held open meanwhile by berthd, so nothing written was
// lost), its log (appended to). Its exit comes from berthd (OpExited).
func (s *Server) adopt(req Request) error {
	if err := container.ValidateID(req.ID); err != nil {
		return err
	}
	if req.Stdio.Tty {
		return fmt.Errorf("container %s has a terminal, which went with its monitor: %w", req.ID, errdefs.ErrInvalid)
	}
	s.mu.Lock()
	_, taken := s.procs[req.ID]
	s.mu.Unlock()
	if taken {
		return fmt.Errorf("container %s is already held by the monitor: %w", req.ID, errdefs.ErrConflict)
	}
	p := newProc(req.ID, req.Stdio)
	p.container, p.adopted, p.pid = true, true, req.Pid
	dir := FifoDir(s.root, req.ID)
	for i := 1; i <= 2; i++ {
		f, err := OpenFifo(filepath.Join(dir, strconv.Itoa(i)), unix.O_RDONLY)
		if err != nil {
			p.closeOurs()
			return err
		}
		p.outputs = append(p.outputs, f)
	}
	if req.Stdio.OpenStdin {
		if f, err := OpenFifo(filepath.Join(dir, "0"), unix.O_WRONLY); err == nil {
			p.stdin = f
		}
	}
	if req.Log != nil {
		w, err := logfile.Create(req.Log.Path, logfile.Options{MaxSize: req.Log.MaxSize, MaxFiles: req.Log.MaxFiles, Format: req.Log.Format})
		if err != nil {
			p.closeOurs()
			return err
		}
		p.log = w
		s.watchDrops(p, w)
	}
	s.mu.Lock()
	s.procs[p.id] = p
	s.idle.Stop()
	s.mu.Unlock()
	go s.watch(p)
	s.log.Info("adopted a container of a lost monitor", "id", p.id, "pid", p.pid)
	return nil
}

// exited records an adopted container's exit, which berthd reaped.
func (s *Server) exited(req Request) error {
	p, err := s.get(req.ID)
	if err != nil {
		return err
	}
	if !p.adopted {
		return fmt.Errorf("%s is the monitor's own child: its exit is the monitor's to reap: %w", req.ID, errdefs.ErrInvalid)
	}
	p.reapOnce.Do(func() {
		p.exitCode, p.exitedAt = req.ExitCode, time.Now().UTC()
		close(p.reaped)
	})
	SaveExit(s.root, p.id, req.ExitCode)
	return nil
}

func (st *stdio) closeChild() {
	for _, f := range st.child {
		if f != nil {
			f.Close()
		}
	}
	if st.console != nil {
		st.console.Close()
	}
}

// receiveTerminal takes the pty master the init sent over the console
// socket and sizes it.
func (st *stdio) receiveTerminal(p *proc, cfg StdioConfig) error {
	defer st.recv.Close()
	m, err := console.Receive(st.recv)
	if err != nil {
		return err
	}
	p.master, p.stdin = m, m
	p.outputs = []*os.File{m}
	if cfg.Height > 0 && cfg.Width > 0 {
		_ = unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: cfg.Height, Col: cfg.Width})
	}
	return nil
}

func (p *proc) closeOurs() {
	if p.stdin != nil && p.stdin != p.master {
		p.stdin.Close()
	}
	for _, f := range p.outputs {
		f.Close()
	}
}

func newProc(id string, cfg StdioConfig) *proc {
	return &proc{
		id: id, tty: cfg.Tty, stdinOnce: cfg.StdinOnce,
		atts: map[*attachment]struct{}{}, reaped: make(chan struct{}), finished: make(chan struct{}),
	}
}

func (s *Server) create(req Request) (int, error) {
	if err := container.ValidateID(req.ID); err != nil {
		return 0, err
	}
	s.mu.Lock()
	_, taken := s.procs[req.ID]
	s.mu.Unlock()
	if taken {
		return 0, fmt.Errorf("container %s is already held by the monitor: %w", req.ID, errdefs.ErrConflict)
	}
	p := newProc(req.ID, req.Stdio)
	p.container = true
	if req.Log != nil {
		w, err := logfile.Create(req.Log.Path, logfile.Options{MaxSize: req.Log.MaxSize, MaxFiles: req.Log.MaxFiles, Format: req.Log.Format})
		if err != nil {
			return 0, err
		}
		p.log = w
		s.watchDrops(p, w)
	}
	st, err := s.newStdio(p, req.Stdio)
	if err != nil {
		p.closeLog()
		return 0, err
	}
	err = s.spawn(p, st, req.Stdio, func() (int, error) {
		c, err := container.Create(container.CreateOpts{
			Root: s.runtimeRoot(), ID: req.ID, Bundle: req.Bundle, Console: st.console, Stdio: st.child,
		})
		if err != nil {
			return 0, err
		}
		return c.Pid(), nil
	})
	if err != nil {
		if p.pid == 0 { // else watch closes it
			p.closeLog()
		}
		return 0, err
	}
	go s.watch(p)
	return p.pid, nil
}

// watchDrops reports lost log lines of p to berthd (and the monitor's
// log).
func (s *Server) watchDrops(p *proc, w *logfile.Writer) {
	w.OnDrop(func(r logfile.DropReport) {
		n := &LogNotice{Resumed: r.Resumed, Lines: r.Lines}
		if r.Err != nil {
			n.Error = r.Err.Error()
		}
		if r.Resumed {
			s.log.Warn("container output logged again", "id", p.id, "lost", r.Lines)
		} else {
			s.log.Warn("container output not logged", "id", p.id, "err", r.Err)
		}
		s.mu.Lock()
		s.publish(Proc{ID: p.id, Pid: p.pid, Running: true, Log: n})
		s.mu.Unlock()
	})
}

// spawn runs start (which makes p's process from st's child ends) with
// the reaper held off, registers p, closes the child ends, and for a
// terminal receives the pty master. On error nothing of p is left open;
// a process already made is killed and left to watch to finish.
func (s *Server) spawn(p *proc, st *stdio, cfg StdioConfig, start func() (int, error)) error {
	s.spawnMu.RLock()
	pid, err := start()
	if err == nil {
		p.pid = pid
		// Not reaped yet: the reaper waits by pid only for registered
		// processes, and for any child only with spawnMu. pid is still
		// this process.
		if fd, err := unix.PidfdOpen(pid, 0); err == nil { // close-on-exec
			p.pidfd = fd
		}
		s.register(p)
	}
	s.spawnMu.RUnlock()
	st.closeChild()
	if err != nil {
		if st.recv != nil {
			st.recv.Close()
		}
		p.closeOurs()
		return err
	}
	if p.tty {
		if err := st.receiveTerminal(p, cfg); err != nil {
			_ = p.signal(unix.SIGKILL)
			go s.watch(p)
			return err
		}
	}
	return nil
}

// register makes p known by id and pid. Called with spawnMu held, so the
// reaper cannot see p's exit before p is known.
func (s *Server) register(p *proc) {
	s.mu.Lock()
	s.procs[p.id] = p
	s.byPid[p.pid] = p
	s.idle.Stop()
	s.mu.Unlock()
}

func (p *proc) closeLog() {
	if p.log != nil {
		p.log.Close()
	}
}

func (s *Server) start(id string) error {
	if _, err := s.get(id); err != nil {
		return err
	}
	c, err := container.Load(s.runtimeRoot(), id)
	if err != nil {
		return err
	}
	s.spawnMu.RLock() // poststart hooks are children we wait for
	defer s.spawnMu.RUnlock()
	return c.Start()
}

// watch pumps p's output until it ends, then, once p has been reaped,
// finishes p: closes its stdio and log, deletes a container's runtime
// state (its cgroups) and reports the exit.
func (s *Server) watch(p *proc) {
	for _, f := range p.outputs {
		p.draining.Add(1)
		stream := byte(1)
		if len(p.outputs) == 2 && f == p.outputs[1] {
			stream = 2
		}
		go p.pump(stream, f)
	}
	<-p.reaped
	drained := make(chan struct{})
	go func() { p.draining.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
		for _, f := range p.outputs {
			f.Close()
		}
		<-drained
	}
	// Our ends of the output pipes: closed now, not whenever the garbage
	// collector would finalize them (a burst of rm -f left dozens open).
	for _, f := range p.outputs {
		if f != p.master {
			f.Close()
		}
	}
	p.mu.Lock()
	if p.stdin != nil {
		p.stdin.Close()
		p.stdin = nil
	}
	for a := range p.atts {
		close(a.out) // its writer sends what is queued, then closes the connection
	}
	p.atts = nil
	p.mu.Unlock()
	if p.master != nil {
		p.master.Close()
	}
	p.closeLog()
	if p.container {
		s.spawnMu.RLock()
		if c, err := container.Load(s.runtimeRoot(), p.id); err == nil {
			if n, err := c.OOMKills(); err == nil && n > 0 {
				p.oomKilled = true
			}
			if err := c.Delete(true); err != nil {
				s.log.Warn("delete runtime state", "id", p.id, "err", err)
			}
		}
		s.spawnMu.RUnlock()
	}
	p.mu.Lock()
	if p.pidfd > 0 {
		unix.Close(p.pidfd)
		p.pidfd = 0
	}
	p.mu.Unlock()
	close(p.finished)
	s.mu.Lock()
	delete(s.byPid, p.pid)
	s.publish(p.record())
	s.mu.Unlock()
	s.log.Info("exited", "id", p.id, "pid", p.pid, "code", p.exitCode)
}

// publish sends an event to every subscriber. Called with s.mu held.
func (s *Server) publish(e Proc) {
	for sub := range s.subs {
		select {
		case sub.ch <- e:
		default: // a subscriber that does not keep up resyncs with List
			sub.conn.Close()
			delete(s.subs, sub)
		}
	}
}

func (p *proc) record() Proc {
	r := Proc{ID: p.id, Pid: p.pid, Running: true}
	select {
	case <-p.finished:
		r.Running, r.ExitCode, r.ExitedAt, r.OOMKilled = false, p.exitCode, p.exitedAt, p.oomKilled
	default:
	}
	return r
}

// pump copies one output stream to the log and the attachments.
func (p *proc) pump(stream byte, f *os.File) {
	defer p.draining.Done()
	name := map[byte]string{1: "stdout", 2: "stderr"}[stream]
	buf := make([]byte, 16*1024)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if p.log != nil {
				_ = p.log.Write(name, buf[:n])
			}
			p.broadcast(stream, buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// attachWriteTimeout drops an attached client that stops reading.
const attachWriteTimeout = 10 * time.Second

// broadcast queues b for every attached client that wants the stream,
// without waiting for any of them. Called with p.mu not held.
func (p *proc) broadcast(stream byte, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var chunk []byte
	for a := range p.atts {
		if stream == 1 && !a.cfg.Stdout || stream == 2 && !a.cfg.Stderr {
			continue
		}
		if chunk == nil {
			// One copy for every client: the pump reuses b.
			if p.tty {
				chunk = append([]byte(nil), b...)
			} else {
				chunk = make([]byte, 8, 8+len(b))
				chunk[0] = stream
				binary.BigEndian.PutUint32(chunk[4:], uint32(len(b)))
				chunk = append(chunk, b...)
			}
		}
		select {
		case a.out <- chunk:
		default:
			close(a.out) // too far behind: dropped
			delete(p.atts, a)
		}
	}
}

// attach serves an attach request: conn carries the streams until p's
// output ends.
func (s *Server) attach(conn net.Conn, req Request) {
	p, err := s.get(req.ID)
	if err != nil {
		replyErr(conn, Response{}, err)
		return
	}
	p.mu.Lock()
	if p.atts == nil {
		p.mu.Unlock()
		replyErr(conn, Response{}, fmt.Errorf("container %s is not running: %w", req.ID, errdefs.ErrConflict))
		return
	}
	// The reply goes out before the attachment's writer can write.
	reply(conn, Response{Pid: p.pid})
	a := newAttachment(conn, req.Attach)
	p.atts[a] = struct{}{}
	p.mu.Unlock()
	s.serveAttachment(p, a)
}

// serveAttachment feeds an attached client's input to p's stdin and
// returns when p has finished and the client has all of its output.
func (s *Server) serveAttachment(p *proc, a *attachment) {
	if a.cfg.Stdin {
		go p.feed(a.conn)
	}
	<-p.finished
	<-a.done
}

// feed copies a client's input to stdin. At its end, a stdin opened for
// one client is closed (EOF for the process).
func (p *proc) feed(conn net.Conn) {
	p.mu.Lock()
	in := p.stdin
	p.mu.Unlock()
	if in == nil {
		return
	}
	_, _ = io.Copy(in, bufio.NewReader(conn))
	if p.stdinOnce && !p.tty {
		p.mu.Lock()
		if p.stdin != nil {
			p.stdin.Close()
			p.stdin = nil
		}
		p.mu.Unlock()
	}
}

// exec starts a process in a container, attached to conn when asked.
func (s *Server) exec(conn net.Conn, req Request) {
	if req.Process == nil {
		replyErr(conn, Response{}, fmt.Errorf("exec without a process: %w", errdefs.ErrInvalid))
		return
	}
	s.mu.Lock()
	_, taken := s.procs[req.ID]
	s.mu.Unlock()
	if taken {
		replyErr(conn, Response{}, fmt.Errorf("process %s exists: %w", req.ID, errdefs.ErrConflict))
		return
	}
	if _, err := s.get(req.Container); err != nil {
		replyErr(conn, Response{}, err)
		return
	}
	c, err := container.Load(s.runtimeRoot(), req.Container)
	if err != nil {
		replyErr(conn, Response{}, err)
		return
	}
	p := newProc(req.ID, req.Stdio)
	req.Process.Terminal = req.Stdio.Tty
	st, err := s.newStdio(p, req.Stdio)
	if err != nil {
		replyErr(conn, Response{}, err)
		return
	}
	err = s.spawn(p, st, req.Stdio, func() (int, error) {
		return c.Exec(container.ExecOpts{Process: req.Process, Console: st.console, Stdio: st.child})
	})
	if err != nil {
		replyErr(conn, Response{}, err)
		return
	}
	pid := p.pid
	attached := req.Attach.Stdin || req.Attach.Stdout || req.Attach.Stderr
	reply(conn, Response{Pid: pid})
	var a *attachment
	if attached {
		a = newAttachment(conn, req.Attach)
		p.mu.Lock()
		p.atts[a] = struct{}{}
		p.mu.Unlock()
	}
	go s.watch(p)
	if attached {
		s.serveAttachment(p, a)
	}
}

func (s *Server) resize(req Request) error {
	p, err := s.get(req.ID)
	if err != nil {
		return err
	}
	if p.master == nil {
		return fmt.Errorf("%s has no terminal: %w", req.ID, errdefs.ErrConflict)
	}
	return unix.IoctlSetWinsize(int(p.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: req.Height, Col: req.Width})
}

// reopenLog has a process's log writer open its path anew (the file was
// moved away by a log rotator).
func (s *Server) reopenLog(id string) error {
	p, err := s.get(id)
	if err != nil {
		return err
	}
	w := p.log // set once, at create or adopt
	if w == nil {
		return fmt.Errorf("%s has no log: %w", id, errdefs.ErrConflict)
	}
	return w.Reopen()
}

func (s *Server) kill(req Request) error {
	p, err := s.get(req.ID)
	if err != nil {
		return err
	}
	select {
	case <-p.reaped:
		return fmt.Errorf("%s is not running: %w", req.ID, errdefs.ErrConflict)
	default:
	}
	if !p.container {
		return p.signal(syscall.Signal(req.Signal))
	}
	c, err := container.Load(s.runtimeRoot(), req.ID)
	if err != nil {
		return err
	}
	return c.Signal(syscall.Signal(req.Signal), req.All)
}

func (s *Server) list() []Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Proc, 0, len(s.procs))
	for _, p := range s.procs {
		out = append(out, p.record())
	}
	return out
}

func (s *Server) forget(id string) error {
	p, err := s.get(id)
	if err != nil {
		return err
	}
	select {
	case <-p.finished:
	default:
		return fmt.Errorf("%s is still running: %w", id, errdefs.ErrConflict)
	}
	s.mu.Lock()
	delete(s.procs, id)
	s.armIdle()
	s.mu.Unlock()
	if p.container { // its saved exit status, with it, has been read
		os.RemoveAll(FifoDir(s.root, id))
	}
	return nil
}

// events streams exits to conn until it fails.
func (s *Server) events(conn net.Conn) {
	sub := &subscriber{ch: make(chan Exit, 1024), conn: conn}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	if err := reply(conn, Response{}); err != nil {
		s.dropSub(sub)
		return
	}
	// A read returns when the client goes away.
	gone := make(chan struct{})
	go func() { io.Copy(io.Discard, conn); close(gone) }()
	enc := json.NewEncoder(conn)
	for {
		select {
		case e := <-sub.ch:
			if err := enc.Encode(e); err != nil {
				s.dropSub(sub)
				return
			}
		case <-gone:
			s.dropSub(sub)
			return
		}
	}
}

func (s *Server) dropSub(sub *subscriber) {
	s.mu.Lock()
	delete(s.subs, sub)
	s.mu.Unlock()
}

// reap collects every exited child. The processes it holds are reaped by
// pid, without spawnMu: their statuses reach subscribers at once, even
// while a create or a hook runs (those wait for children of their own,
// which a wait for any child could take from them). The rest — orphans
// reparented to the monitor — are released with a wait for any child,
// under spawnMu, when no create or hook holds it (or on a later signal or
// tick).
func (s *Server) reap(sigc <-chan os.Signal) {
	tick := time.NewTicker(orphanSweep)
	defer tick.Stop()
	for {
		select {
		case <-sigc:
		case <-tick.C:
		}
		s.reapHeld()
		if s.spawnMu.TryLock() {
			s.reapAny()
			s.spawnMu.Unlock()
		}
	}
}

// orphanSweep is how often orphans are looked for without a SIGCHLD (one
// that arrived while a create held spawnMu left them for later).
const orphanSweep = 5 * time.Second

// reapHeld reaps, by pid, the held processes that have exited.
func (s *Server) reapHeld() {
	s.mu.Lock()
	var held []*proc
	for _, p := range s.byPid {
		if !p.adopted {
			held = append(held, p)
		}
	}
	s.mu.Unlock()
	for _, p := range held {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(p.pid, &ws, unix.WNOHANG, nil)
		for err == unix.EINTR {
			pid, err = unix.Wait4(p.pid, &ws, unix.WNOHANG, nil)
		}
		if err == nil && pid == p.pid {
			s.noteExit(p, ws)
		}
	}
}

// reapAny reaps whatever child has exited. Called with spawnMu held.
func (s *Server) reapAny() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		s.mu.Lock()
		p := s.byPid[pid]
		s.mu.Unlock()
		if p != nil {
			s.noteExit(p, ws)
		}
	}
}

// noteExit records p's exit status, once.
func (s *Server) noteExit(p *proc, ws unix.WaitStatus) {
	code := ws.ExitStatus()
	if ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	p.reapOnce.Do(func() {
		p.exitCode, p.exitedAt = code, time.Now().UTC()
		close(p.reaped)
	})
	if p.container {
		SaveExit(s.root, p.id, code)
	}
}
