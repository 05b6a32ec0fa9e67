package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berth-project/berth/errdefs"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// dockerd's health check defaults and limits.
const (
	defaultHealthInterval      = 30 * time.Second
	defaultHealthTimeout       = 30 * time.Second
	defaultHealthStartInterval = 5 * time.Second
	defaultHealthRetries       = 3
	healthLogEntries           = 5    // results kept in State.Health.Log
	healthOutputMax            = 4096 // bytes of a probe's output kept
)

// checkHealthConfig refuses what dockerd refuses in a health check.
func checkHealthConfig(h *ctypes.HealthConfig) error {
	if h == nil {
		return nil
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Interval", h.Interval}, {"Timeout", h.Timeout}, {"StartPeriod", h.StartPeriod}, {"StartInterval", h.StartInterval}} {
		if d.v != 0 && d.v < time.Millisecond {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s in Healthcheck cannot be less than 1ms", d.name))
		}
		if d.v < 0 {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s in Healthcheck cannot be negative", d.name))
		}
	}
	if h.Retries < 0 {
		return errdefs.New(errdefs.ErrInvalid, "Retries in Healthcheck cannot be negative")
	}
	if len(h.Test) > 0 {
		switch h.Test[0] {
		case "NONE", "CMD", "CMD-SHELL":
		default:
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unknown Healthcheck type %q: want NONE, CMD or CMD-SHELL", h.Test[0]))
		}
	}
	return nil
}

// mergeHealth is the container's health check: the request's, its unset
// fields taken from the image's, as dockerd merges them.
func mergeHealth(req, img *ctypes.HealthConfig) *ctypes.HealthConfig {
	if req == nil {
		if img == nil {
			return nil
		}
		c := *img
		return &c
	}
	c := *req
	if img != nil {
		if len(c.Test) == 0 {
			c.Test = img.Test
		}
		if c.Interval == 0 {
			c.Interval = img.Interval
		}
		if c.Timeout == 0 {
			c.Timeout = img.Timeout
		}
		if c.StartPeriod == 0 {
			c.StartPeriod = img.StartPeriod
		}
		if c.StartInterval == 0 {
			c.StartInterval = img.StartInterval
		}
		if c.Retries == 0 {
			c.Retries = img.Retries
		}
	}
	return &c
}

// healthProbe is a container's health check with defaults applied; nil
// when it has none (or NONE).
type healthProbe struct {
	cmd                                        []string
	interval, timeout, startPeriod, startEvery time.Duration
	retries                                    int
}

func probeOf(h *ctypes.HealthConfig) *healthProbe {
	if h == nil || len(h.Test) == 0 || h.Test[0] == "NONE" {
		return nil
	}
	p := &healthProbe{interval: h.Interval, timeout: h.Timeout, startPeriod: h.StartPeriod, startEvery: h.StartInterval, retries: h.Retries}
	switch h.Test[0] {
	case "CMD":
		p.cmd = h.Test[1:]
	case "CMD-SHELL":
		if len(h.Test) < 2 {
			return nil
		}
		p.cmd = []string{"/bin/sh", "-c", h.Test[1]}
	}
	if len(p.cmd) == 0 {
		return nil
	}
	if p.interval == 0 {
		p.interval = defaultHealthInterval
	}
	if p.timeout == 0 {
		p.timeout = defaultHealthTimeout
	}
	if p.startEvery == 0 {
		p.startEvery = defaultHealthStartInterval
	}
	if p.retries == 0 {
		p.retries = defaultHealthRetries
	}
	return p
}

// startHealth runs c's health check for the run that began at started,
// until that run ends (exited closes) or berthd stops. The status starts
// at "starting"; each probe's result goes into State.Health as dockerd
// keeps it, and a change of status is a health_status event.
func (e *Engine) startHealth(c *ctr) {
	e.mu.Lock()
	p := probeOf(c.rec.Config.Healthcheck)
	exited, started, id := c.exited, c.rec.State.StartedAt, c.rec.ID
	var w *recordWrite
	if p != nil && c.rec.State.Health == nil {
		c.rec.State.Health = &ctypes.Health{Status: ctypes.Starting, Log: []*ctypes.HealthcheckResult{}}
		s := e.takeRecord(c)
		w = &s
	}
	e.mu.Unlock()
	if w != nil {
		_ = e.write(*w)
	}
	if p == nil {
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			wait := p.interval
			if time.Since(started) < p.startPeriod {
				wait = min(p.startEvery, p.interval)
			}
			select {
			case <-exited:
				return
			case <-e.closed:
				return
			case <-time.After(wait):
			}
			e.mu.Lock()
			paused := c.rec.State.Status == ctypes.StatePaused
			e.mu.Unlock()
			if paused {
				continue
			}
			res := e.probe(id, p)
			e.recordHealth(c, exited, started, p, res)
		}
	}()
}

// recordHealth applies one probe result, as dockerd: success makes the
// container healthy; a failure outside the start period adds to the
// failing streak, and retries of them make it unhealthy.
func (e *Engine) recordHealth(c *ctr, exited <-chan struct{}, started time.Time, p *healthProbe, res *ctypes.HealthcheckResult) {
	e.mu.Lock()
	select {
	case <-exited: // the run ended while the probe ran
		e.mu.Unlock()
		return
	default:
	}
	h := c.rec.State.Health
	if h == nil {
		h = &ctypes.Health{Status: ctypes.Starting}
		c.rec.State.Health = h
	}
	before := h.Status
	h.Log = append(h.Log, res)
	if len(h.Log) > healthLogEntries {
		h.Log = h.Log[len(h.Log)-healthLogEntries:]
	}
	if res.ExitCode == 0 {
		h.FailingStreak = 0
		h.Status = ctypes.Healthy
	} else if h.Status != ctypes.Starting || res.Start.Sub(started) >= p.startPeriod {
		h.FailingStreak++
		if h.FailingStreak >= p.retries {
			h.Status = ctypes.Unhealthy
		}
	}
	after := h.Status
	w := e.takeRecord(c)
	e.mu.Unlock()
	if err := e.write(w); err != nil {
		e.log.Warn("save health", "id", c.rec.ID, "err", err)
	}
	if after != before {
		e.emit(c, events.Action("health_status: "+string(after)), nil)
	}
}

// probe runs the check once as an exec in the container and returns its
// result: exit code and the first 4 KiB of output, or -1 and why when it
// could not run or outlived the timeout (then it is killed).
func (e *Engine) probe(id string, p *healthProbe) *ctypes.HealthcheckResult {
	res := &ctypes.HealthcheckResult{Start: time.Now().UTC()}
	fail := func(msg string) *ctypes.HealthcheckResult {
		res.End, res.ExitCode, res.Output = time.Now().UTC(), -1, msg
		return res
	}
	out := &limitedBuffer{max: healthOutputMax}
	code, err := e.RunExec(context.Background(), id, p.cmd, ExecIO{Stdout: out, Stderr: out}, p.timeout)
	if errors.Is(err, ErrExecTimeout) {
		return fail(fmt.Sprintf("Health check exceeded timeout (%v)", p.timeout))
	}
	if err != nil {
		return fail(err.Error())
	}
	res.End, res.ExitCode, res.Output = time.Now().UTC(), code, out.String()
	return res
}

// forgetExec drops a finished internal exec (a health probe) from the
// exec table, as dockerd does not keep them either.
func (e *Engine) forgetExec(execID string) {
	e.mu.Lock()
	delete(e.execs, execID)
	e.mu.Unlock()
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
