package engine

import (
	"cmp"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-project/berth/errdefs"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/storage"
)

// Inspect describes a container as docker inspect does. With size, the
// writable layer's size is measured (SizeRw).
func (e *Engine) Inspect(ref string, size bool) (*ctypes.InspectResponse, error) {
	var r Record
	var execIDs []string
	if err := e.withCtr(ref, func(c *ctr) error {
		r = c.rec
		for id, x := range e.execs {
			if x.container == r.ID && x.running() {
				execIDs = append(execIDs, id)
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	dir := e.containerDir(r.ID)
	resp := &ctypes.InspectResponse{
		ID: r.ID, Created: r.Created.Format(time.RFC3339Nano), Path: r.Path, Args: r.Args,
		State:           dockerState(r),
		Image:           r.Image,
		ResolvConfPath:  filepath.Join(dir, "resolv.conf"),
		HostnamePath:    filepath.Join(dir, "hostname"),
		HostsPath:       filepath.Join(dir, "hosts"),
		LogPath:         e.recLogPath(r),
		Name:            r.Name,
		RestartCount:    r.RestartCount,
		Driver:          "overlay2",
		Platform:        "linux",
		ExecIDs:         execIDs,
		HostConfig:      r.HostConfig,
		GraphDriver:     &storage.DriverData{Name: "overlay2", Data: map[string]string{}},
		Mounts:          e.mountPoints(r),
		Config:          r.Config,
		NetworkSettings: e.networkSettings(r),
	}
	if r.HostConfig.LogConfig.Type == LogDriverNone {
		resp.LogPath = ""
	}
	if size {
		if n, err := e.o.Images.RootfsUsage(r.ID); err == nil {
			resp.SizeRw = &n
		}
	}
	return resp, nil
}

func dockerState(r Record) *ctypes.State {
	st := r.State
	status := st.Status
	if status == "" {
		status = ctypes.StateCreated
	}
	return &ctypes.State{
		Status: status, Running: st.Running(), Paused: status == ctypes.StatePaused,
		Restarting: status == ctypes.StateRestarting, Pid: st.Pid, ExitCode: st.ExitCode, Error: st.Error,
		StartedAt: timeOrZero(st.StartedAt), FinishedAt: timeOrZero(st.FinishedAt),
		Health: st.Health, OOMKilled: st.OOMKilled,
	}
}

// timeOrZero formats t as docker does, the zero time included.
func timeOrZero(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.Format(time.RFC3339Nano)
}

func (e *Engine) mountPoints(r Record) []ctypes.MountPoint {
	hc := r.HostConfig
	out := []ctypes.MountPoint{}
	for _, vm := range r.Volumes {
		src := ""
		if v, err := e.o.Volumes.Get(vm.Name); err == nil {
			src = v.Mountpoint
		}
		out = append(out, ctypes.MountPoint{Type: "volume", Name: vm.Name, Source: src, Destination: vm.Destination, Driver: "local", RW: !vm.ReadOnly})
	}
	for _, raw := range hc.Binds {
		if b, err := parseBind(raw); err == nil && !b.volume {
			out = append(out, ctypes.MountPoint{Type: "bind", Source: b.src, Destination: b.dst, RW: !b.ro, Propagation: "rprivate"})
		}
	}
	for _, m := range hc.Mounts {
		if m.Type == mount.TypeVolume {
			continue
		}
		out = append(out, ctypes.MountPoint{Type: m.Type, Source: m.Source, Destination: m.Target, RW: !m.ReadOnly})
	}
	for dst := range hc.Tmpfs {
		out = append(out, ctypes.MountPoint{Type: "tmpfs", Destination: dst, RW: true})
	}
	return out
}

// ListOptions are docker ps's.
type ListOptions struct {
	All     bool
	Limit   int
	Size    bool
	Filters map[string][]string // status, name, label, id, ancestor, exited
}

// List returns containers, newest first, as docker ps does: running ones
// only unless All.
func (e *Engine) List(o ListOptions) ([]ctypes.Summary, error) {
	for k := range o.Filters {
		switch k {
		case "status", "name", "label", "id", "ancestor", "exited", "health", "namespace":
		default:
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid filter '%s'", k))
		}
	}
	for _, s := range o.Filters["status"] {
		switch ctypes.ContainerState(s) {
		case ctypes.StateCreated, ctypes.StateRunning, ctypes.StatePaused, ctypes.StateRestarting, ctypes.StateRemoving, ctypes.StateExited, ctypes.StateDead:
		default:
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid filter 'status=%s'", s))
		}
	}
	e.mu.Lock()
	recs := make([]Record, 0, len(e.ctrs))
	for _, c := range e.ctrs {
		recs = append(recs, c.rec)
	}
	e.mu.Unlock()
	slices.SortFunc(recs, func(a, b Record) int { return b.Created.Compare(a.Created) })
	out := []ctypes.Summary{}
	for _, r := range recs {
		if !o.All && len(o.Filters["status"]) == 0 && len(o.Filters["exited"]) == 0 && !r.State.Running() && r.State.Status != ctypes.StateRestarting {
			continue
		}
		if ns := o.Filters["namespace"]; !slices.Contains(ns, r.Namespace) && (len(ns) > 0 || r.Namespace != "") {
			continue // another namespace's (the CRI's): berth ps --filter namespace=k8s.io lists them
		}
		if !e.matches(r, o.Filters) {
			continue
		}
		s := ctypes.Summary{
			ID: r.ID, Names: []string{r.Name}, Image: r.Config.Image, ImageID: r.Image,
			Command: psCommand(r.Path, r.Args),
			Created: r.Created.Unix(), Ports: []ctypes.PortSummary{}, Labels: r.Config.Labels,
			State: r.State.Status, Status: statusText(r), Mounts: e.mountPoints(r),
		}
		ns := e.networkSettings(r)
		s.NetworkSettings = &ctypes.NetworkSettingsSummary{Networks: ns.Networks}
		s.Ports = portSummary(r, ns)
		s.HostConfig.NetworkMode = string(r.HostConfig.NetworkMode)
		if o.Size {
			if n, err := e.o.Images.RootfsUsage(r.ID); err == nil {
				s.SizeRw = n
			}
		}
		out = append(out, s)
		if o.Limit > 0 && len(out) == o.Limit {
			break
		}
	}
	return out, nil
}

// psCommand is docker ps's COMMAND, as dockerd writes it: arguments
// holding a space in single quotes.
func psCommand(path string, args []string) string {
	parts := []string{path}
	for _, a := range args {
		if strings.Contains(a, " ") {
			a = "'" + a + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// portSummary is docker ps's PORTS: each published port with its host
// side, and exposed ports that are not published.
func portSummary(r Record, ns *ctypes.NetworkSettings) []ctypes.PortSummary {
	out := []ctypes.PortSummary{}
	for port, bindings := range ns.Ports {
		for _, b := range bindings {
			hp, _ := strconv.ParseUint(b.HostPort, 10, 16)
			out = append(out, ctypes.PortSummary{IP: b.HostIP, PrivatePort: port.Num(), PublicPort: uint16(hp), Type: string(port.Proto())})
		}
	}
	if r.State.Running() {
		for port := range r.Config.ExposedPorts {
			if _, published := ns.Ports[port]; !published {
				out = append(out, ctypes.PortSummary{PrivatePort: port.Num(), Type: string(port.Proto())})
			}
		}
	}
	slices.SortFunc(out, func(a, b ctypes.PortSummary) int {
		return cmp.Or(cmp.Compare(a.PrivatePort, b.PrivatePort), cmp.Compare(a.Type, b.Type), cmp.Compare(a.PublicPort, b.PublicPort))
	})
	return out
}

func (e *Engine) matches(r Record, f map[string][]string) bool {
	any := func(key string, ok func(string) bool) bool {
		vals := f[key]
		if len(vals) == 0 {
			return true
		}
		return slices.ContainsFunc(vals, ok)
	}
	return any("status", func(v string) bool { return string(r.State.Status) == v }) &&
		any("name", func(v string) bool { return nameMatches(r.Name, v) }) &&
		any("id", func(v string) bool { return strings.HasPrefix(r.ID, v) }) &&
		any("exited", func(v string) bool {
			return r.State.Status == ctypes.StateExited && fmt.Sprint(r.State.ExitCode) == v
		}) &&
		any("ancestor", func(v string) bool { return e.isAncestor(r, v) }) &&
		any("health", func(v string) bool { return healthOf(r) == v }) &&
		all(f["label"], func(v string) bool {
			k, val, hasVal := strings.Cut(v, "=")
			got, ok := r.Config.Labels[k]
			return ok && (!hasVal || got == val)
		})
}

// nameMatches is docker's name filter: a regular expression, matched
// against the name with and without its leading "/".
func nameMatches(name, pattern string) bool {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return false
	}
	return re.MatchString(name) || re.MatchString(strings.TrimPrefix(name, "/"))
}

func all(vals []string, ok func(string) bool) bool {
	for _, v := range vals {
		if !ok(v) {
			return false
		}
	}
	return true
}

// isAncestor: the container was made from the image ref names.
func (e *Engine) isAncestor(r Record, ref string) bool {
	img, err := e.o.Images.Get(ref)
	return err == nil && img.ID.String() == r.Image || r.Config.Image == ref
}

// healthOf is the container's health for ps's health filter: none,
// starting, healthy or unhealthy.
func healthOf(r Record) string {
	if r.State.Health == nil || !r.State.Running() {
		return string(ctypes.NoHealthcheck)
	}
	return string(r.State.Health.Status)
}

// statusText is docker ps's STATUS column.
func statusText(r Record) string {
	st := r.State
	switch st.Status {
	case ctypes.StateRunning:
		up := "Up " + humanDuration(time.Since(st.StartedAt))
		if h := st.Health; h != nil {
			switch h.Status {
			case ctypes.Starting:
				return up + " (health: starting)"
			case ctypes.Healthy, ctypes.Unhealthy:
				return up + " (" + string(h.Status) + ")"
			}
		}
		return up
	case ctypes.StatePaused:
		return "Up " + humanDuration(time.Since(st.StartedAt)) + " (Paused)"
	case ctypes.StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, humanDuration(time.Since(st.FinishedAt)))
	case ctypes.StateExited:
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, humanDuration(time.Since(st.FinishedAt)))
	}
	return "Created"
}

// humanDuration is docker's units.HumanDuration.
func humanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	switch m := int(d.Minutes()); {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	switch h := int(d.Hours() + 0.5); {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	default:
		return fmt.Sprintf("%d years", int(d.Hours())/24/365)
	}
}
