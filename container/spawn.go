package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/container/nsenter"
	"github.com/berth-project/berth/container/syncpipe"
	"github.com/berth-project/berth/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var nsFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// procNSName is the entry name under /proc/<pid>/ns for each type.
var procNSName = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.MountNamespace: "mnt",
	specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.UserNamespace: "user",
	specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
}

// SelfExe, if set, is the binary re-executed as the container init instead
// of this one on its read-only mount (see ExeDir). It must import
// container/nsenter and call initproc.Main when initproc.IsInit.
var SelfExe = ""

type spawnOpts struct {
	init      *syncpipe.Init
	boot      syncpipe.Bootstrap
	uidMaps   []specs.LinuxIDMapping
	gidMaps   []specs.LinuxIDMapping
	cgroup    cgroups.Manager  // nil: stay in the runtime's cgroup
	preserved []*os.File       // become fds 3, 4, … of the process
	mountSrcs map[int]*os.File // bind sources opened on the host, by mount index (Init.MountFds)
	fifo      *os.File         // start barrier, or nil
	console   *os.File         // connected console socket, or nil
	listener  *os.File         // connected seccomp listener socket, or nil
	stdio     [3]*os.File
	onPid     func(pid int) error // once the pid is known, before init gets its config
	onHooks   func(pid int) error // prestart+createRuntime, when init asks
}

// spawn starts an init process, walks it through the sync protocol until it
// reports ready, and returns its pid. The process is a child of the caller.
// On error, every process it started has been killed and reaped.
func spawn(o spawnOpts) (pid int, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("sync socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "sync-parent")
	child := os.NewFile(uintptr(fds[1]), "sync-child")
	defer parent.Close()

	closeInheritedOnExec()
	extra := append([]*os.File(nil), o.preserved...)
	syncFd := 3 + len(extra)
	extra = append(extra, child)
	for i, f := range o.mountSrcs {
		if o.init.MountFds == nil {
			o.init.MountFds = map[int]int{}
		}
		o.init.MountFds[i] = 3 + len(extra)
		extra = append(extra, f)
	}
	if o.fifo != nil {
		o.init.FifoFd = 3 + len(extra)
		extra = append(extra, o.fifo)
	}
	if o.console != nil {
		o.init.ConsoleFd = 3 + len(extra)
		extra = append(extra, o.console)
	}
	if o.listener != nil {
		o.init.SeccompFd = 3 + len(extra)
		extra = append(extra, o.listener)
	}
	o.init.PreserveFds = len(o.preserved)

	exe := SelfExe
	if exe == "" {
		var err error
		var done func()
		if exe, done, err = initBinary(); err != nil {
			child.Close()
			return 0, err
		}
		defer done()
	}
	parentJoins, cgfd, err := joinCgroups(&o)
	if err != nil {
		child.Close()
		return 0, err
	}
	var sys *syscall.SysProcAttr
	if cgfd != nil {
		defer cgfd.Close()
		sys = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cgfd.Fd())}
	}
	// (os.StartProcess, not os/exec: the runtime's binary size is its
	// memory.) A nil stdio entry is a closed descriptor in the init.
	proc, err := os.StartProcess(exe, []string{"berth-runtime", "init"}, &os.ProcAttr{
		// The init's work is sequential: one P keeps Go's scheduler from
		// spinning threads against the runtime on small machines.
		Env:   []string{nsenter.SyncEnv + "=" + strconv.Itoa(syncFd), "GOMAXPROCS=1"},
		Files: append([]*os.File{o.stdio[0], o.stdio[1], o.stdio[2]}, extra...),
		Sys:   sys,
	})
	if err != nil {
		child.Close()
		return 0, fmt.Errorf("start container init: %w", err)
	}
	child.Close()
	first := proc.Pid
	pid = first
	defer func() {
		if err == nil {
			return
		}
		_ = unix.Kill(first, unix.SIGKILL)
		if pid != first {
			_ = unix.Kill(pid, unix.SIGKILL)
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, 0, nil)
		}
		_, _ = proc.Wait()
	}()

	if parentJoins {
		if err := o.cgroup.Apply(first); err != nil {
			return pid, err
		}
	}
	conn := syncpipe.New(parent)
	if err := conn.WriteBootstrap(o.boot); err != nil {
		return pid, fmt.Errorf("send bootstrap to init: %w", err)
	}
	for {
		m, err := conn.Recv()
		if err != nil {
			return pid, initError(err)
		}
		if m.Type == syncpipe.TypeUsermap {
			if err := writeIDMaps(first, o.uidMaps, o.gidMaps); err != nil {
				return pid, err
			}
			if err := conn.WriteAck(); err != nil {
				return pid, err
			}
			continue
		}
		if m.Type != syncpipe.TypePid {
			return pid, fmt.Errorf("sync pipe: unexpected %q before pid", m.Type)
		}
		pid = m.Pid
		break
	}
	if pid != first {
		// The intermediate process has exited after cloning the init.
		st, err := proc.Wait()
		if err == nil && !st.Success() {
			err = errors.New(st.String())
		}
		if err != nil {
			return pid, fmt.Errorf("namespace setup process: %w", err)
		}
	}
	if o.onPid != nil {
		if err := o.onPid(pid); err != nil {
			return pid, err
		}
	}
	if err := conn.Send(syncpipe.Message{Type: syncpipe.TypeConfig, Init: o.init}); err != nil {
		return pid, fmt.Errorf("send config to init: %w", err)
	}
	for {
		m, err := conn.Recv()
		if err != nil {
			return pid, initError(err)
		}
		switch m.Type {
		case syncpipe.TypeHooks:
			if o.onHooks != nil {
				if err := o.onHooks(pid); err != nil {
					return pid, err
				}
			}
			if err := conn.Send(syncpipe.Message{Type: syncpipe.TypeHooksOK}); err != nil {
				return pid, err
			}
		case syncpipe.TypeReady:
			return pid, nil
		default:
			return pid, fmt.Errorf("sync pipe: unexpected %q", m.Type)
		}
	}
}

