package seccomp

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// allowed are the syscalls every container may make: what ordinary
// programs need, and nothing that reaches past the container's namespaces
// (module loading, kexec, the kernel keyring, raw I/O ports, clock setting,
// mounting, namespace creation and the like are left out or gated below).
var allowed = []string{
	// files and directories
	"access", "faccessat", "faccessat2", "open", "openat", "openat2", "creat", "close", "close_range",
	"read", "readv", "pread64", "preadv", "preadv2", "write", "writev", "pwrite64", "pwritev", "pwritev2",
	"lseek", "_llseek", "stat", "stat64", "fstat", "fstat64", "lstat", "lstat64", "newfstatat", "fstatat64", "statx",
	"statfs", "statfs64", "fstatfs", "fstatfs64", "truncate", "truncate64", "ftruncate", "ftruncate64",
	"fallocate", "fadvise64", "fadvise64_64", "readahead", "sync", "syncfs", "fsync", "fdatasync", "sync_file_range",
	"rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat", "unlink", "unlinkat",
	"mkdir", "mkdirat", "rmdir", "mknod", "mknodat", "readlink", "readlinkat", "getdents", "getdents64",
	"chdir", "fchdir", "getcwd", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "chown32", "fchown", "fchown32",
	"fchownat", "lchown", "lchown32", "umask", "utime", "utimes", "futimesat", "utimensat", "utimensat_time64",
	"dup", "dup2", "dup3", "fcntl", "fcntl64", "flock", "ioctl", "pipe", "pipe2", "splice", "tee", "vmsplice",
	"sendfile", "sendfile64", "copy_file_range", "getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr",
	"fsetxattr", "listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr", "fremovexattr",
	"inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "memfd_create", "memfd_secret",
	"io_setup", "io_destroy", "io_getevents", "io_pgetevents", "io_submit", "io_cancel",
	"io_uring_setup", "io_uring_enter", "io_uring_register", "mincore",
	// memory
	"brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "pkey_mprotect", "pkey_alloc", "pkey_free",
	"madvise", "mlock", "mlock2", "munlock", "mlockall", "munlockall", "msync", "remap_file_pages",
	"membarrier", "process_mrelease", "map_shadow_stack",
	// processes and threads
	"fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "waitpid",
	"getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid",
	"set_tid_address", "set_robust_list", "get_robust_list", "futex", "futex_time64", "futex_waitv",
	"futex_wait", "futex_wake", "futex_requeue", "rseq", "arch_prctl", "prctl", "capget", "capset",
	"sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam",
	"sched_getscheduler", "sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min",
	"sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_getattr", "sched_setattr",
	"getpriority", "setpriority", "ioprio_get", "ioprio_set", "getrlimit", "ugetrlimit", "setrlimit", "prlimit64",
	"getrusage", "times", "pidfd_open", "pidfd_send_signal", "seccomp", "restart_syscall",
	// as Docker's profile on kernels from 4.8, whose ptrace checks no
	// longer let a traced process slip past the filter: debuggers and
	// strace work inside
	"ptrace", "process_vm_readv", "process_vm_writev",
	"landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "get_thread_area", "set_thread_area",
	// credentials
	"getuid", "getuid32", "geteuid", "geteuid32", "getgid", "getgid32", "getegid", "getegid32",
	"getresuid", "getresuid32", "getresgid", "getresgid32", "getgroups", "getgroups32",
	"setuid", "setuid32", "setgid", "setgid32", "setreuid", "setreuid32", "setregid", "setregid32",
	"setresuid", "setresuid32", "setresgid", "setresgid32", "setgroups", "setgroups32", "setfsuid", "setfsuid32",
	"setfsgid", "setfsgid32",
	// signals
	"kill", "tkill", "tgkill", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending",
	"rt_sigsuspend", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigtimedwait", "rt_sigtimedwait_time64",
	"sigaltstack", "sigaction", "sigprocmask", "sigreturn", "sigpending", "sigsuspend", "signal",
	"signalfd", "signalfd4", "pause", "alarm",
	// time (reading it, sleeping, timers)
	"time", "gettimeofday", "clock_gettime", "clock_gettime64", "clock_getres", "clock_getres_time64",
	"clock_nanosleep", "clock_nanosleep_time64", "nanosleep", "getitimer", "setitimer",
	"timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64",
	"timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
	"timerfd_settime", "timerfd_settime64", "clock_adjtime", "clock_adjtime64",
	// polling and events
	"select", "_newselect", "pselect6", "pselect6_time64", "poll", "ppoll", "ppoll_time64",
	"epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
	"eventfd", "eventfd2",
	// sockets
	"socket", "socketpair", "bind", "connect", "listen", "accept", "accept4", "getsockname", "getpeername",
	"sendto", "send", "sendmsg", "sendmmsg", "recvfrom", "recv", "recvmsg", "recvmmsg", "recvmmsg_time64",
	"shutdown", "getsockopt", "setsockopt", "socketcall",
	// System V and POSIX IPC (namespaced)
	"shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semtimedop_time64", "semctl",
	"msgget", "msgsnd", "msgrcv", "msgctl", "ipc", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedsend_time64",
	"mq_timedreceive", "mq_timedreceive_time64", "mq_notify", "mq_getsetattr",
	// system information
	"uname", "olduname", "sysinfo", "getcpu", "getrandom",
	"cachestat", "riscv_flush_icache", "cacheflush", "breakpoint",
	"set_tls", "arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "s390_pci_mmio_read",
	"s390_pci_mmio_write", "s390_runtime_instr",
}

