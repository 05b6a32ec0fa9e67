// Package initproc is the child side of container start-up: it runs as the
// container's first process (or an exec'd process) after container/nsenter
// has put it in its namespaces, builds the root file system, sets up the
// process, waits at the start barrier and execve's the user's program, which
// keeps this process's PID.
//
// Preconditions: the process was started by the container package with
// syncpipe.SyncEnv set; Main is called before anything else in main.
package initproc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"github.com/berth-project/berth/container/capabilities"
	"github.com/berth-project/berth/container/hooks"
	"github.com/berth-project/berth/container/nsenter"
	"github.com/berth-project/berth/container/rootfs"
	"github.com/berth-project/berth/container/syncpipe"
	"github.com/berth-project/berth/userns"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func init() {
	// Capabilities, no_new_privs and seccomp are per thread: everything from
	// here to execve happens on the main thread.
	if os.Getenv(nsenter.SyncEnv) != "" {
		runtime.LockOSThread()
	}
}

// IsInit reports whether this process was started as a container init.
func IsInit() bool { return os.Getenv(nsenter.SyncEnv) != "" }

// Main runs the init and never returns: it execs the user's process or
// exits non-zero after reporting the error to the parent.
func Main() {
	fdNum, err := strconv.Atoi(os.Getenv(nsenter.SyncEnv))
	if err != nil {
		os.Exit(1)
	}
	os.Unsetenv(nsenter.SyncEnv)
	conn := syncpipe.New(os.NewFile(uintptr(fdNum), "sync"))
	msg, err := conn.Expect(syncpipe.TypeConfig)
	if err != nil || msg.Init == nil {
		os.Exit(1)
	}
	// run returns only on failure: on success the process is exec'd.
	err = run(conn, msg.Init)
	_ = conn.Send(syncpipe.Message{Type: syncpipe.TypeError, Message: err.Error()})
	os.Exit(1)
	os.Exit(1) // unreachable: run execs or fails
}

func hasNewNS(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	if s.Linux == nil {
		return false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t && ns.Path == "" {
			return true
		}
	}
	return false
}

// enterRoot makes root the process's root directory and working
// directory, for a container sharing the runtime's mount namespace.
func enterRoot(root string) error {
	if err := unix.Chroot(root); err != nil {
		return fmt.Errorf("root.path %s: chroot: %w", root, err)
	}
	return unix.Chdir("/")
}

// finalize applies the last rootfs settings (rootfs.Finalize) when the
// container has its own mount namespace.
func finalize(s *specs.Spec, ownMounts bool) error {
	if !ownMounts {
		return nil
	}
	return rootfs.Finalize(s)
}