// joinCgroups decides how the first process enters its cgroups, without
// the global cgroup lock where it can (cgroups.SelfJoin: writing a pid to
// cgroup.procs waits for an RCU grace period, 5–25 ms here). A root
// runtime's child writes "0" to each v1 tasks file itself, first thing,
// while it is still root in the runtime's user namespace; the cgroup2
// directory it is cloned into (CLONE_INTO_CGROUP): by its constructor
// when it makes no user namespace, else here at its start (cgfd), since
// inside a new user namespace it is no longer allowed to. An unprivileged
// runtime's child is moved by the parent (parentJoins), as before.
func joinCgroups(o *spawnOpts) (parentJoins bool, cgfd *os.File, err error) {
	if o.cgroup == nil {
		return false, nil, nil
	}
	if os.Geteuid() != 0 {
		return true, nil, nil
	}
	userns := o.boot.CloneFlags&unix.CLONE_NEWUSER != 0
	for _, j := range o.boot.Join {
		userns = userns || j.Type == string(specs.UserNamespace)
	}
	tasks, cg2 := cgroups.SelfJoin(o.cgroup)
	o.boot.CgroupTasks = tasks
	if !userns {
		o.boot.CgroupClone = cg2
		return false, nil, nil
	}
	if cg2 != "" {
		if cgfd, err = os.OpenFile(cg2, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			return false, nil, fmt.Errorf("cgroup %s: %w", cg2, err)
		}
	}
	return false, cgfd, nil
}

func initError(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("container init exited during setup without a word (see its stderr)")
	}
	return err
}

