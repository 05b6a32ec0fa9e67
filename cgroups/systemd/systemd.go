// Package systemd is berth-runtime's systemd cgroup driver (runc's
// --systemd-cgroup): a container's cgroup is a transient scope unit that
// systemd owns, made over D-Bus, with the limits also written as the
// unit's properties so that systemd keeps them. The cgroup files
// themselves are still written by the cgroupfs manager, in the
// directories the unit's name gives.
package systemd

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/errdefs"
)

// Unit is a container's scope: its name, the slice that holds it, and
// its cgroup path below each hierarchy's root.
type Unit struct {
	Name, Slice, Path string
}

// Parse reads linux.cgroupsPath in systemd's form, "slice:prefix:name"
// (what containerd and kubelet write), as runc does: an empty slice is
// system.slice; the unit is prefix-name.scope, or the slice name itself
// when name ends in ".slice". An empty path is system.slice:berth:id.
func Parse(cgroupsPath, id string) (Unit, error) {
	if cgroupsPath == "" {
		cgroupsPath = "system.slice:berth:" + id
	}
	parts := strings.Split(cgroupsPath, ":")
	if len(parts) != 3 {
		return Unit{}, fmt.Errorf("linux.cgroupsPath %q: with --systemd-cgroup it must be slice:prefix:name: %w", cgroupsPath, errdefs.ErrInvalid)
	}
	slice, prefix, name := parts[0], parts[1], parts[2]
	if slice == "" {
		slice = "system.slice"
	}
	slicePath, err := ExpandSlice(slice)
	if err != nil {
		return Unit{}, err
	}
	unit := name
	if !strings.HasSuffix(name, ".slice") {
		if name == "" {
			return Unit{}, fmt.Errorf("linux.cgroupsPath %q: no unit name: %w", cgroupsPath, errdefs.ErrInvalid)
		}
		unit = name + ".scope"
		if prefix != "" {
			unit = prefix + "-" + unit
		}
	}
	if strings.ContainsAny(unit, "/") {
		return Unit{}, fmt.Errorf("linux.cgroupsPath %q: unit %q has a slash: %w", cgroupsPath, unit, errdefs.ErrInvalid)
	}
	return Unit{Name: unit, Slice: slice, Path: path.Join(slicePath, unit)}, nil
}

// ExpandSlice is the cgroup path of a slice: each dash-separated prefix
// is a parent ("a-b.slice" is /a.slice/a-b.slice); "-.slice" is the root.
func ExpandSlice(slice string) (string, error) {
	name, ok := strings.CutSuffix(slice, ".slice")
	if !ok || strings.Contains(name, "/") {
		return "", fmt.Errorf("slice %q: not a slice unit name: %w", slice, errdefs.ErrInvalid)
	}
	if name == "-" {
		return "/", nil
	}
	if name == "" || strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-") || strings.Contains(name, "--") {
		return "", fmt.Errorf("slice %q: not a valid slice name: %w", slice, errdefs.ErrInvalid)
	}
	out, prefix := "/", ""
	for _, part := range strings.Split(name, "-") {
		prefix += part
		out = path.Join(out, prefix+".slice")
		prefix += "-"
	}
	return out, nil
}

// connect opens systemd's API: the system bus, or, where no bus daemon
// runs, systemd's private socket (root only).
func connect(ctx context.Context) (*sd.Conn, error) {
	c, err := sd.NewWithContext(ctx)
	if err == nil {
		return c, nil
	}
	c, perr := sd.NewSystemdConnectionContext(ctx)
	if perr != nil {
		return nil, fmt.Errorf("systemd: neither the system bus (%v) nor systemd's private socket (%v) answers: is systemd the init?", err, perr)
	}
	return c, nil
}

// withConn runs fn with a connection to systemd, for at most 30 s.
func withConn(fn func(ctx context.Context, c *sd.Conn) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(ctx, c)
}

