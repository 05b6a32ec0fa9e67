// Package container is the only code that creates containers. It is a
// library: berth-runtime's CLI and berthd drive it in process.
//
// A Container is a handle on one container's state directory under a root
// (e.g. /run/berth-runtime/<id>). Handles are cheap and not shared between
// goroutines; the state on disk is the truth and may be changed by other
// runtime processes between calls.
//
// Lifecycle: Create (init set up, blocked at the start barrier) → Start
// (init execs the user's process) → the process exits (Stopped) → Delete.
package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/cgroups/systemd"
	"github.com/berth-project/berth/container/capabilities"
	"github.com/berth-project/berth/container/hooks"
	"github.com/berth-project/berth/container/rootfs"
	"github.com/berth-project/berth/container/syncpipe"
	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/internal/cleanup"
	"github.com/berth-project/berth/seccomp"
	"github.com/berth-project/berth/userns"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Container is a handle on one container.
type Container struct {
	dir   string
	state State
}

// ID returns the container's id.
func (c *Container) ID() string { return c.state.ID }

// Pid returns the pid of the container's init (or user) process.
func (c *Container) Pid() int { return c.state.Pid }

// Spec returns the config the container was created from.
func (c *Container) Spec() *specs.Spec { return c.state.Spec }

// State returns the persisted state.
func (c *Container) State() State { return c.state }

// Stdio is the standard input, output and error of a new process.
type Stdio [3]*os.File

// CreateOpts are the inputs of Create beyond the bundle.
type CreateOpts struct {
	Root   string // state root, e.g. /run/berth-runtime
	ID     string
	Bundle string
	// ConsoleSocket is the path of a unix socket that receives the pty
	// master when process.terminal is set. Console, if set, is an already
	// connected socket used instead.
	ConsoleSocket string
	Console       *os.File
	NoPivot       bool
	NoNewKeyring  bool
	PreserveFds   int
	Stdio         Stdio
	// SystemdCgroup: linux.cgroupsPath is systemd's slice:prefix:name and
	// the cgroup a transient scope systemd makes (cgroups/systemd).
	SystemdCgroup bool
}

