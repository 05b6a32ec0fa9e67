package container

import (
	"encoding/json"
	"fmt"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Pause freezes every process of a running container.
func (c *Container) Pause() error {
	if st := c.Status(); st != Running {
		return fmt.Errorf("container %s is %s, not running: %w", c.state.ID, st, errdefs.ErrConflict)
	}
	return c.cgroup().Freeze(true)
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	if st := c.Status(); st != Paused {
		return fmt.Errorf("container %s is %s, not paused: %w", c.state.ID, st, errdefs.ErrConflict)
	}
	return c.cgroup().Freeze(false)
}

// Update applies new resource limits to a created, running or paused
// container and records them in its state. Fields left unset in r keep
// their values.
func (c *Container) Update(r *specs.LinuxResources) error {
	if st := c.Status(); st == Stopped {
		return fmt.Errorf("container %s is stopped: %w", c.state.ID, errdefs.ErrConflict)
	}
	if err := c.cgroup().Set(r); err != nil {
		return err
	}
	// Overlay the update on the recorded limits: decoding into the
	// existing values keeps every field the update does not name.
	if c.state.Spec.Linux.Resources == nil {
		c.state.Spec.Linux.Resources = &specs.LinuxResources{}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, c.state.Spec.Linux.Resources); err != nil {
		return err
	}
	return c.state.save(c.dir)
}

// Stats reads the container's cgroup usage.
func (c *Container) Stats() (*cgroups.Stats, error) { return c.cgroup().Stats() }

// OOMKills counts OOM kills in the container's cgroup.
func (c *Container) OOMKills() (uint64, error) { return c.cgroup().OOMKills() }
