// Package capabilities parses capability names and applies the five sets of
// an OCI process to the calling thread.
//
// Capabilities are per thread: Apply must run on the locked OS thread that
// will call execve.
package capabilities

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-project/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// names lists capabilities by number, as in linux/capability.h.
var names = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// Names returns every capability name this package knows.
func Names() []string { return append([]string(nil), names...) }

// Last returns the highest capability number the running kernel knows.
func Last() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	return len(names) - 1
}

// Parse maps a capability name to its number. Unknown names are an error;
// a name the running kernel does not know returns ok=false.
func Parse(name string) (n int, ok bool, err error) {
	up := strings.ToUpper(name)
	if !strings.HasPrefix(up, "CAP_") {
		up = "CAP_" + up
	}
	for i, c := range names {
		if c == up {
			return i, i <= Last(), nil
		}
	}
	return 0, false, fmt.Errorf("unknown capability %q: %w", name, errdefs.ErrInvalid)
}

// DropUngrantableAmbient removes from c's ambient set the capabilities
// that are not both permitted and inheritable — the kernel cannot raise
// them — and returns their names. The runtime spec says a runtime should
// not fail for a capability it cannot grant; runc's and crun's `spec`
// templates list ambient capabilities that are not inheritable.
func DropUngrantableAmbient(c *specs.LinuxCapabilities) []string {
	if c == nil || len(c.Ambient) == 0 {
		return nil
	}
	var keep, dropped []string
	for _, a := range c.Ambient {
		if slices.Contains(c.Permitted, a) && slices.Contains(c.Inheritable, a) {
			keep = append(keep, a)
		} else {
			dropped = append(dropped, a)
		}
	}
	c.Ambient = keep
	return dropped
}

// Validate checks every name in every set.
func Validate(c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	for set, list := range map[string][]string{
		"bounding": c.Bounding, "effective": c.Effective, "inheritable": c.Inheritable,
		"permitted": c.Permitted, "ambient": c.Ambient,
	} {
		for _, n := range list {
			if _, _, err := Parse(n); err != nil {
				return fmt.Errorf("process.capabilities.%s: %w", set, err)
			}
		}
	}
	return nil
}

// mask turns names into a 64-bit set, skipping names the kernel lacks.
func mask(list []string) (uint64, error) {
	var m uint64
	for _, n := range list {
		i, ok, err := Parse(n)
		if err != nil {
			return 0, err
		}
		if ok {
			m |= 1 << uint(i)
		}
	}
	return m, nil
}

// Sets is a parsed OCI capability set.
type Sets struct {
	Bounding, Effective, Inheritable, Permitted, Ambient uint64
}

// FromSpec parses c; a nil c means no capabilities at all.
func FromSpec(c *specs.LinuxCapabilities) (Sets, error) {
	var s Sets
	if c == nil {
		return s, nil
	}
	var err error
	for _, p := range []struct {
		dst  *uint64
		list []string
	}{{&s.Bounding, c.Bounding}, {&s.Effective, c.Effective}, {&s.Inheritable, c.Inheritable}, {&s.Permitted, c.Permitted}, {&s.Ambient, c.Ambient}} {
		if *p.dst, err = mask(p.list); err != nil {
			return s, err
		}
	}
	return s, nil
}

// DropBounding removes from the bounding set every capability not in s.
// It needs CAP_SETPCAP, so it runs before the user changes.
func (s Sets) DropBounding() error {
	last := Last()
	for i := 0; i <= last; i++ {
		if s.Bounding&(1<<uint(i)) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(i), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("drop %s from the bounding set: %w", names[i], err)
		}
	}
	return nil
}

// Apply sets the effective, permitted and inheritable sets, then raises the
// ambient ones. Call after the user changes (with PR_SET_KEEPCAPS).
func (s Sets) Apply() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(s.Effective), Permitted: uint32(s.Permitted), Inheritable: uint32(s.Inheritable)},
		{Effective: uint32(s.Effective >> 32), Permitted: uint32(s.Permitted >> 32), Inheritable: uint32(s.Inheritable >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w%s", err, missing(s.Permitted|s.Effective|s.Inheritable))
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	for i := 0; i <= Last(); i++ {
		if s.Ambient&(1<<uint(i)) == 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(i), 0, 0); err != nil {
			return fmt.Errorf("raise ambient %s (it must be permitted and inheritable): %w", names[i], err)
		}
	}
	return nil
}

// Bounding names the capabilities of this process's bounding set: all
// that a process it starts can hold.
func Bounding() []string {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return Names()
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
			set, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				break
			}
			var out []string
			for i, n := range names {
				if set&(1<<uint(i)) != 0 {
					out = append(out, n)
				}
			}
			return out
		}
	}
	return Names()
}

// missing names the capabilities in want that this thread does not hold in
// its permitted set, for an error message (a process cannot gain them).
func missing(want uint64) string {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if unix.Capget(&hdr, &data[0]) != nil {
		return ""
	}
	have := uint64(data[0].Permitted) | uint64(data[1].Permitted)<<32
	var out []string
	for i := 0; i < len(names); i++ {
		if want&(1<<uint(i)) != 0 && have&(1<<uint(i)) == 0 {
			out = append(out, names[i])
		}
	}
	if len(out) == 0 {
		return ""
	}
	return " (the runtime itself lacks " + strings.Join(out, ", ") + ")"
}
