package seccomp

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"testing"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// run interprets a classic BPF program on one seccomp_data, as the kernel
// would, failing on anything a seccomp filter may not do.
func run(t *testing.T, prog []byte, data []byte) uint32 {
	t.Helper()
	n := len(prog) / sockFilterSize
	var a uint32
	for pc := 0; pc < n; {
		in := (*unix.SockFilter)(unsafe.Pointer(&prog[pc*sockFilterSize]))
		pc++
		switch in.Code {
		case opLD:
			a = binary.LittleEndian.Uint32(data[in.K:])
		case opAND:
			a &= in.K
		case unix.BPF_ALU | unix.BPF_OR | unix.BPF_K:
			a |= in.K
		case opJA:
			pc += int(in.K)
		case opJEQ, opJGT, opJGE, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			var taken bool
			switch in.Code {
			case opJEQ:
				taken = a == in.K
			case opJGT:
				taken = a > in.K
			case opJGE:
				taken = a >= in.K
			default:
				taken = a&in.K != 0
			}
			if taken {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case opRET:
			return in.K
		default:
			t.Fatalf("instruction %d: unknown opcode %#x", pc-1, in.Code)
		}
	}
	t.Fatal("program ran off its end")
	return 0
}

// seccompData lays out struct seccomp_data.
func seccompData(arch, nr uint32, args [6]uint64) []byte {
	b := make([]byte, 64)
	binary.LittleEndian.PutUint32(b[0:], nr)
	binary.LittleEndian.PutUint32(b[4:], arch)
	for i, v := range args {
		binary.LittleEndian.PutUint64(b[16+8*i:], v)
	}
	return b
}

const auditArchAarch64 = 0xc00000b7

// TestSyscallTable checks the generated numbers against libseccomp's.
func TestSyscallTable(t *testing.T) {
	arches := []struct {
		name string
		abi  abi
	}{{"amd64", abiX86_64}, {"x86", abiI386}, {"x32", abiX32}}
	checked := 0
	for _, n := range syscalls {
		for _, a := range arches {
			ar, err := libseccomp.GetArchFromString(a.name)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := libseccomp.GetSyscallFromNameByArch(n.name, ar)
			if err != nil || ref < 0 {
				continue // newer than Debian's libseccomp, or a pseudo-syscall
			}
			checked++
			if got := n.nr(a.abi); got != int32(ref) {
				t.Errorf("%s on %s: %d, libseccomp says %d", n.name, a.name, got, ref)
			}
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d numbers checked", checked)
	}
}

// knownNames are the syscalls libseccomp knows on every x86 ABI where
// Berth's table has them, so that both compilers see the same rules.
func knownNames(t *testing.T) []string {
	var out []string
	for _, n := range syscalls {
		ok := true
		for _, a := range []struct {
			name string
			abi  abi
		}{{"amd64", abiX86_64}, {"x86", abiI386}, {"x32", abiX32}} {
			ar, _ := libseccomp.GetArchFromString(a.name)
			ref, err := libseccomp.GetSyscallFromNameByArch(n.name, ar)
			if nr := n.nr(a.abi); nr >= 0 && (err != nil || int32(ref) != nr) {
				ok = false
			}
		}
		if ok {
			out = append(out, n.name)
		}
	}
	if len(out) < 300 {
		t.Fatalf("only %d syscalls known to both", len(out))
	}
	return out
}

// probes are the seccomp_data inputs on which two programs must agree:
// every architecture, syscall numbers around each number the profile names
// and at the edges, and argument values around each compared value.
func probes(rng *rand.Rand, s *specs.LinuxSeccomp) [][]byte {
	nrs := []uint32{0, 1, 460, 1000, x32Bit - 1, x32Bit, x32Bit + 1, x32Bit + 600, noSyscall, noSyscall - 1, socketcallNr, ipcNr}
	vals := []uint64{0, 1, 0xffffffff, 1 << 32, 0xffffffffffffffff}
	for _, sc := range s.Syscalls {
		for _, name := range sc.Names {
			n, _ := lookup(name)
			for _, nr := range []int32{n.x86_64, n.i386, n.x32} {
				if nr >= 0 {
					nrs = append(nrs, uint32(nr)-1, uint32(nr), uint32(nr)+1)
				}
			}
			if sel, ok := socketcalls[name]; ok {
				vals = append(vals, uint64(sel))
			}
			if sel, ok := ipcCalls[name]; ok {
				vals = append(vals, uint64(sel))
			}
		}
		for _, a := range sc.Args {
			for _, v := range []uint64{a.Value, a.ValueTwo} {
				vals = append(vals, v-1, v, v+1, v^(1<<32), v&0xffffffff, v|0xffffffff00000000)
			}
		}
	}
	var out [][]byte
	arches := []uint32{unix.AUDIT_ARCH_X86_64, unix.AUDIT_ARCH_I386}
	// libseccomp also writes rules for a foreign architecture the profile
	// lists; Berth does not, since an x86 kernel never reports one. Where
	// the profile lists none, both must refuse it.
	if !slices.Contains(s.Architectures, specs.ArchAARCH64) {
		arches = append(arches, auditArchAarch64)
	}
	for _, arch := range arches {
		for _, nr := range nrs {
			// libseccomp compares only the low words of x32's arguments;
			// Berth all 64 bits (see abi.wide). They agree on 32-bit values.
			x32 := arch == unix.AUDIT_ARCH_X86_64 && nr&x32Bit != 0 && nr != noSyscall
			for range 12 {
				var args [6]uint64
				for i := range args {
					args[i] = vals[rng.IntN(len(vals))]
					if x32 {
						args[i] &= 0xffffffff
					}
				}
				out = append(out, seccompData(arch, nr, args))
			}
		}
	}
	return out
}

// compare checks that Berth's program decides as want does on every probe.
func compare(t *testing.T, rng *rand.Rand, s *specs.LinuxSeccomp, want func([]byte) uint32) {
	t.Helper()
	p, err := Compile(s)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	bad := 0
	for _, d := range probes(rng, s) {
		got, want := run(t, p.BPF, d), want(d)
		if got != want {
			bad++
			if bad <= 3 {
				t.Errorf("arch %#x nr %d args %x: %#x, want %#x", binary.LittleEndian.Uint32(d[4:]),
					binary.LittleEndian.Uint32(d), d[16:], got, want)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d probes differ; profile: %+v", bad, s.Syscalls)
	}
}

// libseccompSays compiles s with libseccomp, for compare.
func libseccompSays(t *testing.T, s *specs.LinuxSeccomp) func([]byte) uint32 {
	t.Helper()
	ref, err := refCompile(s)
	if err != nil {
		t.Fatalf("libseccomp: %v", err)
	}
	return newerGetENOSYS(s, func(d []byte) uint32 { return run(t, ref, d) })
}

// newerGetENOSYS is f with runc's rule on top (libseccomp's own filter
// lacks it; runc patches it in): a syscall numbered above every syscall
// the profile names returns ENOSYS unless the default allows or logs.
func newerGetENOSYS(s *specs.LinuxSeccomp, f func([]byte) uint32) func([]byte) uint32 {
	def, _ := action(s.DefaultAction, s.DefaultErrnoRet, defaultErrno)
	above := newerThan(s, def)
	return func(d []byte) uint32 {
		arch, nr := binary.LittleEndian.Uint32(d[4:]), binary.LittleEndian.Uint32(d)
		switch {
		case arch == unix.AUDIT_ARCH_X86_64:
			if max, ok := above[abiX86_64]; ok && nr < x32Bit && nr > max {
				return enosysRet
			}
		case arch == unix.AUDIT_ARCH_I386 && slices.Contains(s.Architectures, specs.ArchX86):
			if max, ok := above[abiI386]; ok && nr != noSyscall && nr > max {
				return enosysRet
			}
		}
		return f(d)
	}
}

// specSays decides a probe straight from the profile, as compileBPF
// documents it: the architecture, then the first of the syscall's rules
// that matches, in the profile's order, else the default.
func specSays(s *specs.LinuxSeccomp) func([]byte) uint32 {
	return newerGetENOSYS(s, func(d []byte) uint32 {
		def, _ := action(s.DefaultAction, s.DefaultErrnoRet, defaultErrno)
		arch, nr := binary.LittleEndian.Uint32(d[4:]), binary.LittleEndian.Uint32(d)
		var args [6]uint64
		for i := range args {
			args[i] = binary.LittleEndian.Uint64(d[16+8*i:])
		}
		var a abi
		switch {
		case arch == unix.AUDIT_ARCH_X86_64 && nr&x32Bit != 0 && nr != noSyscall:
			if !slices.Contains(s.Architectures, specs.ArchX32) {
				return unix.SECCOMP_RET_KILL_THREAD
			}
			a = abiX32
		case arch == unix.AUDIT_ARCH_X86_64:
			a = abiX86_64
		case arch == unix.AUDIT_ARCH_I386 && slices.Contains(s.Architectures, specs.ArchX86):
			a = abiI386
		default:
			return unix.SECCOMP_RET_KILL_THREAD
		}
		holds := func(c specs.LinuxSeccompArg) bool {
			x, v, v2 := args[c.Index], c.Value, c.ValueTwo
			if !a.wide() {
				x, v, v2 = x&0xffffffff, v&0xffffffff, v2&0xffffffff
			}
			switch c.Op {
			case specs.OpEqualTo:
				return x == v
			case specs.OpNotEqual:
				return x != v
			case specs.OpGreaterThan:
				return x > v
			case specs.OpGreaterEqual:
				return x >= v
			case specs.OpLessThan:
				return x < v
			case specs.OpLessEqual:
				return x <= v
			}
			return x&v == v2&v
		}
		for _, sc := range s.Syscalls {
			ret, _ := action(sc.Action, sc.ErrnoRet, defaultErrno)
			if ret == def {
				continue
			}
			for _, name := range sc.Names {
				n, _ := lookup(name)
				sel, multiplexed := socketcalls[name]
				if !multiplexed {
					sel, multiplexed = ipcCalls[name]
				}
				switch {
				case n.nr(a) >= 0 && uint32(n.nr(a)) == nr:
				case a == abiI386 && multiplexed && len(sc.Args) == 0 && args[0]&0xffffffff == uint64(sel) &&
					(nr == socketcallNr && socketcalls[name] == sel || nr == ipcNr && ipcCalls[name] == sel):
					return ret
				default:
					continue
				}
				if len(sc.Args) == 0 {
					return ret
				}
				indexes := map[uint]bool{}
				for _, c := range sc.Args {
					indexes[c.Index] = true
				}
				match := len(indexes) == len(sc.Args) // AND; repeated indexes OR
				for _, c := range sc.Args {
					if len(indexes) == len(sc.Args) {
						match = match && holds(c)
					} else {
						match = match || holds(c)
					}
				}
				if match {
					return ret
				}
			}
		}
		return def
	})
}

func TestDefaultProfileMatchesLibseccomp(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	known := knownNames(t)
	for _, caps := range [][]string{nil, {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_TIME", "CAP_SYS_MODULE"}} {
		s := DefaultProfile(caps)
		// Only names libseccomp knows: it cannot place the others.
		for i := range s.Syscalls {
			s.Syscalls[i].Names = slices.DeleteFunc(slices.Clone(s.Syscalls[i].Names), func(n string) bool {
				return !slices.Contains(known, n)
			})
		}
		compare(t, rng, s, libseccompSays(t, s))
		compare(t, rng, s, specSays(s))
	}
}

// randomProfile makes a profile with random default and rule actions,
// architectures, syscalls and argument conditions of every operator. With
// simple, each syscall is named once and an entry's conditions are on
// distinct arguments: libseccomp
// 2.5 mis-decides several range conditions on one syscall (OR of GT and LT
// rules, for one), so it is the reference only for such profiles.
func randomProfile(rng *rand.Rand, names []string, simple bool) *specs.LinuxSeccomp {
	acts := []specs.LinuxSeccompAction{specs.ActAllow, specs.ActErrno, specs.ActKillProcess, specs.ActKillThread,
		specs.ActTrap, specs.ActTrace, specs.ActLog}
	errnos := map[specs.LinuxSeccompAction]*uint{}
	for _, a := range []specs.LinuxSeccompAction{specs.ActErrno, specs.ActTrace} {
		e := uint(rng.IntN(4000))
		errnos[a] = &e
	}
	errno := uint(rng.IntN(200))
	s := &specs.LinuxSeccomp{DefaultAction: acts[rng.IntN(len(acts))], DefaultErrnoRet: &errno}
	for _, a := range []specs.Arch{specs.ArchX86, specs.ArchX32, specs.ArchAARCH64} {
		if rng.IntN(2) == 0 {
			s.Architectures = append(s.Architectures, a)
		}
	}
	// x32 compares differently above 32 bits (see probes).
	narrow := slices.Contains(s.Architectures, specs.ArchX32)
	actOf := map[string]specs.LinuxSeccompAction{}
	for range 1 + rng.IntN(25) {
		sc := specs.LinuxSyscall{Action: acts[rng.IntN(len(acts))]}
		sc.ErrnoRet = errnos[sc.Action]
		for range 1 + rng.IntN(20) {
			name := names[rng.IntN(len(names))]
			if _, ok := actOf[name]; ok && simple {
				continue
			}
			actOf[name] = sc.Action
			sc.Names = append(sc.Names, name)
		}
		if rng.IntN(3) > 0 {
			// libseccomp's rule database grows steeply with conditions
			// per syscall: keep conditional entries small.
			sc.Names = sc.Names[:min(len(sc.Names), 3)]
			used := map[uint]bool{}
			for range 1 + rng.IntN(3) {
				a := randomArg(rng, narrow)
				if simple && used[a.Index] {
					continue
				}
				used[a.Index] = true
				sc.Args = append(sc.Args, a)
			}
		}
		if len(sc.Names) > 0 {
			s.Syscalls = append(s.Syscalls, sc)
		}
	}
	return s
}

// Conditions on i386's multiplexed socket and IPC calls are left out of
// the libseccomp comparison: there the two differ by design (see
// compileBPF).
func TestRandomProfilesMatchLibseccomp(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	known := slices.DeleteFunc(knownNames(t), func(n string) bool {
		_, s := socketcalls[n]
		_, i := ipcCalls[n]
		return s || i || n == "socketcall" || n == "ipc"
	})
	for round := range 150 {
		s := randomProfile(rng, known, true)
		t.Run(fmt.Sprint(round), func(t *testing.T) { compare(t, rng, s, libseccompSays(t, s)) })
	}
}

func TestRandomProfilesMatchSpec(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 13))
	var names []string
	for _, n := range syscalls {
		names = append(names, n.name)
	}
	for round := range 200 {
		s := randomProfile(rng, names, false)
		t.Run(fmt.Sprint(round), func(t *testing.T) { compare(t, rng, s, specSays(s)) })
	}
}

func randomArg(rng *rand.Rand, narrow bool) specs.LinuxSeccompArg {
	values := []uint64{0, 1, 2, 8, 0x7fffffff, 0xffffffff, 1 << 32, 0x100000005, 0xffffffffffffffff, rng.Uint64()}
	a := specs.LinuxSeccompArg{
		Index:    uint(rng.IntN(maxSeccompArguments)),
		Value:    values[rng.IntN(len(values))],
		ValueTwo: values[rng.IntN(len(values))],
		Op:       operators[rng.IntN(len(operators))],
	}
	if narrow {
		a.Value &= 0xffffffff
		a.ValueTwo &= 0xffffffff
	}
	return a
}

// TestLongJumps builds a profile whose branches must reach past 255
// instructions, and checks the laid-out program still decides as
// libseccomp's does.
func TestLongJumps(t *testing.T) {
	known := knownNames(t)
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86, specs.ArchX32}}
	for i, name := range known {
		if i%4 != 0 {
			continue
		}
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: uint(i % 6), Value: uint64(i) << 20, Op: specs.OpLessThan}}})
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.BPF) / sockFilterSize; n < 512 {
		t.Fatalf("program of %d instructions: too short to need long jumps", n)
	}
	compare(t, rand.New(rand.NewPCG(3, 4)), s, libseccompSays(t, s))
	compare(t, rand.New(rand.NewPCG(3, 4)), s, specSays(s))
}