func hasNS(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	if s.Linux == nil {
		return false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

func run(conn *syncpipe.Conn, in *syncpipe.Init) error {
	s, p := in.Spec, in.Process
	unix.Umask(0)
	// Without a mount namespace of its own the container shares the
	// runtime's mounts: it enters root.path by chroot, and no mount is
	// made (it would change the host's); container.Create has warned.
	ownMounts := hasNS(s, specs.MountNamespace)
	if !in.Exec {
		rc := &rootfs.Config{
			Spec:        s,
			Rootfs:      s.Root.Path,
			UserNS:      hasNS(s, specs.UserNamespace) || userns.Nested(),
			CgroupNS:    hasNewNS(s, specs.CgroupNamespace),
			CgroupPaths: in.CgroupPaths,
			MountFds:    in.MountFds,
		}
		if ownMounts {
			if err := rootfs.Prepare(rc); err != nil {
				return err
			}
		}
		//lint:ignore SA1019 prestart is deprecated but still honoured
		if s.Hooks != nil && (len(s.Hooks.Prestart) > 0 || len(s.Hooks.CreateRuntime) > 0) {
			if err := conn.Send(syncpipe.Message{Type: syncpipe.TypeHooks}); err != nil {
				return err
			}
			if _, err := conn.Expect(syncpipe.TypeHooksOK); err != nil {
				return err
			}
		}
		if s.Hooks != nil {
			// In the root file system, as runc runs them (the spec leaves
			// the directory open).
			if err := hooks.RunIn("createContainer", s.Hooks.CreateContainer, in.StateJSON, s.Root.Path); err != nil {
				return err
			}
		}
		if ownMounts {
			if err := rootfs.PivotRoot(s.Root.Path, in.NoPivot); err != nil {
				return err
			}
		} else if err := enterRoot(s.Root.Path); err != nil {
			return err
		}
	}
	if p == nil {
		// Created without a process: finish the container, then wait to be
		// deleted (start refuses such a container).
		if err := setHostIdentity(s); err != nil {
			return err
		}
		if err := finalize(s, ownMounts); err != nil {
			return err
		}
		if err := conn.Send(syncpipe.Message{Type: syncpipe.TypeReady}); err != nil {
			return err
		}
		for {
			unix.Pause()
		}
	}
	if p.Terminal {
		if err := setupConsole(in); err != nil {
			return err
		}
	}
	if !in.Exec {
		// Sysctls go in before readonlyPaths makes /proc/sys read-only.
		if err := setHostIdentity(s); err != nil {
			return err
		}
		if err := finalize(s, ownMounts); err != nil {
			return err
		}
	}
	if !in.NoNewKeyring {
		if _, err := unix.KeyctlJoinSessionKeyring("_ses." + in.ID); err != nil && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("join a new session keyring: %w", err)
		}
	}
	if pers := s.Linux.Personality; pers != nil {
		v, ok := Personality(pers.Domain)
		if !ok {
			return fmt.Errorf("linux.personality.domain %q: not supported", pers.Domain)
		}
		if _, _, errno := unix.RawSyscall(unix.SYS_PERSONALITY, v, 0, 0); errno != 0 {
			return fmt.Errorf("linux.personality %s: %w", pers.Domain, errno)
		}
	}
	if p.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0); err != nil {
			return fmt.Errorf("process.oomScoreAdj: %w", err)
		}
	}
	if len(p.Args) == 0 {
		return errors.New("process.args: must not be empty")
	}
	path, err := lookPath(p.Args[0], p.Env)
	if err != nil {
		return err
	}
	env := withHome(p.Env, p.User.UID)
	if p.Cwd != "" {
		if err := unix.Chdir(p.Cwd); err != nil {
			return fmt.Errorf("process.cwd %s: %w", p.Cwd, err)
		}
		// A cwd reached through a descriptor of the host (/proc/self/fd/N)
		// lies outside the root: getcwd then reports it unreachable.
		if wd, err := unix.Getwd(); err != nil || !strings.HasPrefix(wd, "/") {
			return fmt.Errorf("process.cwd %s resolves outside the container's root", p.Cwd)
		}
	}
	caps, err := capabilities.FromSpec(p.Capabilities)
	if err != nil {
		return err
	}
	// The runtime compiled the filter; load it as late as the kernel
	// allows.
	filter := in.Seccomp
	if s.Linux.Seccomp != nil && filter == nil {
		return errors.New("linux.seccomp: the runtime sent no compiled filter")
	}
	// Before any filter is loaded: a profile may not allow close_range.
	if err := closeExtraFds(3 + in.PreserveFds); err != nil {
		return err
	}
	if filter != nil && !p.NoNewPrivileges {
		// Without no_new_privs loading a filter needs CAP_SYS_ADMIN, which
		// the process may be about to lose: load it now.
		if err := loadSeccomp(in, filter); err != nil {
			return err
		}
		filter = nil
	}
	// Limits go in after the init's own allocations (a small RLIMIT_AS
	// would starve them) but while CAP_SYS_RESOURCE is still held.
	if err := setRlimits(p.Rlimits); err != nil {
		return err
	}
	// From here on the process holds no more than the container's own
	// capabilities, so a container process could ptrace it and use what it
	// still holds (the start barrier, the sync socket): make it
	// non-dumpable first. execve of the user's program makes it dumpable
	// again.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("make init non-dumpable: %w", err)
	}
	if err := caps.DropBounding(); err != nil {
		return err
	}
	if err := setUser(p.User, hasNS(s, specs.UserNamespace)); err != nil {
		return err
	}
	if err := caps.Apply(); err != nil {
		return err
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("process.noNewPrivileges: %w", err)
		}
	}
	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
	} else {
		unix.Umask(0o022)
	}
	if err := conn.Send(syncpipe.Message{Type: syncpipe.TypeReady}); err != nil {
		return err
	}
	if in.FifoFd != 0 {
		// The start barrier: `start` writes one byte. EOF means the
		// runtime gave up on this container.
		buf := make([]byte, 1)
		n, err := unix.Read(in.FifoFd, buf)
		if err != nil || n != 1 {
			os.Exit(1)
		}
	}
	conn.Close()
	if filter != nil {
		// As late as the spec allows, so that as few of the runtime's
		// syscalls as possible run under the filter: the startContainer
		// hooks run under it, as the spec orders and runc does.
		if err := loadSeccomp(in, filter); err != nil {
			fmt.Fprintln(os.Stderr, "berth-runtime:", err)
			os.Exit(1)
		}
	}
	if s.Hooks != nil && len(s.Hooks.StartContainer) > 0 {
		if err := hooks.Run("startContainer", s.Hooks.StartContainer, in.StateJSON); err != nil {
			fmt.Fprintln(os.Stderr, "berth-runtime:", err)
			os.Exit(1)
		}
	}
	resetSignals()
	err = unix.Exec(path, p.Args, env)
	// Past the barrier nobody waits for a message: say it on stderr.
	fmt.Fprintf(os.Stderr, "berth-runtime: exec %s: %v\n", path, err)
	os.Exit(127)
	return nil
}

