// Package seccomp turns an OCI linux.seccomp section into a classic BPF
// filter (its own compiler, compile.go) and loads it into the calling
// thread.
//
// Preconditions for Load: the caller is on the locked OS thread that will
// execve, and either has no_new_privs set or still holds CAP_SYS_ADMIN.
package seccomp

import (
	"fmt"
	"slices"
	"unsafe"

	"github.com/berth-project/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// actions maps the spec's actions to seccomp return values; ERRNO and TRACE
// carry 16 bits of data.
var actions = map[specs.LinuxSeccompAction]uint32{
	specs.ActKill:        unix.SECCOMP_RET_KILL_THREAD,
	specs.ActKillThread:  unix.SECCOMP_RET_KILL_THREAD,
	specs.ActKillProcess: unix.SECCOMP_RET_KILL_PROCESS,
	specs.ActTrap:        unix.SECCOMP_RET_TRAP,
	specs.ActErrno:       unix.SECCOMP_RET_ERRNO,
	specs.ActTrace:       unix.SECCOMP_RET_TRACE,
	specs.ActAllow:       unix.SECCOMP_RET_ALLOW,
	specs.ActLog:         unix.SECCOMP_RET_LOG,
	specs.ActNotify:      unix.SECCOMP_RET_USER_NOTIF,
}

var operators = []specs.LinuxSeccompOperator{
	specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
	specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
}

// CompilerVersion changes whenever the compiler's output for a profile may
// change; cached programs are keyed by it.
const CompilerVersion = "berth-bpf-1"

// Flags the kernel may support, as named by the spec.
const (
	flagLog             = "SECCOMP_FILTER_FLAG_LOG"
	flagSpecAllow       = "SECCOMP_FILTER_FLAG_SPEC_ALLOW"
	flagWaitKillable    = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
	flagTsync           = "SECCOMP_FILTER_FLAG_TSYNC"
	defaultErrno        = uint(unix.EPERM)
	maxSeccompArguments = 6
)

// Actions, Operators, Archs and Flags list what Validate accepts, for the
// runtime's `features` output.
func Actions() []string { return keys(actions) }
func Operators() []string {
	out := make([]string, len(operators))
	for i, o := range operators {
		out[i] = string(o)
	}
	return out
}
func Flags() []string { return []string{flagLog, flagSpecAllow, flagWaitKillable, flagTsync} }
func Archs() []string {
	return []string{"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
		"SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
		"SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390",
		"SCMP_ARCH_S390X", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64"}
}

func keys[K ~string, V any](m map[K]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, string(k))
	}
	return out
}

func action(a specs.LinuxSeccompAction, errnoRet *uint, def uint) (uint32, error) {
	act, ok := actions[a]
	if !ok {
		return 0, fmt.Errorf("unknown action %q: %w", a, errdefs.ErrInvalid)
	}
	switch act {
	case unix.SECCOMP_RET_ERRNO, unix.SECCOMP_RET_TRACE:
		ret := def
		if errnoRet != nil {
			ret = *errnoRet
		}
		act |= uint32(ret) & unix.SECCOMP_RET_DATA
	}
	return act, nil
}

// runtimeAfterLoad are the syscalls the init makes under its own filter
// before the listener holds the filter's descriptor (sending it, closing
// the socket, reporting an error): notifying one of them would deadlock
// the container's start. runc refuses write for the same reason.
var runtimeAfterLoad = []string{"write", "sendmsg", "close"}