// x32 passes 64-bit registers, and the kernel's syscalls read all of them,
// so Berth compares x32 arguments whole (libseccomp only their low words).
func TestX32ComparesWholeArguments(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"personality"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}}}}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := lookup("personality")
	for _, c := range []struct {
		arg  uint64
		want uint32
	}{{8, unix.SECCOMP_RET_ALLOW}, {1<<32 | 8, unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)}} {
		if got := run(t, p.BPF, seccompData(unix.AUDIT_ARCH_X86_64, uint32(n.x32), [6]uint64{c.arg})); got != c.want {
			t.Errorf("x32 personality(%#x): %#x, want %#x", c.arg, got, c.want)
		}
	}
}

// TestKernelLoadsPrograms has the kernel check compiled programs: a child
// (this binary again) loads each and exits through the filter.
func TestKernelLoadsPrograms(t *testing.T) {
	if os.Getenv("BERTH_SECCOMP_CHILD") != "" {
		return
	}
	rng := rand.New(rand.NewPCG(9, 9))
	var names []string
	for _, n := range syscalls {
		names = append(names, n.name)
	}
	profiles := []*specs.LinuxSeccomp{DefaultProfile(nil)}
	for range 10 {
		profiles = append(profiles, randomProfile(rng, names, false))
	}
	for i, s := range profiles {
		// The child's last syscall must get through, and so must the
		// return from a signal the Go runtime may take meanwhile.
		s.Syscalls = append([]specs.LinuxSyscall{{Names: []string{"exit_group", "rt_sigreturn"}, Action: specs.ActAllow}}, s.Syscalls...)
		p, err := Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.CreateTemp(t.TempDir(), "prog")
		if err != nil {
			t.Fatal(err)
		}
		if err := json.NewEncoder(f).Encode(p); err != nil {
			t.Fatal(err)
		}
		f.Close()
		cmd := exec.Command(os.Args[0], "-test.run=^TestLoadChild$")
		// No preemption signals while the filter is on.
		cmd.Env = append(os.Environ(), "BERTH_SECCOMP_CHILD="+f.Name(), "GODEBUG=asyncpreemptoff=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("profile %d (%d instructions): %v: %s", i, len(p.BPF)/sockFilterSize, err, out)
		}
	}
}

// TestLoadChild is the child of TestKernelLoadsPrograms.
func TestLoadChild(t *testing.T) {
	path := os.Getenv("BERTH_SECCOMP_CHILD")
	if path == "" {
		t.Skip("run by TestKernelLoadsPrograms")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p Program
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	// The filter goes on this thread alone, which exits right after: on
	// every thread (TSYNC) it also caught the Go runtime's own threads
	// (sysmon's sleeps, futexes), and a random profile that kills on one
	// of those killed the child about one run in six.
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Load(); err != nil {
		t.Fatal(err)
	}
	unix.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
}