// Create sets up a container from a bundle and leaves its init blocked at
// the start barrier. On error nothing is left behind: no state directory,
// cgroup, mount or process.
func Create(o CreateOpts) (_ *Container, err error) {
	if err := ValidateID(o.ID); err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, err
	}
	spec, err := LoadSpec(bundle)
	if err != nil {
		return nil, err
	}
	Debugf("create %s: config from %s", o.ID, bundle)
	warnSharedMounts(spec)
	if spec.Linux.MountLabel != "" {
		// A label describes files; without SELinux there is nothing to
		// label them for. (process.selinuxLabel, which asks to confine
		// the process, is refused instead: see Validate.)
		Warnf("linux.mountLabel: not applied, SELinux is not enabled on this host")
	}
	filter := compileAsync(spec.Linux.Seccomp)
	defer filter() // never leave the compile running past an early return
	if err := os.MkdirAll(o.Root, 0o711); err != nil {
		return nil, fmt.Errorf("state root %s: %w", o.Root, err)
	}
	dir := filepath.Join(o.Root, o.ID)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("container id %q is already in use: %w", o.ID, errdefs.ErrConflict)
		}
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	var cu cleanup.Cleanup
	defer cu.Run()
	cu.Add(func() { os.RemoveAll(dir) })

	cgroupsPath := spec.Linux.CgroupsPath
	var unit *systemd.Unit
	if o.SystemdCgroup {
		u, err := systemd.Parse(cgroupsPath, o.ID)
		if err != nil {
			return nil, err
		}
		unit, cgroupsPath = &u, u.Path
	}
	mgr, err := cgroups.New(cgroupsPath, o.ID)
	if err != nil {
		return nil, err
	}
	if err := mgr.Create(); err != nil {
		_ = mgr.Destroy()
		// As runc: an unprivileged runtime (or root of a user namespace)
		// the host delegates no cgroup to runs a container that asks for
		// no limits without one.
		if os.Geteuid() == 0 && !userns.Nested() || !errors.Is(err, fs.ErrPermission) && !errors.Is(err, unix.EROFS) {
			return nil, err
		}
		if cgroups.HasLimits(spec.Linux.Resources) {
			return nil, fmt.Errorf("linux.resources: limits need a cgroup this unprivileged runtime can make, and %w (delegate a cgroup to the user and put containers under it: linux.cgroupsPath, berthd --cgroup-parent)", err)
		}
		Warnf("no cgroup for the container: %v", err)
		mgr = cgroups.None{M: mgr.Mode()}
	}
	// A cgroup with processes in it is someone else's too: warn as runc
	// does, and never kill or remove them on the way out.
	others, _ := mgr.Pids()
	shared := len(others) > 0
	if shared {
		Warnf("container's cgroup is not empty: %d process(es) found", len(others))
	} else {
		cu.Add(func() { _ = mgr.Destroy() })
	}
	// The init joins its cgroup during setup: in a frozen one it would
	// freeze there and create would never return.
	if cgroups.Frozen(mgr.Mode(), mgr.Paths()) {
		return nil, fmt.Errorf("container's cgroup %s is frozen: thaw it first: %w", spec.Linux.CgroupsPath, errdefs.ErrConflict)
	}
	Debugf("create %s: cgroups %v", o.ID, mgr.Paths())
	res := withDefaultDeviceRules(spec)
	if res != nil && len(res.Devices) > 0 && (os.Geteuid() != 0 || userns.Nested()) {
		// As runc rootless: the device controller takes rules only from
		// the host's root; a user namespace allows no device access its
		// owner lacks anyway.
		cp := *res
		cp.Devices = nil
		res = &cp
	}
	if err := mgr.Set(res); err != nil {
		return nil, err
	}

	fifoPath := filepath.Join(dir, fifoName)
	if err := unix.Mkfifo(fifoPath, 0o600); err != nil {
		return nil, fmt.Errorf("start barrier %s: %w", fifoPath, err)
	}
	fifo, err := os.OpenFile(fifoPath, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer fifo.Close()

	terminal := spec.Process != nil && spec.Process.Terminal
	consoleSock := o.Console
	if terminal && consoleSock == nil {
		if o.ConsoleSocket == "" {
			return nil, fmt.Errorf("process.terminal is set: --console-socket is required to receive the terminal: %w", errdefs.ErrInvalid)
		}
		if consoleSock, err = dialConsole(o.ConsoleSocket); err != nil {
			return nil, err
		}
		defer consoleSock.Close()
	}
	if !terminal {
		consoleSock = nil
	}

	listener, err := dialListener(spec)
	if err != nil {
		return nil, err
	}
	if listener != nil {
		defer listener.Close()
	}

	srcs, err := openBindSources(spec, bundle)
	if err != nil {
		return nil, err
	}
	for _, f := range srcs {
		defer f.Close()
	}

	owner := strconv.Itoa(os.Geteuid())
	c := &Container{dir: dir, state: State{
		ID: o.ID, Bundle: bundle, Created: time.Now().UTC(), Owner: owner, Spec: spec,
		CgroupMode: mgr.Mode(), CgroupPaths: mgr.Paths(), CgroupShared: shared,
	}}
	if unit != nil {
		c.state.SystemdUnit = unit.Name
	}
	hookState := func(pid int, status specs.ContainerState) []byte {
		return stateJSON(specs.State{Version: specs.Version, ID: o.ID, Status: status, Pid: pid, Bundle: bundle, Annotations: spec.Annotations})
	}
	boot := bootstrap(spec, 0)
	init := &syncpipe.Init{
		ID: o.ID, Spec: spec, Process: spec.Process, NoPivot: o.NoPivot, NoNewKeyring: o.NoNewKeyring,
		CgroupPaths: mgr.Paths(),
	}
	pid, err := spawn(spawnOpts{
		init: init, boot: boot, uidMaps: spec.Linux.UIDMappings, gidMaps: spec.Linux.GIDMappings,
		cgroup: mgr, preserved: preserved(o.PreserveFds), mountSrcs: srcs, fifo: fifo, console: consoleSock, listener: listener, stdio: o.Stdio,
		onPid: func(pid int) error {
			init.StateJSON = hookState(pid, specs.StateCreating)
			if unit != nil {
				// The init is in the scope's directories already (it
				// joined them itself); systemd adopts them, and may write
				// its defaults there: the limits go in again after.
				if err := unit.Start(pid, res, mgr.Mode() == cgroups.Unified); err != nil {
					return err
				}
				cu.Add(func() { _ = systemd.Stop(unit.Name) })
				if err := mgr.Set(res); err != nil {
					return err
				}
			}
			prog, ferr := filter()
			init.Seccomp = prog
			return ferr
		},
		onHooks: func(pid int) error {
			// Prestart (deprecated) was defined to run once the container
			// is created; the validation suite and crun give it "created".
			// createRuntime runs inside create: "creating".
			//lint:ignore SA1019 deprecated but still in the spec, and honoured
			if err := hooks.Run("prestart", spec.Hooks.Prestart, hookState(pid, specs.StateCreated)); err != nil {
				return err
			}
			return hooks.Run("createRuntime", spec.Hooks.CreateRuntime, hookState(pid, specs.StateCreating))
		},
	})
	if err != nil {
		return nil, err
	}
	c.state.Pid = pid
	if c.state.StartTime, _, err = procStartTime(pid); err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		_, _ = Wait(pid)
		return nil, fmt.Errorf("container init %d vanished: %w", pid, err)
	}
	if err := c.state.save(dir); err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		_, _ = Wait(pid)
		return nil, err
	}
	Debugf("create %s: init %d is ready, waiting for start", o.ID, pid)
	cu.Release()
	return c, nil
}