// Start makes the scope with pid in it (a scope needs a process), as
// Delegate=yes (the runtime and the container manage what is below), and
// the limits of r as its properties. v2 says which property names apply
// (MemoryMax and CPUWeight, or MemoryLimit and CPUShares). It returns
// once systemd reports the job done.
func (u Unit) Start(pid int, r *specs.LinuxResources, v2 bool) error {
	return withConn(func(ctx context.Context, c *sd.Conn) error { return u.start(ctx, c, pid, r, v2) })
}

func (u Unit) start(ctx context.Context, c *sd.Conn, pid int, r *specs.LinuxResources, v2 bool) error {
	props := []sd.Property{
		sd.PropDescription("berth container " + u.Name),
		sd.PropSlice(u.Slice),
		sd.PropPids(uint32(pid)),
		{Name: "Delegate", Value: dbus.MakeVariant(true)},
		{Name: "DefaultDependencies", Value: dbus.MakeVariant(false)},
	}
	props = append(props, resourceProps(r, v2)...)
	done := make(chan string, 1)
	if _, err := c.StartTransientUnitContext(ctx, u.Name, "replace", props, done); err != nil {
		var de dbus.Error
		if errors.As(err, &de) && de.Name == "org.freedesktop.systemd1.UnitExists" {
			return fmt.Errorf("systemd unit %s exists already: %w", u.Name, errdefs.ErrConflict)
		}
		return fmt.Errorf("systemd: start unit %s in %s: %w", u.Name, u.Slice, err)
	}
	select {
	case res := <-done:
		if res != "done" {
			return fmt.Errorf("systemd: unit %s: job %s", u.Name, res)
		}
	case <-ctx.Done():
		return fmt.Errorf("systemd: unit %s: no answer in 30 s", u.Name)
	}
	return nil
}

// resourceProps are r's memory, pids and CPU limits as unit properties.
func resourceProps(r *specs.LinuxResources, v2 bool) []sd.Property {
	if r == nil {
		return nil
	}
	var out []sd.Property
	add := func(name string, v any) { out = append(out, sd.Property{Name: name, Value: dbus.MakeVariant(v)}) }
	if m := r.Memory; m != nil && m.Limit != nil && *m.Limit > 0 {
		if v2 {
			add("MemoryMax", uint64(*m.Limit))
		} else {
			add("MemoryLimit", uint64(*m.Limit))
		}
	}
	if p := r.Pids; p != nil && p.Limit > 0 {
		add("TasksMax", uint64(p.Limit))
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil && *c.Shares >= 2 {
			if v2 {
				// cgroup v2's weight from v1's shares, as runc converts.
				add("CPUWeight", 1+((*c.Shares-2)*9999)/262142)
			} else {
				add("CPUShares", *c.Shares)
			}
		}
		if c.Quota != nil && *c.Quota > 0 {
			period := uint64(100000)
			if c.Period != nil && *c.Period > 0 {
				period = *c.Period
			}
			// systemd takes the quota per second, rounded up to 10 ms.
			perSec := uint64(*c.Quota) * 1000000 / period
			if perSec%10000 != 0 {
				perSec = (perSec/10000 + 1) * 10000
			}
			add("CPUQuotaPerSecUSec", perSec)
		}
	}
	return out
}

// Stop stops the unit (a scope whose processes are gone is already
// gone: not an error).
func Stop(name string) error {
	return withConn(func(ctx context.Context, c *sd.Conn) error { return stop(ctx, c, name) })
}

func stop(ctx context.Context, c *sd.Conn, name string) error {
	done := make(chan string, 1)
	if _, err := c.StopUnitContext(ctx, name, "replace", done); err != nil {
		var de dbus.Error
		if errors.As(err, &de) && de.Name == "org.freedesktop.systemd1.NoSuchUnit" {
			return nil
		}
		return fmt.Errorf("systemd: stop unit %s: %w", name, err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("systemd: stop unit %s: no answer in 30 s", name)
	}
	return nil
}