func setRlimits(list []specs.POSIXRlimit) error {
	for _, rl := range list {
		n, ok := Rlimit(rl.Type)
		if !ok {
			return fmt.Errorf("process.rlimits: unknown type %q", rl.Type)
		}
		// syscall.Setrlimit (not unix.) tells the Go runtime not to restore
		// its own RLIMIT_NOFILE at execve.
		if err := syscall.Setrlimit(n, &syscall.Rlimit{Cur: rl.Soft, Max: rl.Hard}); err != nil {
			return fmt.Errorf("process.rlimits %s: %w", rl.Type, err)
		}
	}
	return nil
}

func setHostIdentity(s *specs.Spec) error {
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("hostname: %w", err)
		}
	}
	if s.Domainname != "" {
		if err := unix.Setdomainname([]byte(s.Domainname)); err != nil {
			return fmt.Errorf("domainname: %w", err)
		}
	}
	for k, v := range s.Linux.Sysctl {
		p := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
		if err := os.WriteFile(p, []byte(v), 0); err != nil {
			return fmt.Errorf("linux.sysctl %s: %w", k, err)
		}
	}
	return nil
}

// lookPath finds the program as execve will: a name with a slash is taken
// as is, any other is searched in the process's PATH.
func lookPath(name string, env []string) (string, error) {
	check := func(p string) error {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return unix.EACCES
		}
		return nil
	}
	if strings.Contains(name, "/") {
		if err := check(name); err != nil {
			return "", fmt.Errorf("process.args[0] %q: not runnable in the container: %w", name, err)
		}
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if check(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("process.args[0] %q: executable file not found in the container's $PATH (%s)", name, path)
}

// withHome adds HOME when env has none, as runc does: the home directory
// of uid in the container's /etc/passwd, or "/" when it has no entry.
func withHome(env []string, uid uint32) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "HOME=") {
			return env
		}
	}
	home := "/"
	if raw, err := os.ReadFile("/etc/passwd"); err == nil {
		want := strconv.FormatUint(uint64(uid), 10)
		for _, line := range strings.Split(string(raw), "\n") {
			f := strings.Split(line, ":")
			if len(f) >= 6 && f[2] == want && f[5] != "" {
				home = f[5]
				break
			}
		}
	}
	return append(env[:len(env):len(env)], "HOME="+home)
}