// bootstrap builds the constructor's message: namespaces to join (from
// paths, or from process pid's own when joinPid > 0) and to create.
func bootstrap(spec *specs.Spec, joinPid int) syncpipe.Bootstrap {
	var b syncpipe.Bootstrap
	for _, ns := range spec.Linux.Namespaces {
		switch {
		case joinPid > 0:
			b.Join = append(b.Join, syncpipe.Join{Type: string(ns.Type), Path: fmt.Sprintf("/proc/%d/ns/%s", joinPid, procNSName[ns.Type])})
		case ns.Path != "":
			b.Join = append(b.Join, syncpipe.Join{Type: string(ns.Type), Path: ns.Path})
		default:
			b.CloneFlags |= nsFlags[ns.Type]
		}
	}
	if joinPid == 0 {
		for clock, off := range spec.Linux.TimeOffsets {
			b.TimeOffsets = append(b.TimeOffsets, fmt.Sprintf("%s %d %d", clock, off.Secs, off.Nanosecs))
		}
	}
	return b
}

func preserved(n int) []*os.File {
	out := make([]*os.File, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, os.NewFile(uintptr(3+i), "preserved-"+strconv.Itoa(3+i)))
	}
	return out
}

func dialConsole(path string) (*os.File, error) {
	return dialUnix(path, "--console-socket")
}

// dialListener connects to linux.seccomp.listenerPath when a rule notifies.
func dialListener(spec *specs.Spec) (*os.File, error) {
	if !seccomp.UsesNotify(spec.Linux.Seccomp) {
		return nil, nil
	}
	return dialUnix(spec.Linux.Seccomp.ListenerPath, "linux.seccomp.listenerPath")
}

