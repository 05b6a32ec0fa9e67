// Package seccomp turns an OCI linux.seccomp section into a BPF filter with
// libseccomp and loads it into the calling thread.
//
// Preconditions for Load: the caller is on the locked OS thread that will
// execve, and either has no_new_privs set or still holds CAP_SYS_ADMIN.
package seccomp

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"unsafe"

	"github.com/berth-project/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

var actions = map[specs.LinuxSeccompAction]libseccomp.ScmpAction{
	specs.ActKill:        libseccomp.ActKillThread,
	specs.ActKillThread:  libseccomp.ActKillThread,
	specs.ActKillProcess: libseccomp.ActKillProcess,
	specs.ActTrap:        libseccomp.ActTrap,
	specs.ActErrno:       libseccomp.ActErrno,
	specs.ActTrace:       libseccomp.ActTrace,
	specs.ActAllow:       libseccomp.ActAllow,
	specs.ActLog:         libseccomp.ActLog,
	specs.ActNotify:      libseccomp.ActNotify,
}

var operators = map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
	specs.OpNotEqual:     libseccomp.CompareNotEqual,
	specs.OpLessThan:     libseccomp.CompareLess,
	specs.OpLessEqual:    libseccomp.CompareLessOrEqual,
	specs.OpEqualTo:      libseccomp.CompareEqual,
	specs.OpGreaterEqual: libseccomp.CompareGreaterEqual,
	specs.OpGreaterThan:  libseccomp.CompareGreater,
	specs.OpMaskedEqual:  libseccomp.CompareMaskedEqual,
}

// LibraryVersion is libseccomp's version, "major.minor.micro".
func LibraryVersion() string {
	a, b, c := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("%d.%d.%d", a, b, c)
}

// Flags the kernel and libseccomp may support, as named by the spec.
const (
	flagLog             = "SECCOMP_FILTER_FLAG_LOG"
	flagSpecAllow       = "SECCOMP_FILTER_FLAG_SPEC_ALLOW"
	flagWaitKillable    = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
	flagTsync           = "SECCOMP_FILTER_FLAG_TSYNC"
	defaultErrno        = uint(unix.EPERM)
	archPrefix          = "SCMP_ARCH_"
	maxSeccompArguments = 6
)

// Actions, Operators, Archs and Flags list what Validate accepts, for the
// runtime's `features` output.
func Actions() []string   { return keys(actions) }
func Operators() []string { return keys(operators) }
func Flags() []string     { return []string{flagLog, flagSpecAllow, flagWaitKillable, flagTsync} }
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

func action(a specs.LinuxSeccompAction, errnoRet *uint, def uint) (libseccomp.ScmpAction, error) {
	act, ok := actions[a]
	if !ok {
		return 0, fmt.Errorf("unknown action %q: %w", a, errdefs.ErrInvalid)
	}
	switch act {
	case libseccomp.ActErrno, libseccomp.ActTrace:
		ret := def
		if errnoRet != nil {
			ret = *errnoRet
		}
		act = act.SetReturnCode(int16(ret))
	}
	return act, nil
}

// Validate checks s without building a filter, naming the field at fault.
func Validate(s *specs.LinuxSeccomp) error {
	if s == nil {
		return nil
	}
	if _, err := action(s.DefaultAction, nil, defaultErrno); err != nil {
		return fmt.Errorf("linux.seccomp.defaultAction: %w", err)
	}
	for _, a := range s.Architectures {
		if _, err := arch(a); err != nil {
			return fmt.Errorf("linux.seccomp.architectures: %w", err)
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
		if len(sc.Args) > maxSeccompArguments {
			return fmt.Errorf("linux.seccomp.syscalls[%d]: more than 6 argument conditions: %w", i, errdefs.ErrInvalid)
		}
		for _, a := range sc.Args {
			if _, ok := operators[a.Op]; !ok {
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

func arch(a specs.Arch) (libseccomp.ScmpArch, error) {
	name := strings.ToLower(strings.TrimPrefix(string(a), archPrefix))
	switch name {
	case "x86_64":
		name = "amd64"
	case "aarch64":
		name = "arm64"
	}
	ar, err := libseccomp.GetArchFromString(name)
	if err != nil {
		return 0, fmt.Errorf("unknown architecture %q: %w", a, errdefs.ErrInvalid)
	}
	return ar, nil
}

// Program is a compiled filter, ready to load without allocating: the
// container init compiles early and loads as late as it can, after limits
// such as RLIMIT_AS that would starve libseccomp are in force.
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
	f, err := libseccomp.NewFilter(def)
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp: %w", err)
	}
	defer f.Release()
	for _, a := range s.Architectures {
		ar, err := arch(a)
		if err != nil {
			return nil, fmt.Errorf("linux.seccomp.architectures: %w", err)
		}
		if err := f.AddArch(ar); err != nil {
			return nil, fmt.Errorf("linux.seccomp.architectures %s: %w", a, err)
		}
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
	for i, sc := range s.Syscalls {
		act, err := action(sc.Action, sc.ErrnoRet, defaultErrno)
		if err != nil {
			return nil, fmt.Errorf("linux.seccomp.syscalls[%d].action: %w", i, err)
		}
		if act == def {
			continue // libseccomp refuses rules that repeat the default
		}
		for _, name := range sc.Names {
			call, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				continue // a syscall this architecture or libseccomp lacks
			}
			if err := addRule(f, call, act, sc.Args); err != nil {
				return nil, fmt.Errorf("linux.seccomp.syscalls[%d] %s: %w", i, name, err)
			}
		}
	}
	if p.BPF, err = export(f); err != nil {
		return nil, fmt.Errorf("linux.seccomp: export filter: %w", err)
	}
	return p, nil
}

// export renders the filter as BPF through a memfd (the in-memory export
// needs a newer libseccomp than Debian's).
func export(f *libseccomp.ScmpFilter) ([]byte, error) {
	fd, err := unix.MemfdCreate("seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	file := os.NewFile(uintptr(fd), "seccomp-bpf")
	defer file.Close()
	if err := f.ExportBPF(file); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return nil, err
	}
	if len(raw)%sockFilterSize != 0 || len(raw) == 0 {
		return nil, fmt.Errorf("BPF program of %d bytes", len(raw))
	}
	return raw, nil
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

// addRule adds one syscall's rule. Conditions on distinct arguments are
// ANDed in one rule; several conditions on the same argument become one
// rule each (ORed), as runc does, since libseccomp cannot AND them.
func addRule(f *libseccomp.ScmpFilter, call libseccomp.ScmpSyscall, act libseccomp.ScmpAction, args []specs.LinuxSeccompArg) error {
	if len(args) == 0 {
		return f.AddRule(call, act)
	}
	conds := make([]libseccomp.ScmpCondition, 0, len(args))
	seen := map[uint]bool{}
	repeated := false
	for _, a := range args {
		vals := []uint64{a.Value}
		if a.Op == specs.OpMaskedEqual {
			vals = []uint64{a.Value, a.ValueTwo}
		}
		c, err := libseccomp.MakeCondition(a.Index, operators[a.Op], vals...)
		if err != nil {
			return err
		}
		if seen[a.Index] {
			repeated = true
		}
		seen[a.Index] = true
		conds = append(conds, c)
	}
	if !repeated {
		return f.AddRuleConditional(call, act, conds)
	}
	for _, c := range conds {
		if err := f.AddRuleConditional(call, act, []libseccomp.ScmpCondition{c}); err != nil {
			return err
		}
	}
	return nil
}
