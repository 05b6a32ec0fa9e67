// Package cgroups places containers in control groups and applies their
// resource limits, on cgroup v1, v2, and the hybrid layout (v1 controllers
// plus a cgroup2 mount at /sys/fs/cgroup/unified).
//
// A Manager is chosen in one place, New, from the host's layout. Managers are
// not safe for concurrent use; the runtime uses one per command.
package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-project/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Warnf reports a limit that was accepted but cannot be enforced on this
// host. The runtime's CLI points it at its log.
var Warnf = func(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "warning: "+format+"\n", args...)
}

// Mode is the host's cgroup layout.
type Mode int

const (
	Legacy  Mode = iota // v1 controllers only
	Hybrid              // v1 controllers plus a cgroup2 mount at <root>/unified
	Unified             // cgroup v2 only
)

func (m Mode) String() string {
	return [...]string{"legacy", "hybrid", "unified"}[m]
}

// Root is where cgroup file systems are mounted.
const Root = "/sys/fs/cgroup"

// HostMode detects the layout under Root.
func HostMode() Mode {
	var st unix.Statfs_t
	if unix.Statfs(Root, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return Unified
	}
	if unix.Statfs(filepath.Join(Root, "unified"), &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return Hybrid
	}
	return Legacy
}

// Manager owns one container's cgroup(s).
type Manager interface {
	// Create makes the cgroup directories. It fails with ErrConflict-free
	// success if they exist already (a container may be re-created).
	Create() error
	// Apply moves pid into the cgroup(s).
	Apply(pid int) error
	// Set writes the resource limits. Fields the host cannot honour are an
	// error naming the field.
	Set(r *specs.LinuxResources) error
	// Pids lists the processes in the cgroup.
	Pids() ([]int, error)
	// Destroy kills whatever is left in the cgroup(s) and removes the
	// directories this manager made. Missing directories are not an error.
	Destroy() error
	// Freeze stops every process in the cgroup (true) or thaws them, and
	// returns once the kernel reports the new state.
	Freeze(freeze bool) error
	// Stats reads the cgroup's usage counters.
	Stats() (*Stats, error)
	// OOMKills counts the processes the OOM killer has killed in it.
	OOMKills() (uint64, error)
	// Paths maps each v1 controller name (or "" for the v2 tree) to the
	// container's directory.
	Paths() map[string]string
	// Mode is the layout the manager was made for.
	Mode() Mode
}

// DefaultParent is the cgroup that holds containers created without a
// linux.cgroupsPath. Destroy removes it once it is empty.
const DefaultParent = "berth"

// pruneDefaultParent removes dir's parent if it is Berth's default parent
// and now empty; a parent still holding cgroups stays (rmdir fails).
func pruneDefaultParent(dir string) {
	if p := filepath.Dir(dir); filepath.Base(p) == DefaultParent {
		_ = unix.Rmdir(p)
	}
}

// New returns a manager for cgroupsPath on this host. An empty path becomes
// /berth/<id>; a relative path is relative to the runtime's own cgroup. A
// systemd-style "slice:prefix:name" path is such a relative path, taken
// literally, as runc takes it without --systemd-cgroup (containerd 1.6's
// CRI plugin writes them).
func New(cgroupsPath, id string) (Manager, error) {
	if cgroupsPath == "" {
		cgroupsPath = "/" + DefaultParent + "/" + id
	}
	if strings.Contains(cgroupsPath, "..") {
		return nil, fmt.Errorf("linux.cgroupsPath %q: must not contain '..': %w", cgroupsPath, errdefs.ErrInvalid)
	}
	mode := HostMode()
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	resolve := func(key string) string {
		if filepath.IsAbs(cgroupsPath) {
			return filepath.Clean(cgroupsPath)
		}
		return filepath.Join(own[key], cgroupsPath)
	}
	if mode == Unified {
		return &v2{dir: filepath.Join(Root, resolve(""))}, nil
	}
	return newV1(mode, resolve)
}