// dialUnix connects a close-on-exec stream socket to path. (Raw calls, not
// package net: the runtime's binary size is its memory.)
func dialUnix(path, what string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	for {
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s %s: dial unix: %w", what, path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// withDefaultDeviceRules appends runc's built-in allow rules (the default
// devices, terminals, tun, mknod of anything) after the config's own
// rules; devices the config lists get none of their own.
func withDefaultDeviceRules(spec *specs.Spec) *specs.LinuxResources {
	r := spec.Linux.Resources
	if r == nil || len(r.Devices) == 0 {
		return r
	}
	cp := *r
	i64 := func(v int64) *int64 { return &v }
	cp.Devices = append([]specs.LinuxDeviceCgroup(nil), r.Devices...)
	allow := func(t string, major, minor int64, access string) {
		var mj, mn *int64
		if major >= 0 {
			mj = i64(major)
		}
		if minor >= 0 {
			mn = i64(minor)
		}
		cp.Devices = append(cp.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: t, Major: mj, Minor: mn, Access: access})
	}
	// runc's built-in list: mknod of any node (using it is another
	// matter), the standard devices, terminals, /dev/net/tun. The nodes
	// of linux.devices get no rule of their own: the config's rules
	// decide, as under runc.
	allow("c", -1, -1, "m")
	allow("b", -1, -1, "m")
	for _, d := range []struct{ maj, min int64 }{{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}, {136, -1}, {10, 200}} {
		allow("c", d.maj, d.min, "rwm")
	}
	return &cp
}

// Warnf reports a config field that is accepted but not applied; it goes
// where cgroups.Warnf goes (the runtime's log).
var Warnf = func(format string, args ...any) { cgroups.Warnf(format, args...) }

// openBindSources clones, here on the host, the source of every bind
// mount of a container that gets a new user namespace (its root is an
// unprivileged id on the host and may not reach the source path, a
// directory only root can enter, though the runtime that was asked to
// mount it can) and of every idmapped bind (mount_setattr needs the
// host's CAP_SYS_ADMIN). The init moves each clone into place. Nothing is
// opened for other binds, which the init binds by path as root.
func openBindSources(spec *specs.Spec, bundle string) (srcs map[int]*os.File, err error) {
	newUser := false
	for _, ns := range spec.Linux.Namespaces {
		newUser = newUser || (ns.Type == specs.UserNamespace && ns.Path == "")
	}
	root := os.Geteuid() == 0
	out := map[int]*os.File{}
	nss := map[string]*os.File{} // user namespaces for idmapped binds, by mapping
	defer func() {
		for _, f := range nss {
			f.Close()
		}
		if err != nil {
			for _, f := range out {
				f.Close()
			}
		}
	}()
	for i, m := range spec.Mounts {
		if m.Type != "bind" && !slices.Contains(m.Options, "bind") && !slices.Contains(m.Options, "rbind") {
			continue
		}
		idmap := rootfs.IDMapOf(m.Options)
		if idmap != rootfs.NoIDMap && !root {
			return nil, fmt.Errorf("mounts[%d] (%s): an idmapped mount needs the host's root (CAP_SYS_ADMIN): %w", i, m.Destination, errdefs.ErrUnavailable)
		}
		if idmap == rootfs.NoIDMap && (!newUser || !root) {
			continue
		}
		src := m.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(bundle, src) // as the init reads it
		}
		flags := unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC
		if slices.Contains(m.Options, "rbind") {
			flags |= unix.AT_RECURSIVE
		}
		fd, err := unix.OpenTree(unix.AT_FDCWD, src, uint(flags))
		if err != nil {
			return nil, fmt.Errorf("mounts[%d]: bind source %s: %w", i, m.Source, err)
		}
		out[i] = os.NewFile(uintptr(fd), src)
		if idmap == rootfs.NoIDMap {
			continue
		}
		uids, gids := m.UIDMappings, m.GIDMappings
		if len(uids) == 0 {
			uids, gids = spec.Linux.UIDMappings, spec.Linux.GIDMappings
		}
		key := fmt.Sprint(uids, gids)
		ns := nss[key]
		if ns == nil {
			if ns, err = userns.OpenSpec(uids, gids); err != nil {
				return nil, fmt.Errorf("mounts[%d] (%s): %w", i, m.Destination, err)
			}
			nss[key] = ns
		}
		if err := userns.Idmap(fd, ns, idmap == rootfs.IDMapRecursive); err != nil {
			return nil, fmt.Errorf("mounts[%d]: idmapped bind of %s: %w", i, m.Source, err)
		}
	}
	return out, nil
}

// Debugf reports a step of the runtime's work for --debug; by default it
// is silent.
var Debugf = func(format string, args ...any) {}

// warnSharedMounts: a container without a mount namespace of its own
// inherits the runtime's (runtime-spec: a namespace not listed is
// inherited). Its init enters root.path by chroot, as crun does, but makes
// no mount: mounts, masked and read-only paths, root.readonly and
// propagation would change the host's mounts. crun skips them silently;
// Berth says so.
func warnSharedMounts(s *specs.Spec) {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.MountNamespace {
			return
		}
	}
	Warnf("linux.namespaces: no mount namespace: the container shares the runtime's mounts and enters root.path by chroot; mounts, maskedPaths, readonlyPaths, root.readonly and rootfsPropagation are not applied")
}

