package engine

import (
	"os"
	"path/filepath"
	"time"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/monitor"
	"golang.org/x/sys/unix"
)

// A lost monitor (killed, crashed) must not lose its containers. Their
// stdio are FIFOs (monitor.FifoDir) of which berthd holds an end too:
// while no monitor reads, a container's output waits in the pipe (1 MiB)
// and its writes then block — nothing is lost but what the dying monitor
// had read and not yet logged. The container's init is reparented to
// berthd (a child subreaper, the monitor's parent), which reaps it. So
// when berthd starts a new monitor it hands it each running container
// (monitor.OpAdopt): the new monitor reopens the FIFOs and the log and
// serves attach, logs, stop as before; berthd waits for the init and
// tells the monitor the exit status (monitor.OpExited), and the exit
// follows the usual path. Containers with a terminal (the pty master goes
// with the monitor) and any that cannot be adopted are stopped instead
// (stopOrphan).

// logConfig is where the monitor logs rec's output; nil for none.
func (e *Engine) logConfig(rec Record) *monitor.LogConfig {
	if rec.HostConfig.LogConfig.Type == LogDriverNone {
		return nil
	}
	return &monitor.LogConfig{Path: e.recLogPath(rec), MaxSize: rec.LogOpts.MaxSize, MaxFiles: rec.LogOpts.MaxFiles, Format: rec.LogOpts.Format}
}

func (e *Engine) monitorDir() string { return filepath.Join(e.o.ExecRoot, "monitor") }

// holdFifos opens berthd's ends of c's output FIFOs (none for a
// terminal) for reading — never read: held so that the container's writes
// never meet a pipe without a reader. Stdin is not held: its end of input
// (the client's, with StdinOnce) must reach the container as EOF; a lost
// monitor ends it the same way.
func (e *Engine) holdFifos(c *ctr) {
	e.mu.Lock()
	id, tty, held := c.rec.ID, c.rec.Config.Tty, len(c.fifos) > 0
	e.mu.Unlock()
	if tty || held {
		return
	}
	dir := monitor.FifoDir(e.monitorDir(), id)
	var fs []*os.File
	for _, name := range []string{"1", "2"} {
		if f, err := monitor.OpenFifo(filepath.Join(dir, name), unix.O_RDONLY); err == nil {
			fs = append(fs, f)
		}
	}
	e.mu.Lock()
	c.fifos = fs
	e.mu.Unlock()
}

// releaseFifos closes berthd's ends once the container has exited.
func (e *Engine) releaseFifos(c *ctr) {
	e.mu.Lock()
	fs := c.fifos
	c.fifos = nil
	e.mu.Unlock()
	for _, f := range fs {
		f.Close()
	}
}

// exitedWithMonitor records the exit of a container that ended just
// before its monitor was lost, from the status the monitor saved when it
// reaped it; false if there is none (it still runs, or no status was
// saved).
func (e *Engine) exitedWithMonitor(c *ctr) bool {
	e.mu.Lock()
	id, pid := c.rec.ID, c.rec.State.Pid
	e.mu.Unlock()
	code, ok := monitor.SavedExit(e.monitorDir(), id)
	if !ok {
		return false
	}
	e.stopOrphan(id, pid) // its runtime state and cgroup, if still there
	e.handleExit(monitor.Exit{ID: id, Pid: pid, ExitCode: code, ExitedAt: time.Now().UTC()})
	return true
}

// adopt hands a running container the monitor no longer holds to the
// (new) monitor, and waits for its exit; false if it cannot be adopted.
func (e *Engine) adopt(c *ctr) bool {
	e.mu.Lock()
	rec := c.rec
	held := len(c.fifos) > 0
	e.mu.Unlock()
	pid := rec.State.Pid
	if rec.Config.Tty || !held || pid <= 0 || unix.Kill(pid, 0) != nil {
		return false
	}
	stdio := monitor.StdioConfig{OpenStdin: rec.Config.OpenStdin, StdinOnce: rec.Config.StdinOnce}
	if err := e.mon.Adopt(rec.ID, pid, e.logConfig(rec), stdio); err != nil {
		e.log.Warn("adopt a container of a lost monitor", "id", rec.ID, "err", err)
		return false
	}
	e.log.Warn("berth-monitor was lost: its new one took the container over", "id", rec.ID)
	e.mu.Lock()
	waiting := e.adopted[rec.ID]
	e.adopted[rec.ID] = true
	e.mu.Unlock()
	if !waiting {
		go e.waitAdopted(rec.ID, pid)
	}
	return true
}

// waitAdopted waits for an adopted container's init — reaping it when it
// is berthd's child, else watching it go — and tells the monitor (the
// current one: it may have been lost and replaced again meanwhile).
func (e *Engine) waitAdopted(id string, pid int) {
	code := 255 // its parent is not berthd: the status is not ours to read
	if ppid, err := container.ParentPid(pid); err == nil && ppid == os.Getpid() {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if err != unix.EINTR {
				break
			}
		}
		code = ws.ExitStatus()
		if ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	} else {
		for unix.Kill(pid, 0) == nil {
			time.Sleep(100 * time.Millisecond)
		}
		e.log.Warn("an adopted container exited; its exit status went with its parent", "id", id)
	}
	// Saved where a lost monitor's saved statuses are (SavedExit): if
	// this monitor is lost too before it reports the exit, the next
	// reconcile still finds it.
	monitor.SaveExit(e.monitorDir(), id, code)
	for i := 0; i < 300; i++ {
		if e.mon.Exited(id, code) == nil {
			break
		}
		time.Sleep(100 * time.Millisecond) // a monitor being replaced and adopting
	}
	e.mu.Lock()
	delete(e.adopted, id)
	e.mu.Unlock()
}
