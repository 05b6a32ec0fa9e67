package engine

import (
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
	"github.com/berth-project/berth/internal/cleanup"
	"github.com/berth-project/berth/monitor"
	berthnet "github.com/berth-project/berth/network"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"
)

// pendingAttach is an attach waiting for the container's next start: it
// gets its monitor connection after the init is created and before it is
// released, so it misses no output.
type pendingAttach struct {
	cfg  monitor.AttachConfig
	conn chan net.Conn
}

// Start runs a created or exited container.
func (e *Engine) Start(ref string) error {
	var c *ctr
	var autoRemove bool
	if err := e.withCtr(ref, func(found *ctr) error {
		c = found
		if c.busy != "" {
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s is %s", c.rec.ID, c.busy))
		}
		if c.rec.State.Running() {
			return errdefs.New(errdefs.ErrNotModified, "container already started")
		}
		if c.restartTimer != nil {
			c.restartTimer.Stop()
			c.restartTimer = nil
		}
		c.busy = "starting"
		c.rec.ManualStop = false
		c.rec.RestartCount = 0
		autoRemove = c.rec.HostConfig.AutoRemove
		return nil
	}); err != nil {
		return err
	}
	err := e.start(c)
	e.unbusy(c)
	if err != nil && autoRemove {
		// As docker: a --rm container that cannot start is removed, with
		// its anonymous volumes as after an exit (its client waits for
		// that).
		if rerr := e.Remove(c.rec.ID, RemoveOptions{Force: true, Volumes: true}); rerr != nil {
			e.log.Warn("auto-remove after a failed start", "id", c.rec.ID, "err", rerr)
		}
	}
	return err
}

// start does the work of a start (by the user or the restart policy).
// Preconditions: c.busy is set by the caller; c is not running.
func (e *Engine) start(c *ctr) (err error) {
	e.mu.Lock()
	rec := c.rec
	e.mu.Unlock()
	defer func() {
		if err != nil {
			msg := err.Error()
			_ = e.saveState(c, func(r *Record) { r.State.Error = msg })
		}
	}()
	var cu cleanup.Cleanup
	defer cu.Run()
	t0 := time.Now()
	bundle := e.bundleDir(rec.ID)
	root := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(root, 0o711); err != nil {
		return err
	}
	cu.Add(func() { os.RemoveAll(bundle) })
	if err := e.mountRootfs(&rec, root); err != nil {
		return fmt.Errorf("mount the container's root filesystem: %w", err)
	}
	cu.Add(func() { _ = unix.Unmount(root, unix.MNT_DETACH) })
	sb, err := e.attachNetwork(&rec)
	if err != nil {
		return err
	}
	if sb != nil {
		cu.Add(func() { e.detachNetwork(rec.ID) })
	}
	etc, err := e.writeEtcFiles(&rec, sb)
	if err != nil {
		return err
	}
	spec, err := e.buildSpec(&rec, root, etc, sb)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), raw, 0o600); err != nil {
		return err
	}
	stdio := monitor.StdioConfig{Tty: rec.Config.Tty, OpenStdin: rec.Config.OpenStdin, StdinOnce: rec.Config.StdinOnce}
	if cs := rec.HostConfig.ConsoleSize; cs[0] > 0 && cs[1] > 0 {
		stdio.Height, stdio.Width = uint16(cs[0]), uint16(cs[1])
	}
	log := e.logConfig(rec)
	t1 := time.Now()
	pid, err := e.mon.Create(rec.ID, bundle, log, stdio)
	t2 := time.Now()
	if err != nil {
		return fmt.Errorf("create container %s: %w", rec.ID, err)
	}
	cu.Add(func() {
		_ = e.mon.Kill(rec.ID, int(unix.SIGKILL), true)
		e.waitForget(rec.ID)
	})
	if sb == nil && rec.HostConfig.NetworkMode != "host" && !joinsNetns(rec.HostConfig.NetworkMode) {
		// A network namespace of its own with no network: loopback up,
		// as dockerd's --network none.
		if err := berthnet.LoopbackUp(fmt.Sprintf("/proc/%d/ns/net", pid)); err != nil {
			return fmt.Errorf("container %s: loopback: %w", rec.ID, err)
		}
	}
	// Hand the waiting attaches their streams before the process runs.
	e.mu.Lock()
	pending := c.attaches
	c.attaches = nil
	e.mu.Unlock()
	for _, a := range pending {
		conn, err := e.mon.Attach(rec.ID, a.cfg)
		if err != nil {
			close(a.conn)
			continue
		}
		a.conn <- conn
	}
	// Running before released: an exit reported right after Start finds
	// the container running.
	exited := make(chan struct{})
	e.mu.Lock()
	c.exited = exited
	close(c.nextStart)
	c.nextStart = make(chan struct{})
	c.rec.State = State{Status: ctypes.StateRunning, Pid: pid, StartedAt: time.Now().UTC()}
	w := e.takeRecord(c)
	e.mu.Unlock()
	if err := e.write(w); err != nil {
		return err
	}
	if err := e.mon.Start(rec.ID); err != nil {
		e.mu.Lock()
		c.rec.State = State{Status: ctypes.StateExited, ExitCode: 128, Error: err.Error(), FinishedAt: time.Now().UTC()}
		w := e.takeRecord(c)
		close(exited)
		e.mu.Unlock()
		_ = e.write(w)
		return fmt.Errorf("start container %s: %w", rec.ID, err)
	}
	cu.Release()
	e.holdFifos(c)
	e.emit(c, events.ActionStart, nil)
	e.startHealth(c)
	e.log.Debug("started", "id", rec.ID, "bundle", t1.Sub(t0), "create", t2.Sub(t1), "start", time.Since(t2))
	return nil
}