// Load opens the container id under root.
func Load(root, id string) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, id)
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("container %q does not exist: %w", id, errdefs.ErrNotFound)
		}
		return nil, err
	}
	c := &Container{dir: dir}
	if err := json.Unmarshal(b, &c.state); err != nil {
		return nil, fmt.Errorf("container %q: corrupt state %s: %w", id, filepath.Join(dir, stateFile), err)
	}
	return c, nil
}

// List returns every container under root, sorted by id.
func List(root string) ([]*Container, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []*Container
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		c, err := Load(root, e.Name())
		if err != nil {
			continue // being created or deleted right now
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].state.ID < out[j].state.ID })
	return out, nil
}

// Start releases the start barrier: init execs the user's process. Then the
// poststart hooks run; their failure is returned but the container runs on.
func (c *Container) Start() error {
	if st := c.Status(); st != Created {
		return fmt.Errorf("container %s is %s, not created: %w", c.state.ID, st, errdefs.ErrConflict)
	}
	if c.state.Spec.Process == nil {
		return fmt.Errorf("container %s: config.json has no process to start: %w", c.state.ID, errdefs.ErrInvalid)
	}
	fifoPath := filepath.Join(c.dir, fifoName)
	fd, err := unix.Open(fifoPath, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENXIO) {
			return fmt.Errorf("container %s: its init is gone: %w", c.state.ID, errdefs.ErrConflict)
		}
		return fmt.Errorf("open start barrier: %w", err)
	}
	// A reader of our own, opened before the byte goes in, tells when the
	// init's end (close-on-exec) is gone.
	rfd, rerr := unix.Open(fifoPath, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	_, err = unix.Write(fd, []byte{0})
	unix.Close(fd)
	if err != nil {
		if rerr == nil {
			unix.Close(rfd)
		}
		return fmt.Errorf("release start barrier: %w", err)
	}
	_ = os.Remove(fifoPath)
	// The poststart hooks get the state of the moment the process was let
	// go: running, though a short-lived one may be gone by the time they
	// run (as under runc).
	st := c.OCIState()
	st.Status, st.Pid = specs.StateRunning, c.state.Pid
	if rerr == nil {
		waitExec(rfd)
		unix.Close(rfd)
	}
	Debugf("start %s: init %d released", c.state.ID, c.state.Pid)
	if h := c.state.Spec.Hooks; h != nil && len(h.Poststart) > 0 {
		return hooks.Run("poststart", h.Poststart, stateJSON(st))
	}
	return nil
}

// waitExec returns once the init has taken the start byte and its end of
// the barrier is closed — by the execve of the user's process (it is
// close-on-exec) or by its death — or after 10 s. So `start` returns when
// the user's program runs: a signal sent right after it
// reaches the program, not an init that ignores it (the kernel drops a
// signal without a handler at a PID namespace's init; the validation
// suite's killsig failed on that window under load).
//
// The byte is the init's: rfd is read only once the fifo is empty, and
// then reads nothing but EOF (no writer left) or EAGAIN (the init's end
// still open).
func waitExec(rfd int) {
	deadline := time.Now().Add(10 * time.Second)
	pause := 20 * time.Microsecond
	buf := make([]byte, 1)
	for time.Now().Before(deadline) {
		if n, err := unix.IoctlGetInt(rfd, unix.TIOCINQ); err == nil && n == 0 {
			if n, err := unix.Read(rfd, buf); n == 0 && err == nil {
				return
			}
		}
		time.Sleep(pause)
		pause = min(2*pause, time.Millisecond)
	}
}