// capSyscalls are allowed only when the container holds the capability,
// as the matching privileged operations would be on a host.
var capSyscalls = map[string][]string{
	"CAP_SYS_ADMIN": {"bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
		"lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl",
		"quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare",
		"name_to_handle_at"},
	"CAP_SYS_BOOT":        {"reboot"},
	"CAP_SYS_CHROOT":      {"chroot"},
	"CAP_SYS_MODULE":      {"delete_module", "init_module", "finit_module"},
	"CAP_SYS_PACCT":       {"acct"},
	"CAP_SYS_PTRACE":      {"kcmp", "process_madvise", "pidfd_getfd"},
	"CAP_SYS_RAWIO":       {"iopl", "ioperm"},
	"CAP_SYS_TIME":        {"settimeofday", "stime", "clock_settime", "clock_settime64", "adjtimex"},
	"CAP_SYS_TTY_CONFIG":  {"vhangup"},
	"CAP_SYS_NICE":        {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"},
	"CAP_SYSLOG":          {"syslog"},
	"CAP_BPF":             {"bpf"},
	"CAP_PERFMON":         {"perf_event_open"},
	"CAP_DAC_READ_SEARCH": {"open_by_handle_at"},
}

// namespaceFlags are the clone flags that create namespaces.
const namespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// DefaultProfile returns Berth's default filter for a process holding the
// given bounding capabilities: everything not allowed fails with EPERM;
// personality(2) may only select the Linux personalities; without
// CAP_SYS_ADMIN, clone may not create namespaces and clone3 reports ENOSYS
// (its flags live in memory a filter cannot read, so programs fall back to
// clone).
func DefaultProfile(caps []string) *specs.LinuxSeccomp {
	eperm := uint(unix.EPERM)
	enosys := uint(unix.ENOSYS)
	p := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &eperm,
		Architectures:   []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
	}
	has := func(c string) bool { return slices.Contains(caps, c) }
	names := append([]string(nil), allowed...)
	for _, c := range sortedKeys(capSyscalls) {
		if has(c) {
			names = append(names, capSyscalls[c]...)
		}
	}
	slices.Sort(names)
	p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: slices.Compact(names), Action: specs.ActAllow})
	for _, pers := range []uint64{0x0, 0x0008, 0x20000, 0x20008, 0xffffffff} {
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{
			Names: []string{"personality"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: pers, Op: specs.OpEqualTo}},
		})
	}
	if !has("CAP_SYS_ADMIN") {
		p.Syscalls = append(p.Syscalls,
			specs.LinuxSyscall{
				Names: []string{"clone"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: namespaceFlags, ValueTwo: 0, Op: specs.OpMaskedEqual}},
			},
			specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys},
		)
	}
	return p
}

func sortedKeys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
