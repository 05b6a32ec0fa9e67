package seccomp

// The reference compiler: libseccomp through libseccomp-golang, as Berth
// used it before it compiled filters itself. Tests only; it checks that
// both compilers' programs decide alike.

import (
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

var refOperators = map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
	specs.OpNotEqual:     libseccomp.CompareNotEqual,
	specs.OpLessThan:     libseccomp.CompareLess,
	specs.OpLessEqual:    libseccomp.CompareLessOrEqual,
	specs.OpEqualTo:      libseccomp.CompareEqual,
	specs.OpGreaterEqual: libseccomp.CompareGreaterEqual,
	specs.OpGreaterThan:  libseccomp.CompareGreater,
	specs.OpMaskedEqual:  libseccomp.CompareMaskedEqual,
}

func refArch(a specs.Arch) (libseccomp.ScmpArch, error) {
	name := strings.ToLower(strings.TrimPrefix(string(a), "SCMP_ARCH_"))
	switch name {
	case "x86_64":
		name = "amd64"
	case "aarch64":
		name = "arm64"
	}
	return libseccomp.GetArchFromString(name)
}

func refCompile(s *specs.LinuxSeccomp) ([]byte, error) {
	def, err := action(s.DefaultAction, s.DefaultErrnoRet, defaultErrno)
	if err != nil {
		return nil, err
	}
	f, err := libseccomp.NewFilter(refAction(def))
	if err != nil {
		return nil, err
	}
	defer f.Release()
	for _, a := range s.Architectures {
		ar, err := refArch(a)
		if err != nil {
			return nil, err
		}
		if err := f.AddArch(ar); err != nil {
			return nil, err
		}
	}
	for _, sc := range s.Syscalls {
		act, err := action(sc.Action, sc.ErrnoRet, defaultErrno)
		if err != nil {
			return nil, err
		}
		if act == def {
			continue
		}
		for _, name := range sc.Names {
			call, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				continue
			}
			if err := refAddRule(f, call, refAction(act), sc.Args); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	fd, err := unix.MemfdCreate("seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	file := os.NewFile(uintptr(fd), "seccomp-bpf")
	defer file.Close()
	if err := f.ExportBPF(file); err != nil {
		return nil, err
	}
	return os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", fd))
}

// refAction turns a seccomp return value into libseccomp's action.
func refAction(ret uint32) libseccomp.ScmpAction {
	data := int16(ret & unix.SECCOMP_RET_DATA)
	switch ret &^ unix.SECCOMP_RET_DATA {
	case unix.SECCOMP_RET_KILL_PROCESS:
		return libseccomp.ActKillProcess
	case unix.SECCOMP_RET_TRAP:
		return libseccomp.ActTrap
	case unix.SECCOMP_RET_ERRNO:
		return libseccomp.ActErrno.SetReturnCode(data)
	case unix.SECCOMP_RET_TRACE:
		return libseccomp.ActTrace.SetReturnCode(data)
	case unix.SECCOMP_RET_ALLOW:
		return libseccomp.ActAllow
	case unix.SECCOMP_RET_LOG:
		return libseccomp.ActLog
	case unix.SECCOMP_RET_USER_NOTIF:
		return libseccomp.ActNotify
	}
	return libseccomp.ActKillThread
}

func refAddRule(f *libseccomp.ScmpFilter, call libseccomp.ScmpSyscall, act libseccomp.ScmpAction, args []specs.LinuxSeccompArg) error {
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
		c, err := libseccomp.MakeCondition(a.Index, refOperators[a.Op], vals...)
		if err != nil {
			return err
		}
		repeated = repeated || seen[a.Index]
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