// waitForget waits (briefly) for the monitor to finish a killed process
// and drops its record.
func (e *Engine) waitForget(id string) {
	for i := 0; i < 300; i++ {
		if err := e.mon.Forget(id); err == nil || errdefs.NotFound(err) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// handleExit records the end of a container's run: its root filesystem is
// unmounted, the monitor forgets it, and then the state flips to exited,
// waiters are woken, and AutoRemove or the restart policy act. A report
// for a run that is already over is ignored. why, if given, is the
// error recorded.
func (e *Engine) handleExit(x monitor.Exit, why ...string) {
	if isExecID(x.ID) {
		e.handleExecExit(x)
		return
	}
	e.mu.Lock()
	c := e.ctrs[x.ID]
	if c == nil || !c.rec.State.Running() || c.rec.State.Pid != x.Pid {
		e.mu.Unlock()
		if c == nil {
			_ = e.mon.Forget(x.ID)
		}
		return
	}
	e.mu.Unlock()
	e.releaseFifos(c)
	left := e.leaveNetworks(x.ID)
	root := filepath.Join(e.bundleDir(x.ID), "rootfs")
	if err := unix.Unmount(root, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		e.log.Warn("unmount root filesystem", "id", x.ID, "err", err)
	}
	os.RemoveAll(e.bundleDir(x.ID))
	oom := x.OOMKilled

	e.mu.Lock()
	if !c.rec.State.Running() || c.rec.State.Pid != x.Pid {
		e.mu.Unlock()
		return
	}
	st := &c.rec.State
	st.Status, st.Pid, st.ExitCode, st.FinishedAt = ctypes.StateExited, 0, x.ExitCode, x.ExitedAt
	st.OOMKilled = oom
	if st.Health != nil {
		st.Health.Status = ctypes.Unhealthy // as dockerd: a stopped container is not healthy
	}
	if len(why) > 0 {
		st.Error = why[0]
	}
	w := e.takeRecord(c)
	close(c.exited)
	autoRemove := c.rec.HostConfig.AutoRemove
	restart, delay := e.restartDecision(c)
	e.mu.Unlock()
	if err := e.write(w); err != nil {
		e.log.Error("save exit", "id", x.ID, "err", err)
	}
	// Only now, with the exit saved: a berthd killed before this point
	// finds the exit in the monitor again when it comes back.
	_ = e.mon.Forget(x.ID)
	os.RemoveAll(monitor.FifoDir(e.monitorDir(), x.ID))
	e.log.Info("container exited", "id", x.ID, "code", x.ExitCode, "oomKilled", oom)
	if oom {
		e.emit(c, events.ActionOOM, nil)
	}
	e.emit(c, events.ActionDie, map[string]string{"exitCode": strconv.Itoa(x.ExitCode)})
	e.emitDisconnects(x.ID, left) // after die, as dockerd
	switch {
	case autoRemove:
		go func() {
			if err := e.Remove(x.ID, RemoveOptions{Force: true, Volumes: true}); err != nil && !errdefs.NotFound(err) {
				e.log.Warn("auto-remove", "id", x.ID, "err", err)
			}
		}()
	case restart:
		e.scheduleRestart(c, delay)
	}
}

// restartDecision applies the restart policy to a run that just ended.
// Called with e.mu held.
func (e *Engine) restartDecision(c *ctr) (bool, time.Duration) {
	rp := c.rec.HostConfig.RestartPolicy
	st := c.rec.State
	if c.busy == "stopping" || c.busy == "removing" || c.rec.ManualStop {
		return false, 0
	}
	switch rp.Name {
	case ctypes.RestartPolicyAlways, ctypes.RestartPolicyUnlessStopped:
	case ctypes.RestartPolicyOnFailure:
		if st.ExitCode == 0 || rp.MaximumRetryCount > 0 && c.rec.RestartCount >= rp.MaximumRetryCount {
			return false, 0
		}
	default:
		return false, 0
	}
	// Docker's backoff: 100 ms doubling per restart, reset after a run
	// of 10 s or more, at most a minute.
	if st.FinishedAt.Sub(st.StartedAt) >= 10*time.Second {
		c.rec.RestartCount = 0
	}
	delay := 100 * time.Millisecond << min(c.rec.RestartCount, 10)
	return true, min(delay, time.Minute)
}

// wantsRestartOnBoot: at berthd start, always and unless-stopped (not
// stopped by hand) containers that are not running are started again.
func wantsRestartOnBoot(c *ctr) bool {
	rp := c.rec.HostConfig.RestartPolicy.Name
	if c.rec.State.Running() || c.rec.State.Status == ctypes.StateCreated {
		return false
	}
	return rp == ctypes.RestartPolicyAlways || rp == ctypes.RestartPolicyUnlessStopped && !c.rec.ManualStop
}

func (e *Engine) scheduleRestart(c *ctr, delay time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c.rec.State.Status = ctypes.StateRestarting
	c.restartTimer = time.AfterFunc(delay, func() {
		e.mu.Lock()
		if c.busy != "" || c.rec.State.Status != ctypes.StateRestarting {
			e.mu.Unlock()
			return
		}
		c.busy = "starting"
		c.restartTimer = nil
		c.rec.RestartCount++
		e.mu.Unlock()
		err := e.start(c)
		e.mu.Lock()
		c.busy = ""
		if err == nil {
			e.mu.Unlock()
			return
		}
		// The record on disk says so too (start saved its error with the
		// status "restarting"): a restarted berthd must not try again.
		c.rec.State.Status = ctypes.StateExited
		w := e.takeRecord(c)
		e.mu.Unlock()
		_ = e.write(w)
		e.log.Warn("restart", "id", c.rec.ID, "err", err)
	})
}

// ParseSignal reads "SIGTERM", "TERM" or "15" (empty: SIGKILL), as the
// engine delivers stop and kill signals.
func ParseSignal(s string) (unix.Signal, error) {
	if s == "" {
		return unix.SIGKILL, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	// Real-time signals as docker names them: RTMIN, RTMIN+n, RTMAX-n.
	const rtmin, rtmax = 34, 64
	for _, rt := range []struct {
		prefix string
		base   int
		sign   int
	}{{"SIGRTMIN+", rtmin, 1}, {"SIGRTMAX-", rtmax, -1}} {
		if rest, ok := strings.CutPrefix(name, rt.prefix); ok {
			if n, err := strconv.Atoi(rest); err == nil && n > 0 && n <= rtmax-rtmin {
				return unix.Signal(rt.base + rt.sign*n), nil
			}
		}
	}
	switch name {
	case "SIGRTMIN":
		return unix.Signal(rtmin), nil
	case "SIGRTMAX":
		return unix.Signal(rtmax), nil
	}
	return 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("Invalid signal: %s", s))
}

// Kill sends a signal (default SIGKILL) to a running container.
func (e *Engine) Kill(ref, signal string) error {
	sig, err := ParseSignal(signal)
	if err != nil {
		return err
	}
	// Unlike stop, a kill does not keep the restart policy from acting,
	// as in docker.
	var c *ctr
	var running bool
	var id string
	if err := e.withCtr(ref, func(found *ctr) error {
		c, running, id = found, found.rec.State.Running(), found.rec.ID
		return nil
	}); err != nil {
		return err
	}
	if !running {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("cannot kill container: %s: container %s is not running", ref, id))
	}
	if err := e.mon.Kill(id, int(sig), false); err != nil {
		if errdefs.Conflict(err) {
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("cannot kill container: %s: container %s is not running", ref, id))
		}
		return err
	}
	e.emit(c, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	return nil
}

// Stop sends the container's stop signal (or signal), waits timeout
// (nil: its StopTimeout, else 10 s; negative: forever), then kills it.
func (e *Engine) Stop(ref, signal string, timeout *int) error {
	var c *ctr
	var w recordWrite
	var id string
	var exited chan struct{}
	wait, restarting := 10, false
	if err := e.withCtr(ref, func(found *ctr) error {
		c = found
		if c.rec.State.Status == ctypes.StateRestarting && c.restartTimer != nil {
			// Between runs: the restart is called off, nothing to signal.
			c.restartTimer.Stop()
			c.restartTimer = nil
			c.rec.State.Status = ctypes.StateExited
			c.rec.ManualStop = true
			w, restarting = e.takeRecord(c), true
			return nil
		}
		if !c.rec.State.Running() {
			return errdefs.New(errdefs.ErrNotModified, "container already stopped")
		}
		c.rec.ManualStop = true
		w = e.takeRecord(c)
		if signal == "" {
			signal = c.rec.Config.StopSignal
		}
		if c.rec.Config.StopTimeout != nil {
			wait = *c.rec.Config.StopTimeout
		}
		id, exited = c.rec.ID, c.exited
		c.busy = "stopping"
		return nil
	}); err != nil {
		return err
	}
	_ = e.write(w)
	if restarting {
		return nil
	}
	if timeout != nil {
		wait = *timeout
	}
	defer func() {
		e.mu.Lock()
		if c.busy == "stopping" {
			c.busy = ""
		}
		e.mu.Unlock()
	}()
	sig, err := ParseSignal(signal)
	if err != nil {
		sig = unix.SIGTERM
	}
	if err := e.mon.Kill(id, int(sig), false); err != nil && !errdefs.Conflict(err) {
		return err
	}
	e.emit(c, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	var deadline <-chan time.Time
	if wait >= 0 {
		deadline = time.After(time.Duration(wait) * time.Second)
	}
	defer e.emit(c, events.ActionStop, nil)
	select {
	case <-exited:
		return nil
	case <-deadline:
	}
	e.thaw(id)
	if err := e.mon.Kill(id, int(unix.SIGKILL), true); err != nil && !errdefs.Conflict(err) {
		return err
	}
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("container %s did not exit after SIGKILL", id)
	}
}

// Restart stops (if running) and starts a container.
func (e *Engine) Restart(ref, signal string, timeout *int) error {
	if err := e.Stop(ref, signal, timeout); err != nil && !errors.Is(err, errdefs.ErrNotModified) {
		return err
	}
	if err := e.Start(ref); err != nil {
		return err
	}
	if c, err := e.get(ref); err == nil {
		e.emit(c, events.ActionRestart, nil)
	}
	return nil
}

// RemoveOptions are docker rm's flags.
type RemoveOptions struct {
	Force   bool
	Volumes bool
}

// Remove deletes a container: a running one only with Force (killed
// first). Its record, name, writable layer, logs and files go.
func (e *Engine) Remove(ref string, o RemoveOptions) error {
	var c *ctr
	var id string
	var exited chan struct{}
	var running bool
	if err := e.withCtr(ref, func(found *ctr) error {
		c = found
		if c.busy == "removing" {
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("removal of container %s is already in progress", ref))
		}
		if c.rec.State.Running() && !o.Force {
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("cannot remove container %q: container is running: stop the container before removing or force remove", c.rec.Name))
		}
		if c.busy == "starting" {
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s is starting", ref))
		}
		c.busy = "removing"
		if c.restartTimer != nil {
			c.restartTimer.Stop()
			c.restartTimer = nil
		}
		id, exited, running = c.rec.ID, c.exited, c.rec.State.Running()
		return nil
	}); err != nil {
		return err
	}
	if running {
		e.thaw(id)
		if err := e.mon.Kill(id, int(unix.SIGKILL), true); err != nil && !errdefs.Conflict(err) && !errdefs.NotFound(err) {
			e.unbusy(c)
			return err
		}
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			e.unbusy(c)
			return fmt.Errorf("container %s did not exit after SIGKILL", id)
		}
	}
	_ = e.mon.Forget(id)
	root := filepath.Join(e.bundleDir(id), "rootfs")
	_ = unix.Unmount(root, unix.MNT_DETACH)
	os.RemoveAll(e.bundleDir(id))
	if err := e.o.Images.RemoveRootfs(id); err != nil && !errdefs.NotFound(err) {
		e.unbusy(c)
		return fmt.Errorf("remove the writable layer of %s: %w", id, err)
	}
	if err := os.RemoveAll(e.containerDir(id)); err != nil {
		e.unbusy(c)
		return err
	}
	if o.Volumes {
		defer e.removeAnonymous(c.rec.Volumes)
	}
	if err := e.deleteRecord(c); err != nil {
		e.unbusy(c)
		return err
	}
	if c.rec.IDMapOwned && e.o.Userns.Pool != nil {
		if e.copyLayers {
			// Before the range can be handed out again.
			if err := e.o.Images.RemoveShifted(*c.rec.IDMap); err != nil {
				e.log.Warn("remove the layer copies of a removed container's range", "container", id, "err", err)
			}
		}
		e.o.Userns.Pool.Free(id)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.ctrs, id)
	delete(e.names, c.rec.Name)
	for xid, x := range e.execs {
		if x.container == id {
			delete(e.execs, xid)
		}
	}
	for _, a := range c.attaches {
		close(a.conn)
	}
	c.attaches = nil
	close(c.removed)
	go e.emit(c, events.ActionDestroy, nil)
	return nil
}