// writeIDMaps writes uid_map and gid_map of pid in one write each, as the
// kernel requires.
func writeIDMaps(pid int, uids, gids []specs.LinuxIDMapping) error {
	write := func(file string, maps []specs.LinuxIDMapping) error {
		if len(maps) == 0 {
			return nil
		}
		field := map[string]string{"uid_map": "uidMappings", "gid_map": "gidMappings"}[file]
		own := os.Geteuid()
		if file == "gid_map" {
			own = os.Getegid()
		}
		if os.Geteuid() != 0 && !(len(maps) == 1 && maps[0].Size == 1 && int(maps[0].HostID) == own) {
			return writeWithHelper(pid, file, field, maps)
		}
		if os.Geteuid() != 0 && file == "gid_map" {
			// An unprivileged process may map its own gid only once
			// setgroups is denied in the namespace (user_namespaces(7)).
			if err := os.WriteFile(fmt.Sprintf("/proc/%d/setgroups", pid), []byte("deny"), 0); err != nil {
				return fmt.Errorf("linux.%s: deny setgroups: %w", field, err)
			}
		}
		var b strings.Builder
		for _, m := range maps {
			fmt.Fprintf(&b, "%d %d %d\n", m.ContainerID, m.HostID, m.Size)
		}
		p := fmt.Sprintf("/proc/%d/%s", pid, file)
		if err := os.WriteFile(p, []byte(b.String()), 0); err != nil {
			return fmt.Errorf("linux.%s: write %s: %w", field, p, err)
		}
		return nil
	}
	if err := write("uid_map", uids); err != nil {
		return err
	}
	return write("gid_map", gids)
}

// writeWithHelper maps ids an unprivileged runtime does not own through
// the setuid helpers newuidmap and newgidmap (Debian's uidmap), which
// check them against /etc/subuid and /etc/subgid.
func writeWithHelper(pid int, file, field string, maps []specs.LinuxIDMapping) error {
	helper := map[string]string{"uid_map": "newuidmap", "gid_map": "newgidmap"}[file]
	args := []string{strconv.Itoa(pid)}
	for _, m := range maps {
		args = append(args, strconv.FormatUint(uint64(m.ContainerID), 10), strconv.FormatUint(uint64(m.HostID), 10), strconv.FormatUint(uint64(m.Size), 10))
	}
	out, err := exec.Command(helper, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("linux.%s: %s %s: %v: %s (an unprivileged runtime maps ids other than its own through %s, from the uidmap package, and /etc/subuid and /etc/subgid)",
			field, helper, strings.Join(args, " "), err, strings.TrimSpace(string(out)), helper)
	}
	return nil
}

// Wait waits for the child process pid (a container init or exec'd
// process started by this runtime process) and returns its exit code in the
// shell's convention: 128+signal for a killed process.
func Wait(pid int) (int, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, err
		}
		break
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}

func stateJSON(st specs.State) []byte {
	b, _ := json.Marshal(st)
	return b
}

// closeInheritedOnExec marks every descriptor from 3 up close-on-exec, once
// per process: descriptors this process inherited from its caller would
// otherwise pass into every container init (Go only closes its own). The
// ones meant for the container are handed over as ExtraFiles, which the
// fork places without the flag.
var closeInheritedOnExec = sync.OnceFunc(func() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
})

// compileAsync compiles a seccomp filter in the background (~0.3 ms of CPU
// for the default profile), so that it overlaps the rest of the create
// path; the returned function waits for it and may be called any number of
// times. A nil config yields a nil program.
func compileAsync(cfg *specs.LinuxSeccomp) func() (*seccomp.Program, error) {
	if cfg == nil {
		return func() (*seccomp.Program, error) { return nil, nil }
	}
	type result struct {
		p   *seccomp.Program
		err error
	}
	ch := make(chan result, 1)
	go func() {
		p, err := seccomp.Compile(cfg)
		ch <- result{p, err}
	}()
	return sync.OnceValues(func() (*seccomp.Program, error) {
		r := <-ch
		return r.p, r.err
	})
}
