package engine

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/monitor"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// The operations here act on a running container's processes and cgroups
// through the container library, in process (the monitor holds the
// processes; their cgroups and state are on the host for anyone to read).

// running returns the library's handle on a running container.
func (e *Engine) running(ref string) (*container.Container, *ctr, error) {
	var c *ctr
	var id string
	var running bool
	if err := e.withCtr(ref, func(found *ctr) error {
		c, id, running = found, found.rec.ID, found.rec.State.Running()
		return nil
	}); err != nil {
		return nil, nil, err
	}
	if !running {
		return nil, nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("Container %s is not running", id))
	}
	rc, err := container.Load(filepath.Join(e.o.ExecRoot, "monitor", monitor.RuntimeDir), id)
	if err != nil {
		return nil, nil, err
	}
	return rc, c, nil
}

// Pause freezes every process of a running container.
func (e *Engine) Pause(ref string) error { return e.setPaused(ref, true) }

// Unpause thaws a paused container.
func (e *Engine) Unpause(ref string) error { return e.setPaused(ref, false) }

// setPaused freezes (pause) or thaws a running container, refusing with
// docker's messages when it already is in that state.
func (e *Engine) setPaused(ref string, pause bool) error {
	rc, c, err := e.running(ref)
	if err != nil {
		return err
	}
	e.mu.Lock()
	paused := c.rec.State.Status == ctypes.StatePaused
	e.mu.Unlock()
	status, action, change := ctypes.StatePaused, events.ActionPause, rc.Pause
	if !pause {
		status, action, change = ctypes.StateRunning, events.ActionUnPause, rc.Resume
	}
	switch {
	case pause && paused:
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("Container %s is already paused", c.rec.ID))
	case !pause && !paused:
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("Container %s is not paused", c.rec.ID))
	}
	if err := change(); err != nil {
		return err
	}
	if err := e.saveState(c, func(r *Record) { r.State.Status = status }); err != nil {
		return err
	}
	e.emit(c, action, nil)
	return nil
}

// Top lists a container's processes as docker top does: the host's ps
// (psArgs, default -ef), keeping the rows whose PID is in the container.
func (e *Engine) Top(ref, psArgs string) (*ctypes.TopResponse, error) {
	rc, _, err := e.running(ref)
	if err != nil {
		return nil, err
	}
	pids, err := rc.Pids()
	if err != nil {
		return nil, err
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	out, err := exec.Command("ps", strings.Fields(psArgs)...).Output()
	if err != nil {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("Error running ps %s: %v", psArgs, err))
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	titles := strings.Fields(lines[0])
	col := slices.Index(titles, "PID")
	if col < 0 {
		return nil, errdefs.New(errdefs.ErrInvalid, "Couldn't find PID field in ps output")
	}
	resp := &ctypes.TopResponse{Titles: titles, Processes: [][]string{}}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= col {
			continue
		}
		pid, err := strconv.Atoi(f[col])
		if err != nil || !slices.Contains(pids, pid) {
			continue
		}
		// The last column (the command) keeps its spaces.
		row := append(f[:len(titles)-1:len(titles)-1], strings.Join(f[len(titles)-1:], " "))
		resp.Processes = append(resp.Processes, row)
	}
	return resp, nil
}

// Stats reads a running container's resource use in docker's shape,
// PreCPUStats from prev when given (the previous sample of a stream).
func (e *Engine) Stats(ref string, prev *ctypes.StatsResponse) (*ctypes.StatsResponse, error) {
	rc, c, err := e.running(ref)
	if err != nil {
		return nil, err
	}
	st, err := rc.Stats()
	if err != nil {
		return nil, err
	}
	pids, _ := rc.Pids()
	s := &ctypes.StatsResponse{
		ID: c.rec.ID, Name: c.rec.Name, OSType: "linux", Read: time.Now().UTC(), NumProcs: uint32(len(pids)),
		CPUStats: ctypes.CPUStats{
			CPUUsage: ctypes.CPUUsage{
				TotalUsage: st.CPU.Usage.Total, PercpuUsage: st.CPU.Usage.Percpu,
				UsageInKernelmode: st.CPU.Usage.Kernel, UsageInUsermode: st.CPU.Usage.User,
			},
			SystemUsage: systemCPUUsage(),
			OnlineCPUs:  uint32(runtime.NumCPU()),
			ThrottlingData: ctypes.ThrottlingData{
				Periods: st.CPU.Throttling.Periods, ThrottledPeriods: st.CPU.Throttling.ThrottledPeriods,
				ThrottledTime: st.CPU.Throttling.ThrottledTime,
			},
		},
		MemoryStats: ctypes.MemoryStats{
			Usage: st.Memory.Usage.Usage, MaxUsage: st.Memory.Usage.Max, Failcnt: st.Memory.Usage.Failcnt,
			Limit: st.Memory.Usage.Limit, Stats: st.Memory.Raw,
		},
		PidsStats: ctypes.PidsStats{Current: st.Pids.Current, Limit: st.Pids.Limit},
	}
	if s.MemoryStats.Limit == 0 || s.MemoryStats.Limit > 1<<62 {
		s.MemoryStats.Limit = hostMemory()
	}
	for _, b := range st.Blkio.IoServiceBytesRecursive {
		s.BlkioStats.IoServiceBytesRecursive = append(s.BlkioStats.IoServiceBytesRecursive, ctypes.BlkioStatEntry{Major: b.Major, Minor: b.Minor, Op: b.Op, Value: b.Value})
	}
	for _, b := range st.Blkio.IoServicedRecursive {
		s.BlkioStats.IoServicedRecursive = append(s.BlkioStats.IoServicedRecursive, ctypes.BlkioStatEntry{Major: b.Major, Minor: b.Minor, Op: b.Op, Value: b.Value})
	}
	s.Networks = e.NetworkCounters(c.rec.ID)
	if prev != nil {
		s.PreRead, s.PreCPUStats = prev.Read, prev.CPUStats
	}
	return s, nil
}

