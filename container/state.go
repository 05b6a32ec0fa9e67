package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Status is a container's OCI status.
type Status string

const (
	Creating Status = "creating"
	Created  Status = "created"
	Running  Status = "running"
	Stopped  Status = "stopped"
	Paused   Status = "paused"
)

// State is what the runtime keeps on disk for one container, in
// <root>/<id>/state.json. It outlives the runtime process.
type State struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Pid         int               `json:"pid"`
	StartTime   uint64            `json:"startTime"` // of Pid, from /proc/<pid>/stat, to detect reuse
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Spec        *specs.Spec       `json:"spec"`
	CgroupMode  cgroups.Mode      `json:"cgroupMode"`
	CgroupPaths map[string]string `json:"cgroupPaths"`
	// CgroupShared: the cgroup held other processes when the container
	// was created. Its delete then kills the init alone and leaves the
	// cgroup to them, as runc does.
	CgroupShared bool `json:"cgroupShared,omitempty"`
	// SystemdUnit is the container's scope when systemd owns its cgroup
	// (--systemd-cgroup); delete stops it.
	SystemdUnit string `json:"systemdUnit,omitempty"`
}

const (
	stateFile = "state.json"
	fifoName  = "exec.fifo"
)

// ValidateID refuses ids that could escape the state directory or confuse
// a cgroup path: the first character is a letter or digit, the rest are
// letters, digits, '_', '.', '+' or '-'.
func ValidateID(id string) error {
	ok := id != "" && len(id) <= 1024 && isAlnum(id[0])
	for i := 1; ok && i < len(id); i++ {
		ok = isAlnum(id[i]) || strings.IndexByte("_.+-", id[i]) >= 0
	}
	if !ok {
		return fmt.Errorf("container id %q: must start with a letter or digit and contain only letters, digits, '_', '.', '+' and '-': %w", id, errdefs.ErrInvalid)
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func (s *State) save(dir string) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, stateFile))
}

// statFields are the fields of /proc/<pid>/stat after the command name
// (which may hold spaces and ends at the last ')'): state, ppid, ...;
// at least n of them.
func statFields(pid, n int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < n {
		return nil, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return f, nil
}

// procStartTime reads field 22 of /proc/<pid>/stat, and whether the
// process is a zombie.
func procStartTime(pid int) (uint64, bool, error) {
	f, err := statFields(pid, 20)
	if err != nil {
		return 0, false, err
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	return st, f[0] == "Z" || f[0] == "X", err
}

// ParentPid is the parent of process pid (field 4 of /proc/<pid>/stat).
func ParentPid(pid int) (int, error) {
	f, err := statFields(pid, 2)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(f[1])
}

// alive reports whether the container's init process still exists (and is
// not a zombie, nor a different process that reused the PID).
func (s *State) alive() bool {
	if s.Pid <= 0 {
		return false
	}
	st, zombie, err := procStartTime(s.Pid)
	return err == nil && !zombie && st == s.StartTime
}

// OCIState renders the state as the runtime-spec's state JSON object.
func (c *Container) OCIState() specs.State {
	st := specs.State{
		Version: specs.Version,
		ID:      c.state.ID,
		Status:  specs.ContainerState(c.Status()),
		Bundle:  c.state.Bundle,
	}
	if c.state.Spec != nil {
		st.Annotations = c.state.Spec.Annotations
	}
	if st.Status != specs.StateStopped {
		st.Pid = c.state.Pid
	}
	return st
}

// Status derives the status from the process and the start barrier.
func (c *Container) Status() Status {
	if !c.state.alive() {
		return Stopped
	}
	if _, err := os.Stat(filepath.Join(c.dir, fifoName)); err == nil {
		return Created
	}
	if c.frozen() {
		return Paused
	}
	return Running
}

func (c *Container) frozen() bool {
	return cgroups.Frozen(c.state.CgroupMode, c.state.CgroupPaths)
}

// signal sends sig to the init process if it is still the same process.
func (s *State) signal(sig syscall.Signal) error {
	if !s.alive() {
		return fmt.Errorf("container %s is not running: %w", s.ID, errdefs.ErrConflict)
	}
	return syscall.Kill(s.Pid, sig)
}
