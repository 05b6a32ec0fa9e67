package engine

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/logfile"
	"github.com/berth-project/berth/monitor"
)

// handleLogNotice reports a container's output that the monitor could
// not log (a full data root) or logs again: in berthd's log and as an
// event ("log-dropped", "log-resumed"; the log itself gets a marker line).
func (e *Engine) handleLogNotice(x monitor.Exit) {
	e.mu.Lock()
	c := e.ctrs[x.ID]
	e.mu.Unlock()
	if c == nil {
		return
	}
	n := x.Log
	if n.Resumed {
		e.log.Warn("container output is logged again", "id", x.ID, "lost lines", n.Lines)
		e.emit(c, "log-resumed", map[string]string{"lostLines": strconv.FormatInt(n.Lines, 10)})
		return
	}
	e.log.Warn("container output is not being logged", "id", x.ID, "err", n.Error)
	e.emit(c, "log-dropped", map[string]string{"error": n.Error})
}

// LogsOptions are docker logs's.
type LogsOptions struct {
	Since, Until time.Time
	Tail         int // < 0: all
	Follow       bool
}

// Logs delivers a container's log entries to fn; following, it returns
// when the container's run ends and its output is written, or ctx ends.
func (e *Engine) Logs(ctx context.Context, ref string, o LogsOptions, fn func(logfile.Entry) error) (tty bool, err error) {
	var id, driver, format string
	var exited chan struct{}
	var maxFiles int
	if err := e.withCtr(ref, func(c *ctr) error {
		id, exited, maxFiles, tty = c.rec.ID, c.exited, c.rec.LogOpts.MaxFiles, c.rec.Config.Tty
		driver, format = c.rec.HostConfig.LogConfig.Type, c.rec.LogOpts.Format
		return nil
	}); err != nil {
		return false, err
	}
	if format == logfile.FormatCRI {
		return tty, errdefs.New(errdefs.ErrInvalid, "the container's log is in the CRI's format, for the kubelet and crictl logs")
	}
	if driver == LogDriverNone {
		return tty, errdefs.New(errdefs.ErrInvalid, "configured logging driver does not support reading")
	}
	ro := logfile.ReadOptions{Since: o.Since, Until: o.Until, Tail: o.Tail, Follow: o.Follow}
	return tty, logfile.Read(ctx, e.logPath(id), max(maxFiles, 1), ro, exited, fn)
}

// ReopenLog has a running container's log file opened anew at its path
// (the CRI's ReopenContainerLog, after the kubelet rotated it).
func (e *Engine) ReopenLog(ref string) error {
	var id string
	if err := e.withCtr(ref, func(c *ctr) error {
		if !c.rec.State.Running() {
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s is not running", c.rec.ID))
		}
		id = c.rec.ID
		return nil
	}); err != nil {
		return err
	}
	return e.mon.ReopenLog(id)
}