// Load returns a manager for paths recorded by an earlier Paths call.
func Load(mode Mode, paths map[string]string) Manager {
	if len(paths) == 0 {
		return None{M: mode}
	}
	if mode == Unified {
		return &v2{dir: paths[""]}
	}
	return &v1{mode: mode, paths: paths}
}

// ownCgroups parses /proc/self/cgroup: controller (or "" for v2) → path.
func ownCgroups() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, s.Err()
}

// writeFile writes one cgroup control file, naming the file and value on
// failure.
func writeFile(dir, file, value string) error {
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, []byte(value), 0); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("cgroup: write %q to %s: %w", value, p, err)
	}
	return nil
}

func readPids(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if errors.Is(err, unix.ENODEV) {
		return nil, nil // removed while read: empty
	}
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, l := range strings.Fields(string(b)) {
		if p, err := strconv.Atoi(l); err == nil {
			pids = append(pids, p)
		}
	}
	// Processes in sub-cgroups (exec --cgroup, a systemd inside) are the
	// container's too, as runc counts them.
	for _, sub := range subDirs(dir) {
		more, err := readPids(sub)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		pids = append(pids, more...)
	}
	return pids, nil
}

// Frozen reports whether the cgroup at paths is frozen (v1 freezer or
// v2 cgroup.freeze).
func Frozen(mode Mode, paths map[string]string) bool {
	if d, ok := paths["freezer"]; ok {
		b, err := os.ReadFile(filepath.Join(d, "freezer.state"))
		return err == nil && strings.TrimSpace(string(b)) == "FROZEN"
	}
	if d, ok := paths[""]; ok && mode == Unified {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.freeze"))
		return err == nil && strings.TrimSpace(string(b)) == "1"
	}
	return false
}

// subDirs lists the sub-cgroups of dir.
func subDirs(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// removeDir removes a cgroup directory and its sub-cgroups, retrying
// while the kernel still counts exiting tasks in them. A missing
// directory is success.
func removeDir(dir string) error {
	for _, sub := range subDirs(dir) {
		if err := removeDir(sub); err != nil {
			return err
		}
	}
	var err error
	for i := 0; i < 100; i++ {
		err = unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(time.Duration(i+1) * time.Millisecond)
	}
	return fmt.Errorf("cgroup: remove %s: %w", dir, err)
}

// killAll sends SIGKILL to every process listed by pids, until none is left
// or the attempts run out.
func killAll(pids func() ([]int, error)) {
	for i := 0; i < 50; i++ {
		ps, err := pids()
		if err != nil || len(ps) == 0 {
			return
		}
		for _, p := range ps {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(time.Duration(i+1) * time.Millisecond)
	}
}

// ConvertSharesToWeight maps v1 cpu.shares [2, 262144] onto v2 cpu.weight
// [1, 10000] as runc does; 0 means unset.
func ConvertSharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	return 1 + ((shares-2)*9999)/262142
}

// ConvertBlkIOToIOWeight maps v1 blkio.weight [10, 1000] onto v2 io.weight
// [1, 10000]; 0 means unset.
func ConvertBlkIOToIOWeight(w uint16) uint64 {
	if w == 0 {
		return 0
	}
	return 1 + (uint64(w)-10)*9999/990
}

// SelfJoin says how a new process can put itself into m's cgroups without
// the global cgroup lock that writing a pid to cgroup.procs takes (on this
// kernel that write waits for an RCU grace period, 5–25 ms): a single-
// threaded process writes "0" to each v1 `tasks` file (moving only itself
// skips the lock), and is cloned into the cgroup2 directory with
// clone3(CLONE_INTO_CGROUP). Both lists are sorted for determinism.
func SelfJoin(m Manager) (tasks []string, cgroup2 string) {
	for ctrl, dir := range m.Paths() {
		if ctrl == "" {
			cgroup2 = dir
			continue
		}
		tasks = append(tasks, filepath.Join(dir, "tasks"))
	}
	sort.Strings(tasks)
	return tasks, cgroup2
}