// Signal sends sig to the init process, or with all to every process in the
// container's cgroup.
func (c *Container) Signal(sig syscall.Signal, all bool) error {
	st := c.Status()
	if st == Stopped && !all {
		// Engines match runc's words: containerd's shim takes "container
		// not running" as "already exited".
		return fmt.Errorf("cannot signal %s: container not running: %w", c.state.ID, errdefs.ErrConflict)
	}
	Debugf("signal %d to %s (all processes: %v)", sig, c.state.ID, all)
	mgr := c.cgroup()
	if _, none := mgr.(cgroups.None); !all || none {
		// Without a cgroup (a rootless container), the init stands for
		// all: killing it ends its PID namespace, as runc does there.
		if all && st == Stopped {
			return nil
		}
		return c.state.signal(sig)
	}
	pids, err := mgr.Pids()
	if errors.Is(err, fs.ErrNotExist) && (st == Stopped || c.Status() == Stopped) {
		// Its cgroup went with its last process (systemd removes an
		// empty scope's, a monitor deletes an exited container's, maybe
		// since the status above): nothing left to signal, as under runc.
		return nil
	}
	if err != nil {
		return err
	}
	for _, p := range pids {
		_ = syscall.Kill(p, sig)
	}
	return nil
}

func (c *Container) cgroup() cgroups.Manager {
	return cgroups.Load(c.state.CgroupMode, c.state.CgroupPaths)
}

// Delete removes a stopped (or created) container: its processes, cgroups
// and state. A running container needs force, which kills it first. The
// poststop hooks run last; their failure is returned after everything else
// is gone.
func (c *Container) Delete(force bool) error {
	st := c.Status()
	if (st == Running || st == Paused) && !force {
		return fmt.Errorf("container %s is %s: stop it first or use --force: %w", c.state.ID, st, errdefs.ErrConflict)
	}
	Debugf("delete %s: %s", c.state.ID, st)
	if st != Stopped {
		_ = c.state.signal(unix.SIGKILL)
	}
	mgr := c.cgroup()
	if st == Paused {
		thaw(c.state)
	}
	var cgErr error
	if !c.state.CgroupShared {
		cgErr = mgr.Destroy()
	}
	if c.state.SystemdUnit != "" {
		if err := systemd.Stop(c.state.SystemdUnit); err != nil && cgErr == nil {
			cgErr = err
		}
	}
	for i := 0; i < 500 && c.state.alive(); i++ {
		time.Sleep(2 * time.Millisecond)
	}
	var hookErr error
	if h := c.state.Spec.Hooks; h != nil && len(h.Poststop) > 0 {
		s := c.OCIState()
		s.Status = specs.StateStopped
		hookErr = hooks.Run("poststop", h.Poststop, stateJSON(s))
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return err
	}
	if cgErr != nil {
		return cgErr
	}
	return hookErr
}

func thaw(s State) {
	if d, ok := s.CgroupPaths["freezer"]; ok {
		_ = os.WriteFile(filepath.Join(d, "freezer.state"), []byte("THAWED"), 0)
	}
	if d, ok := s.CgroupPaths[""]; ok && s.CgroupMode == cgroups.Unified {
		_ = os.WriteFile(filepath.Join(d, "cgroup.freeze"), []byte("0"), 0)
	}
}

// ExecOpts describe a process to start in a running container.
type ExecOpts struct {
	Process       *specs.Process
	ConsoleSocket string
	Console       *os.File
	PreserveFds   int
	NoNewKeyring  bool
	Stdio         Stdio
	// SubCgroups puts the process into existing sub-cgroups of the
	// container's, by controller ("" for every one), as runc's
	// exec --cgroup does.
	SubCgroups map[string]string
	// IgnorePaused allows an exec into a paused container: the process is
	// set up outside the frozen cgroup, moved in, and runs once thawed.
	IgnorePaused bool
}

