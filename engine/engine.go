// Package engine is berthd's core without HTTP: containers — their
// metadata, lifecycle, logs and exits — over the image store and the
// monitor process that parents them.
//
// Containers are records in a bbolt file (one transaction per change);
// what runs is held by berth-monitor, so berthd can stop or crash at any
// moment and find its containers on the next start: Open reconciles the
// records with what the monitor still holds (live restore).
//
// Concurrency: an Engine is safe for concurrent use. mu guards the maps and
// every record; lifecycle steps that take time (mounting, spawning,
// waiting) run without it, a container's busy field keeping two of them
// from overlapping on one container.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/monitor"
	berthnet "github.com/berth-project/berth/network"
	"github.com/berth-project/berth/volume"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// Options configure an Engine.
type Options struct {
	DataRoot string // persistent: containers.db, containers/<id>/ (logs, hosts files)
	ExecRoot string // runtime: bundles, the monitor's socket and state
	Images   *image.Store
	Volumes  *volume.Store
	// MonitorBinary is berth-monitor; "" looks beside this executable,
	// then in $PATH.
	MonitorBinary string
	// CgroupParent is the cgroup under which every container's is made
	// (<parent>/<id>); "" means "/berth".
	CgroupParent string
	// InitBinary is berth-init, for --init; "" looks beside this
	// executable, then in $PATH.
	InitBinary string
	// Network gives bridge-mode containers their sandbox; nil leaves
	// them a network namespace with only loopback.
	Network *berthnet.Manager
	Log     *slog.Logger
	// Userns: the user namespaces containers get (userns.go); the zero
	// value gives none.
	Userns UsernsOptions
}

// Engine runs containers.
type Engine struct {
	o   Options
	db  *bolt.DB
	mon monitor.Client
	log *slog.Logger

	mu    sync.Mutex
	ctrs  map[string]*ctr   // by id
	names map[string]string // "/name" → id
	execs map[string]*execProc

	events eventLog

	// dbMu orders the writes of container records (write), which happen
	// after mu is released: an fsync under mu would hold every request.
	dbMu   sync.Mutex
	monMu  sync.Mutex      // starting the monitor
	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	closed chan struct{}
	// adopted: containers taken over from a lost monitor whose exit a
	// goroutine of berthd waits for (adopt.go).
	adopted map[string]bool
	// copyLayers: a user-namespaced container's layers are chown-copied
	// per range (storage.MountShifted), not idmapped; layersWhy says why.
	copyLayers bool
	layersWhy  string
	closeOnce  sync.Once
	wg         sync.WaitGroup
}

var bucketContainers = []byte("containers")

// Open loads the container records, starts the monitor if none runs, and
// reconciles the records with the processes it holds.
func Open(o Options) (*Engine, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	for _, d := range []string{filepath.Join(o.DataRoot, "containers"), filepath.Join(o.ExecRoot, "containers"), filepath.Join(o.ExecRoot, "monitor")} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, err
		}
	}
	db, err := bolt.Open(filepath.Join(o.DataRoot, "containers.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("container metadata: %w", err)
	}
	e := &Engine{
		o: o, db: db, log: o.Log,
		mon:  monitor.Client{Socket: filepath.Join(o.ExecRoot, "monitor", monitor.SocketName)},
		ctrs: map[string]*ctr{}, names: map[string]string{}, execs: map[string]*execProc{}, adopted: map[string]bool{},
		closed: make(chan struct{}),
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	if err := e.chooseLayers(); err != nil {
		db.Close()
		return nil, err
	}
	if err := e.load(); err != nil {
		db.Close()
		return nil, err
	}
	if err := e.ensureMonitor(); err != nil {
		db.Close()
		return nil, err
	}
	ready := make(chan struct{})
	e.wg.Add(1)
	go e.watchExits(ready)
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		e.log.Warn("monitor events not ready; continuing")
	}
	for _, c := range e.snapshot() {
		if c.rec.HostConfig != nil && wantsRestartOnBoot(c) {
			e.scheduleRestart(c, 0)
		}
		e.mu.Lock()
		running := c.rec.State.Running()
		e.mu.Unlock()
		if running { // live restore: the health checks go on, the FIFOs are held
			e.startHealth(c)
			e.holdFifos(c)
		}
	}
	return e, nil
}

// Close stops watching the monitor. Containers keep running. Closing
// again does nothing.
func (e *Engine) Close() error {
	var err error
	e.closeOnce.Do(func() {
		close(e.closed)
		e.cancel()
		e.wg.Wait()
		err = e.db.Close()
	})
	return err
}

func (e *Engine) snapshot() []*ctr {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*ctr, 0, len(e.ctrs))
	for _, c := range e.ctrs {
		out = append(out, c)
	}
	return out
}