func (e *Engine) unbusy(c *ctr) {
	e.mu.Lock()
	c.busy = ""
	e.mu.Unlock()
}

// Wait blocks until the condition holds and returns the exit code:
// "not-running" (default), "next-exit", or "removed".
func (e *Engine) Wait(ctx context.Context, ref string, condition string) (int, error) {
	var c *ctr
	var exited, removed, nextStart chan struct{}
	var starting, running bool
	if err := e.withCtr(ref, func(found *ctr) error {
		c = found
		exited, removed, nextStart = c.exited, c.removed, c.nextStart
		// While a start is under way, exited is still the last run's
		// (closed): the run to wait for is the one about to begin.
		starting = c.busy == "starting"
		running = c.rec.State.Running() || starting || c.rec.State.Status == ctypes.StateRestarting
		return nil
	}); err != nil {
		return 0, err
	}
	nextRun := func() error {
		select {
		case <-nextStart:
		case <-removed:
			return errGone
		case <-ctx.Done():
			return ctx.Err()
		}
		e.mu.Lock()
		exited = c.exited
		e.mu.Unlock()
		return nil
	}
	code := func() int {
		e.mu.Lock()
		defer e.mu.Unlock()
		return c.rec.State.ExitCode
	}
	switch condition {
	case "", "not-running":
		if starting {
			if err := nextRun(); err == errGone {
				return code(), nil
			} else if err != nil {
				return 0, err
			}
		}
		if running {
			if err := waitCtx(ctx, exited); err != nil {
				return 0, err
			}
		}
		return code(), nil
	case "next-exit":
		if !running || starting {
			// Wait for the next run to begin, then for its end.
			if err := nextRun(); err == errGone {
				return code(), nil
			} else if err != nil {
				return 0, err
			}
		}
		if err := waitCtx(ctx, exited); err != nil {
			return 0, err
		}
		return code(), nil
	case "removed":
		if err := waitCtx(ctx, removed); err != nil {
			return 0, err
		}
		return code(), nil
	}
	return 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid condition: %q", condition))
}