// Validate checks s without building a filter, naming the field at fault.
func Validate(s *specs.LinuxSeccomp) error {
	if s == nil {
		return nil
	}
	if _, err := action(s.DefaultAction, nil, defaultErrno); err != nil {
		return fmt.Errorf("linux.seccomp.defaultAction: %w", err)
	}
	for _, a := range s.Architectures {
		if !slices.Contains(Archs(), string(a)) {
			return fmt.Errorf("linux.seccomp.architectures: unknown architecture %q: %w", a, errdefs.ErrInvalid)
		}
	}
	for _, f := range s.Flags {
		if !slices.Contains(Flags(), string(f)) {
			return fmt.Errorf("linux.seccomp.flags: unknown flag %q: %w", f, errdefs.ErrInvalid)
		}
	}
	for i, sc := range s.Syscalls {
		if _, err := action(sc.Action, sc.ErrnoRet, defaultErrno); err != nil {
			return fmt.Errorf("linux.seccomp.syscalls[%d].action: %w", i, err)
		}
		if sc.Action == specs.ActNotify {
			for _, name := range sc.Names {
				if slices.Contains(runtimeAfterLoad, name) {
					return fmt.Errorf("linux.seccomp.syscalls[%d]: SCMP_ACT_NOTIFY cannot be used for the %s syscall: the runtime makes it under the filter before the listener has the filter's descriptor, and would wait forever: %w", i, name, errdefs.ErrInvalid)
				}
			}
		}
		if len(sc.Args) > maxSeccompArguments {
			return fmt.Errorf("linux.seccomp.syscalls[%d]: more than 6 argument conditions: %w", i, errdefs.ErrInvalid)
		}
		for _, a := range sc.Args {
			if !slices.Contains(operators, a.Op) {
				return fmt.Errorf("linux.seccomp.syscalls[%d].args: unknown operator %q: %w", i, a.Op, errdefs.ErrInvalid)
			}
			if a.Index >= maxSeccompArguments {
				return fmt.Errorf("linux.seccomp.syscalls[%d].args: index %d out of range: %w", i, a.Index, errdefs.ErrInvalid)
			}
		}
	}
	for _, f := range s.Flags {
		if string(f) == flagWaitKillable && !usesNotify(s) {
			return fmt.Errorf("linux.seccomp.flags: %s applies only to a filter with an SCMP_ACT_NOTIFY rule: %w", f, errdefs.ErrInvalid)
		}
	}
	if s.ListenerPath == "" && usesNotify(s) {
		return fmt.Errorf("linux.seccomp: SCMP_ACT_NOTIFY needs listenerPath: %w", errdefs.ErrInvalid)
	}
	return nil
}

// UsesNotify reports whether any rule hands syscalls to a listener.
func usesNotify(s *specs.LinuxSeccomp) bool {
	if s.DefaultAction == specs.ActNotify {
		return true
	}
	for _, sc := range s.Syscalls {
		if sc.Action == specs.ActNotify {
			return true
		}
	}
	return false
}

// UsesNotify is usesNotify for callers outside the package.
func UsesNotify(s *specs.LinuxSeccomp) bool { return s != nil && usesNotify(s) }

// Program is a compiled filter, ready to load without allocating: the
// program is compiled before the init applies limits such as RLIMIT_AS,
// and loaded as late as it can be.
//
// A Program travels from the runtime to the init as JSON: the parent
// compiles while the init builds the rootfs.
type Program struct {
	BPF    []byte  `json:"bpf"` // struct sock_filter array, native endian
	Flags  uintptr `json:"flags,omitempty"`
	Notify bool    `json:"notify,omitempty"`
}

// Compile builds the BPF program for s.
func Compile(s *specs.LinuxSeccomp) (*Program, error) {
	def, err := action(s.DefaultAction, s.DefaultErrnoRet, defaultErrno)
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp.defaultAction: %w", err)
	}
	p := &Program{Notify: usesNotify(s)}
	for _, fl := range s.Flags {
		switch string(fl) {
		case flagLog:
			p.Flags |= unix.SECCOMP_FILTER_FLAG_LOG
		case flagSpecAllow:
			p.Flags |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case flagWaitKillable:
			p.Flags |= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
		case flagTsync:
			// Only the thread that execs matters.
		default:
			return nil, fmt.Errorf("linux.seccomp.flags: unknown flag %q: %w", fl, errdefs.ErrInvalid)
		}
	}
	if p.Notify {
		p.Flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
	}
	prog, err := compileBPF(s, def)
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp: %w", err)
	}
	p.BPF = unsafe.Slice((*byte)(unsafe.Pointer(&prog[0])), len(prog)*sockFilterSize)
	return p, nil
}

// sockFilterSize is sizeof(struct sock_filter).
const sockFilterSize = int(unsafe.Sizeof(unix.SockFilter{}))

// Load installs the program on the calling thread. It returns the notify
// listener descriptor when a rule notifies, else -1. It does not allocate.
func (p *Program) Load() (int, error) {
	if len(p.BPF) == 0 || len(p.BPF)%sockFilterSize != 0 {
		return -1, fmt.Errorf("load seccomp filter: malformed program of %d bytes", len(p.BPF))
	}
	prog := unix.SockFprog{
		Len:    uint16(len(p.BPF) / sockFilterSize),
		Filter: (*unix.SockFilter)(unsafe.Pointer(&p.BPF[0])),
	}
	r, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, p.Flags, uintptr(unsafe.Pointer(&prog)))
	if errno != 0 {
		return -1, fmt.Errorf("load seccomp filter: %w", errno)
	}
	if !p.Notify {
		return -1, nil
	}
	return int(r), nil
}