// StatsStream sends a sample every second until ctx ends or the container
// stops; one-shot callers use Stats.
func (e *Engine) StatsStream(ctx context.Context, ref string, send func(*ctypes.StatsResponse) error) error {
	var prev *ctypes.StatsResponse
	for {
		s, err := e.Stats(ref, prev)
		if err != nil {
			if prev != nil && errdefs.Conflict(err) {
				return nil // it stopped
			}
			return err
		}
		if err := send(s); err != nil {
			return err
		}
		prev = s
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// systemCPUUsage is the host's CPU time in nanoseconds (/proc/stat's cpu
// line), the denominator docker's CPU % uses.
func systemCPUUsage() uint64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && fields[0] == "cpu" {
			var ticks uint64
			for _, v := range fields[1:8] {
				n, _ := strconv.ParseUint(v, 10, 64)
				ticks += n
			}
			return ticks * (1e9 / 100) // USER_HZ is 100
		}
	}
	return 0
}

func hostMemory() uint64 {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "MemTotal:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				n, _ := strconv.ParseUint(f[1], 10, 64)
				return n * 1024
			}
		}
	}
	return 0
}

// Update changes a container's resource limits and restart policy, as
// docker update does: the fields the update sets replace the container's,
// checked as at create, and a running container's cgroup takes them at
// once.
func (e *Engine) Update(ref string, u ctypes.UpdateConfig) ([]string, error) {
	var c *ctr
	var hc ctypes.HostConfig
	var id string
	var running bool
	if err := e.withCtr(ref, func(found *ctr) error {
		c, hc, id, running = found, *found.rec.HostConfig, found.rec.ID, found.rec.State.Running()
		return nil
	}); err != nil {
		return nil, err
	}
	if u.RestartPolicy.Name != "" {
		if hc.AutoRemove && u.RestartPolicy.Name != ctypes.RestartPolicyDisabled {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("Cannot update container %s: Restart policy cannot be updated because AutoRemove is enabled for the container", id))
		}
		hc.RestartPolicy = u.RestartPolicy
	}
	if u.Memory != 0 && u.MemorySwap == 0 && hc.MemorySwap > 0 && u.Memory > hc.MemorySwap {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("Cannot update container %s: Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time", id))
	}
	overlayResources(&hc.Resources, u.Resources)
	if u.NanoCPUs != 0 {
		hc.CPUPeriod, hc.CPUQuota = 0, 0
	}
	if u.CPUQuota != 0 || u.CPUPeriod != 0 {
		hc.NanoCPUs = 0
	}
	warnings, err := validateHostConfig(&hc)
	if err != nil {
		return nil, err
	}
	if running {
		rc, _, err := e.running(id)
		if err != nil {
			return nil, err
		}
		res, err := resources(&hc)
		if err != nil {
			return nil, err
		}
		res.Devices = nil // the device rules stay as the container started
		if err := rc.Update(res); err != nil {
			//lint:ignore ST1005 dockerd's words
			return nil, fmt.Errorf("Cannot update container %s: %w", id, err)
		}
	}
	e.mu.Lock()
	c = e.ctrs[id]
	e.mu.Unlock()
	if c == nil {
		return nil, errdefs.New(errdefs.ErrNotFound, "No such container: "+ref)
	}
	if err := e.saveState(c, func(r *Record) { r.HostConfig = &hc }); err != nil {
		return nil, err
	}
	e.emit(c, events.ActionUpdate, nil)
	return warnings, nil
}

// overlayResources sets in dst every field of src that is set, as
// dockerd's update does.
func overlayResources(dst *ctypes.Resources, src ctypes.Resources) {
	set := func(d *int64, s int64) {
		if s != 0 {
			*d = s
		}
	}
	set(&dst.CPUShares, src.CPUShares)
	set(&dst.Memory, src.Memory)
	set(&dst.NanoCPUs, src.NanoCPUs)
	set(&dst.CPUPeriod, src.CPUPeriod)
	set(&dst.CPUQuota, src.CPUQuota)
	set(&dst.CPURealtimePeriod, src.CPURealtimePeriod)
	set(&dst.CPURealtimeRuntime, src.CPURealtimeRuntime)
	if src.MemorySwappiness != nil {
		v := *src.MemorySwappiness
		dst.MemorySwappiness = &v
	}
	set(&dst.MemoryReservation, src.MemoryReservation)
	set(&dst.MemorySwap, src.MemorySwap)
	if src.CpusetCpus != "" {
		dst.CpusetCpus = src.CpusetCpus
	}
	if src.CpusetMems != "" {
		dst.CpusetMems = src.CpusetMems
	}
	if src.BlkioWeight != 0 {
		dst.BlkioWeight = src.BlkioWeight
	}
	if src.PidsLimit != nil {
		v := *src.PidsLimit
		dst.PidsLimit = &v
	}
}
