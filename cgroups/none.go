package cgroups

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/errdefs"
)

// None is the manager of a container that has no cgroup: an unprivileged
// runtime's, on a host that delegates none to its user, with no limits
// asked for (runc runs those the same way). Making, joining and removing
// are no-ops; what needs a cgroup says it has none.
type None struct{ M Mode }

func (None) Create() error            { return nil }
func (None) Apply(int) error          { return nil }
func (None) Destroy() error           { return nil }
func (n None) Mode() Mode             { return n.M }
func (None) Paths() map[string]string { return nil }

func (None) Set(r *specs.LinuxResources) error {
	if HasLimits(r) {
		return noCgroup("resource limits")
	}
	return nil
}

func (None) Pids() ([]int, error)      { return nil, noCgroup("listing its processes") }
func (None) Freeze(bool) error         { return noCgroup("pausing") }
func (None) Stats() (*Stats, error)    { return nil, noCgroup("statistics") }
func (None) OOMKills() (uint64, error) { return 0, nil }

func noCgroup(what string) error {
	return fmt.Errorf("%s need a cgroup, and this container has none (the runtime ran unprivileged without a delegated cgroup): %w", what, errdefs.ErrUnavailable)
}

// HasLimits says whether r asks for any limit a cgroup would enforce.
// Device rules alone do not count: without a cgroup the kernel's own
// device permissions hold, and an unprivileged user has no device
// access to restrict.
func HasLimits(r *specs.LinuxResources) bool {
	if r == nil {
		return false
	}
	//lint:ignore SA1019 a config may still set kernel memory, and asks for a cgroup by it
	if m := r.Memory; m != nil && (m.Limit != nil || m.Reservation != nil || m.Swap != nil || m.Kernel != nil || m.KernelTCP != nil ||
		m.Swappiness != nil || m.DisableOOMKiller != nil && *m.DisableOOMKiller || m.UseHierarchy != nil || m.CheckBeforeUpdate != nil) {
		return true
	}
	if c := r.CPU; c != nil && (c.Shares != nil || c.Quota != nil || c.Burst != nil || c.Period != nil || c.RealtimeRuntime != nil ||
		c.RealtimePeriod != nil || c.Cpus != "" || c.Mems != "" || c.Idle != nil) {
		return true
	}
	if b := r.BlockIO; b != nil && (b.Weight != nil || b.LeafWeight != nil || len(b.WeightDevice) > 0 || len(b.ThrottleReadBpsDevice) > 0 ||
		len(b.ThrottleWriteBpsDevice) > 0 || len(b.ThrottleReadIOPSDevice) > 0 || len(b.ThrottleWriteIOPSDevice) > 0) {
		return true
	}
	return r.Pids != nil && r.Pids.Limit > 0 || len(r.HugepageLimits) > 0 || r.Network != nil || len(r.Rdma) > 0 || len(r.Unified) > 0
}