// ensureMonitor starts berth-monitor unless one answers on its socket.
func (e *Engine) ensureMonitor() error {
	e.monMu.Lock()
	defer e.monMu.Unlock()
	if _, err := e.mon.List(); err == nil {
		return nil
	}
	bin := e.o.MonitorBinary
	if bin == "" {
		if self, err := os.Executable(); err == nil {
			if p := filepath.Join(filepath.Dir(self), "berth-monitor"); fileExists(p) {
				bin = p
			}
		}
	}
	if bin == "" {
		p, err := exec.LookPath("berth-monitor")
		if err != nil {
			return fmt.Errorf("berth-monitor is neither beside berthd nor in $PATH")
		}
		bin = p
	}
	dir := filepath.Join(e.o.ExecRoot, "monitor")
	logf, err := os.OpenFile(filepath.Join(dir, "monitor.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own session: a signal to berthd's process group (a ^C) must not
	// reach the monitor, and so the containers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start berth-monitor: %w", err)
	}
	// berthd is a subreaper and the monitor's parent until berthd exits.
	go cmd.Wait()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := e.mon.List(); err == nil {
			e.log.Info("berth-monitor started", "pid", cmd.Process.Pid)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("berth-monitor did not answer on %s (see %s)", e.mon.Socket, logf.Name())
		}
	}
}

// watchExits follows the monitor's exit events, resyncing from its list
// after every (re)connection, until Close.
func (e *Engine) watchExits(ready chan struct{}) {
	defer e.wg.Done()
	once := sync.OnceFunc(func() { close(ready) })
	for {
		err := e.mon.Events(e.ctx, func() {
			e.reconcile()
			e.restoreNetwork()
			once()
		}, func(x monitor.Exit) error {
			if x.Log != nil {
				e.handleLogNotice(x)
				return nil
			}
			e.handleExit(x)
			return nil
		})
		select {
		case <-e.closed:
			return
		default:
		}
		e.log.Warn("monitor connection lost; reconnecting", "err", err)
		time.Sleep(100 * time.Millisecond)
		if err := e.ensureMonitor(); err != nil {
			e.log.Error("monitor", "err", err)
		}
	}
}

// reconcile applies what the monitor holds to the records: exits that
// happened while berthd was away, and containers the monitor lost (it was
// killed), which are marked exited.
func (e *Engine) reconcile() {
	procs, err := e.mon.List()
	if err != nil {
		e.log.Warn("monitor list", "err", err)
		return
	}
	held := map[string]monitor.Proc{}
	for _, p := range procs {
		held[p.ID] = p
	}
	for _, c := range e.snapshot() {
		e.mu.Lock()
		running, pid := c.rec.State.Running(), c.rec.State.Pid
		e.mu.Unlock()
		if !running {
			continue
		}
		p, ok := held[c.rec.ID]
		switch {
		case !ok && e.exitedWithMonitor(c):
			// It had exited, and the lost monitor saved its status.
		case !ok && e.adopt(c):
			// The monitor was lost and a new one took the container over.
		case !ok:
			// Lost with a monitor and not adoptable (a terminal, berthd
			// restarted meanwhile): its processes run on with nobody reading
			// their output or waiting for them. They are stopped, and the
			// exit recorded, so that nothing of them lingers and restart
			// policies bring back what should run.
			e.stopOrphan(c.rec.ID, pid)
			e.handleExit(monitor.Exit{ID: c.rec.ID, Pid: pid, ExitCode: 137, ExitedAt: time.Now().UTC()},
				"berth-monitor was lost (killed or crashed): the container was stopped with it")
		case !p.Running:
			e.handleExit(p)
		}
	}
	for _, p := range procs {
		if !p.Running && isExecID(p.ID) {
			e.handleExecExit(p)
		}
	}
}

// stopOrphan kills what is left of a container its monitor lost and
// removes its runtime state and cgroup; its init, reparented to berthd
// (a child subreaper) if berthd was up, is reaped.
func (e *Engine) stopOrphan(id string, pid int) {
	rc, err := container.Load(filepath.Join(e.o.ExecRoot, "monitor", monitor.RuntimeDir), id)
	if err != nil {
		return // no runtime state: nothing of it runs
	}
	if err := rc.Delete(true); err != nil {
		e.log.Warn("stop a container the monitor lost", "id", id, "err", err)
	}
	for i := 0; pid > 0 && i < 100; i++ {
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if got == pid || err != nil { // reaped, or not ours to reap
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.log.Warn("stopped a container the monitor lost", "id", id)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// waitCtx waits for ch or ctx.
func waitCtx(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errGone = errors.New("container removed")

// restoreNetwork releases the sandboxes of containers that are not
// running (they exited while berthd was away, or berthd crashed) and
// renders the packet rules again.
func (e *Engine) restoreNetwork() {
	if e.o.Network == nil {
		return
	}
	err := e.o.Network.Restore(func(id string) bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		c := e.ctrs[id]
		return c != nil && c.rec.State.Running()
	})
	if err != nil {
		e.log.Warn("restore networks", "err", err)
	}
}