// Attach returns a connection carrying the container's streams (see
// monitor.AttachConfig) and whether they are a raw terminal. For a
// container not running, it waits for the next start (or ctx).
func (e *Engine) Attach(ctx context.Context, ref string, cfg monitor.AttachConfig) (net.Conn, bool, error) {
	e.mu.Lock()
	c, err := e.lookup(ref)
	if err != nil {
		e.mu.Unlock()
		return nil, false, err
	}
	tty := c.rec.Config.Tty
	go e.emit(c, events.ActionAttach, nil)
	if c.rec.State.Running() && c.busy != "starting" {
		id := c.rec.ID
		e.mu.Unlock()
		conn, err := e.mon.Attach(id, cfg)
		return conn, tty, err
	}
	a := &pendingAttach{cfg: cfg, conn: make(chan net.Conn, 1)}
	c.attaches = append(c.attaches, a)
	e.mu.Unlock()
	select {
	case conn, ok := <-a.conn:
		if !ok {
			return nil, tty, errdefs.New(errdefs.ErrConflict, "container removed before it started")
		}
		return conn, tty, nil
	case <-ctx.Done():
		e.mu.Lock()
		for i, p := range c.attaches {
			if p == a {
				c.attaches = append(c.attaches[:i], c.attaches[i+1:]...)
				break
			}
		}
		e.mu.Unlock()
		select { // handed over meanwhile
		case conn, ok := <-a.conn:
			if ok {
				conn.Close()
			}
		default:
		}
		return nil, tty, ctx.Err()
	}
}

// Resize sets a running container's terminal size.
func (e *Engine) Resize(ref string, height, width uint16) error {
	var id string
	var running bool
	if err := e.withCtr(ref, func(c *ctr) error { id, running = c.rec.ID, c.rec.State.Running(); return nil }); err != nil {
		return err
	}
	if !running {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("Container %s is not running", id))
	}
	return e.mon.Resize(id, height, width)
}

// runningPid is the pid of a running container's init.
func (e *Engine) runningPid(ref string) (int, error) {
	var pid int
	err := e.withCtr(ref, func(c *ctr) error {
		if !c.rec.State.Running() {
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s is not running", c.rec.ID)) // dockerd's words
		}
		pid = c.rec.State.Pid
		return nil
	})
	return pid, err
}

// thaw resumes a paused container so that signals reach its processes.
func (e *Engine) thaw(id string) {
	e.mu.Lock()
	c := e.ctrs[id]
	paused := c != nil && c.rec.State.Status == ctypes.StatePaused
	e.mu.Unlock()
	if paused {
		if err := e.Unpause(id); err != nil {
			e.log.Warn("thaw before kill", "id", id, "err", err)
		}
	}
}