// Exec starts a process in the container's namespaces and cgroup and
// returns its pid once it is about to execve. The process is a child of the
// caller (use Wait).
func (c *Container) Exec(o ExecOpts) (int, error) {
	st := c.Status()
	if st == Paused && !o.IgnorePaused {
		return 0, fmt.Errorf("cannot exec in a paused container (use --ignore-paused to override): %w", errdefs.ErrConflict)
	}
	if st != Running && st != Created && st != Paused {
		return 0, fmt.Errorf("container %s is %s: can only exec in a created or running container: %w", c.state.ID, st, errdefs.ErrConflict)
	}
	cg, err := c.subCgroup(o.SubCgroups)
	if err != nil {
		return 0, err
	}
	p := o.Process
	if p == nil || len(p.Args) == 0 {
		return 0, fmt.Errorf("process.args must not be empty: %w", errdefs.ErrInvalid)
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	if !filepath.IsAbs(p.Cwd) {
		return 0, fmt.Errorf("process.cwd %q must be absolute: %w", p.Cwd, errdefs.ErrInvalid)
	}
	if dropped := capabilities.DropUngrantableAmbient(p.Capabilities); len(dropped) > 0 {
		Warnf("process.capabilities.ambient: %v are not both permitted and inheritable; they are not raised", dropped)
	}
	if err := capabilities.Validate(p.Capabilities); err != nil {
		return 0, err
	}
	console := o.Console
	if p.Terminal && console == nil {
		if o.ConsoleSocket == "" {
			return 0, fmt.Errorf("process.terminal is set: --console-socket is required: %w", errdefs.ErrInvalid)
		}
		var err error
		if console, err = dialConsole(o.ConsoleSocket); err != nil {
			return 0, err
		}
		defer console.Close()
	}
	if !p.Terminal {
		console = nil
	}
	boot := bootstrap(c.state.Spec, c.state.Pid)
	listener, err := dialListener(c.state.Spec)
	if err != nil {
		return 0, err
	}
	if listener != nil {
		defer listener.Close()
	}
	filter := compileAsync(c.state.Spec.Linux.Seccomp)
	defer filter()
	init := &syncpipe.Init{ID: c.state.ID, Exec: true, Spec: c.state.Spec, Process: p, NoNewKeyring: o.NoNewKeyring}
	opts := spawnOpts{
		init: init, boot: boot, cgroup: cg, preserved: preserved(o.PreserveFds),
		console: console, listener: listener, stdio: o.Stdio,
		onPid: func(pid int) error {
			init.StateJSON = stateJSON(c.OCIState())
			var err error
			init.Seccomp, err = filter()
			return err
		},
	}
	if st != Paused {
		pid, err := spawn(opts)
		Debugf("exec in %s: pid %d", c.state.ID, pid)
		return pid, err
	}
	// Paused: a process joining the frozen cgroup during its setup would
	// freeze there and the setup would never end (runc hangs). It is set
	// up outside, waits at a barrier of its own, and is moved in before
	// the barrier opens: it runs once the container is resumed.
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer w.Close()
	opts.fifo, opts.cgroup = r, nil
	pid, err := spawn(opts)
	r.Close()
	if err != nil {
		return 0, err
	}
	if err := cg.Apply(pid); err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		_, _ = Wait(pid)
		return 0, err
	}
	if _, err := w.Write([]byte{0}); err != nil {
		return 0, fmt.Errorf("release exec barrier: %w", err)
	}
	Debugf("exec in paused %s: pid %d, runs once resumed", c.state.ID, pid)
	return pid, nil
}

// subCgroup is the container's cgroup, or with subs (controller → path
// below the container's cgroup, "" for every controller) the existing
// sub-cgroups named there.
func (c *Container) subCgroup(subs map[string]string) (cgroups.Manager, error) {
	if len(subs) == 0 {
		return c.cgroup(), nil
	}
	paths := maps.Clone(c.state.CgroupPaths)
	for ctrl, sub := range subs {
		if sub == "" || filepath.IsAbs(sub) || !filepath.IsLocal(sub) {
			return nil, fmt.Errorf("--cgroup %q: must be a path below the container's cgroup: %w", sub, errdefs.ErrInvalid)
		}
		if ctrl != "" {
			if _, ok := paths[ctrl]; !ok {
				return nil, fmt.Errorf("--cgroup %s:%s: the container has no %s cgroup: %w", ctrl, sub, ctrl, errdefs.ErrInvalid)
			}
		}
		for k := range paths {
			if k == ctrl || (ctrl == "" && subs[k] == "") {
				paths[k] = filepath.Join(c.state.CgroupPaths[k], sub)
			}
		}
	}
	for k, dir := range paths {
		if dir == c.state.CgroupPaths[k] {
			continue
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("--cgroup: sub-cgroup %s does not exist: %w", dir, errdefs.ErrNotFound)
		}
	}
	return cgroups.Load(c.state.CgroupMode, paths), nil
}

// Pids lists the processes in the container's cgroup.
func (c *Container) Pids() ([]int, error) { return c.cgroup().Pids() }