// setUser switches to the process user, keeping capabilities for Apply.
func setUser(u specs.User, userNS bool) error {
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return err
	}
	gids := make([]int, 0, len(u.AdditionalGids))
	for _, g := range u.AdditionalGids {
		gids = append(gids, int(g))
	}
	// Each of these is a broadcast to every thread (glibc's setxid):
	// skip the ones whose result the process already has.
	if cur, err := unix.Getgroups(); err != nil || !sameInts(cur, gids) {
		if err := syscall.Setgroups(gids); err != nil && !(userNS && len(gids) == 0) {
			return fmt.Errorf("process.user.additionalGids: %w", err)
		}
	}
	if r, e, s := unix.Getresgid(); r != int(u.GID) || e != int(u.GID) || s != int(u.GID) {
		if err := syscall.Setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
			return fmt.Errorf("process.user.gid %d: %w", u.GID, err)
		}
	}
	if r, e, s := unix.Getresuid(); r != int(u.UID) || e != int(u.UID) || s != int(u.UID) {
		if err := syscall.Setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
			return fmt.Errorf("process.user.uid %d: %w", u.UID, err)
		}
	}
	return unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0)
}

// sameInts reports whether a and b hold the same set of values.
func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	seen := make(map[int]int, len(a))
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		if seen[x] == 0 {
			return false
		}
		seen[x]--
	}
	return true
}

// closeExtraFds marks every descriptor from first up close-on-exec and
// clears the flag below it, so the process gets stdio, the preserved
// descriptors and nothing else. It uses close_range, falling back to
// walking /proc/self/fd where the kernel lacks it.
func closeExtraFds(first int) error {
	if err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		ents, rerr := os.ReadDir("/proc/self/fd")
		if rerr != nil {
			return fmt.Errorf("mark descriptors close-on-exec: %v; list them: %w", err, rerr)
		}
		for _, e := range ents {
			if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= first {
				unix.CloseOnExec(fd)
			}
		}
	}
	for fd := 3; fd < first; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil && !errors.Is(err, unix.EBADF) {
			return err
		}
	}
	return nil
}

var rlimits = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

var personalities = map[specs.LinuxPersonalityDomain]uintptr{
	specs.PerLinux:   0x0000, // PER_LINUX
	specs.PerLinux32: 0x0008, // PER_LINUX32
}

// Personality maps linux.personality.domain to its personality(2) value.
func Personality(d specs.LinuxPersonalityDomain) (uintptr, bool) {
	v, ok := personalities[d]
	return v, ok
}

// Rlimit maps an OCI rlimit type to its resource number.
func Rlimit(name string) (int, bool) {
	n, ok := rlimits[name]
	return n, ok
}

// resetSignals gives the program about to be exec'd every signal at its
// default disposition and none blocked, as a fresh process under dockerd or
// runc has. execve resets caught signals itself but keeps ignored ones and
// the mask, and whoever started the init (berth-monitor ignores SIGINT and
// SIGHUP; a shell may block some) passes those down. Called last before
// execve: the Go runtime's own handlers are gone after it.
func resetSignals() {
	var dfl [4]uint64 // struct kernel_sigaction: handler SIG_DFL, flags, restorer, mask
	for sig := 1; sig <= 64; sig++ {
		if sig == int(unix.SIGKILL) || sig == int(unix.SIGSTOP) {
			continue
		}
		unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0)
	}
	var empty uint64
	unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&empty)), 0, 8, 0, 0)
}
