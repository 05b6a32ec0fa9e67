package seccomp

import (
	"fmt"
	"runtime"
	"sort"

	"github.com/berth-project/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// syscallNumbers is one row of the generated table (ztables.go).
type syscallNumbers struct {
	name              string
	x86_64, i386, x32 int32
}

// abi is a syscall calling convention the filter covers. x86_64 and x32
// share AUDIT_ARCH_X86_64; x32 numbers carry bit 30.
type abi int

const (
	abiX86_64 abi = iota
	abiI386
	abiX32
)

func (n syscallNumbers) nr(a abi) int32 {
	switch a {
	case abiI386:
		return n.i386
	case abiX32:
		return n.x32
	}
	return n.x86_64
}

// wide reports whether arguments are 64 bits: i386 passes 32-bit values
// (zero-extended into seccomp_data), so only their low word is compared.
func (a abi) wide() bool { return a != abiI386 }

func lookup(name string) (syscallNumbers, bool) {
	i := sort.Search(len(syscalls), func(i int) bool { return syscalls[i].name >= name })
	if i < len(syscalls) && syscalls[i].name == name {
		return syscalls[i], true
	}
	return syscallNumbers{}, false
}

// abis maps the spec's architecture names to what this host can run; other
// architectures' syscalls never reach an x86 kernel, so listing them
// changes nothing.
var abis = map[specs.Arch]abi{
	specs.ArchX86_64: abiX86_64,
	specs.ArchX86:    abiI386,
	specs.ArchX32:    abiX32,
}

const (
	x32Bit = 0x40000000
	// noSyscall is the number seccomp sees for a syscall cancelled by a
	// tracer (-1); it takes the default action.
	noSyscall = 0xffffffff

	// seccomp_data offsets (little endian).
	offNr   = 0
	offArch = 4
	offArgs = 16

	// i386 multiplexes sockets and System V IPC through one syscall each,
	// selected by the first argument.
	socketcallNr = 102
	ipcNr        = 117
)

// socketcalls and ipcCalls are the multiplexed calls' selectors on i386
// (linux/net.h SYS_*, and the ipc(2) call numbers).
var socketcalls = map[string]uint32{
	"socket": 1, "bind": 2, "connect": 3, "listen": 4, "accept": 5, "getsockname": 6, "getpeername": 7,
	"socketpair": 8, "send": 9, "recv": 10, "sendto": 11, "recvfrom": 12, "shutdown": 13, "setsockopt": 14,
	"getsockopt": 15, "sendmsg": 16, "recvmsg": 17, "accept4": 18, "recvmmsg": 19, "sendmmsg": 20,
}

var ipcCalls = map[string]uint32{
	"semop": 1, "semget": 2, "semctl": 3, "semtimedop": 4, "msgsnd": 11, "msgrcv": 12, "msgget": 13,
	"msgctl": 14, "shmat": 21, "shmdt": 22, "shmget": 23, "shmctl": 24,
}

// rule is one way a syscall may match: every condition holds (AND).
type rule struct {
	nr, ret uint32
	args    []specs.LinuxSeccompArg
}

// outcome is what a syscall number leads to: a plain return, or (cond) the
// conditional rules of one syscall, then ret.
type outcome struct {
	ret  uint32
	body int
	cond bool
}

// interval: numbers from start up to the next interval's start share an
// outcome.
type interval struct {
	start uint32
	out   outcome
}

type compiler struct {
	asm
	def, badArch uint32
}

// compileBPF builds the filter: check the architecture, then per
// architecture a binary search over the intervals of syscall numbers that
// share an outcome; conditional rules sit in the search's leaves. A
// syscall's rules are tried in the profile's order and the first that
// matches decides (so nothing after an unconditional rule counts); a
// syscall no rule matches takes the default action.
func compileBPF(s *specs.LinuxSeccomp, def uint32) ([]unix.SockFilter, error) {
	if runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("seccomp filters are built for x86 only, not %s: %w", runtime.GOARCH, errdefs.ErrUnavailable)
	}
	var want [3]bool
	want[abiX86_64] = true
	for _, a := range s.Architectures {
		if x, ok := abis[a]; ok {
			want[x] = true
		}
	}
	n := 0
	for _, sc := range s.Syscalls {
		n += len(sc.Names)
	}
	// Per audit architecture (x86_64 with x32; i386), in the profile's
	// order.
	native, i386 := make([]rule, 0, 2*n), make([]rule, 0, n)
	add := func(a abi, nr uint32, ret uint32, args []specs.LinuxSeccompArg) {
		r := rule{nr: nr, ret: ret, args: args}
		if a == abiI386 {
			i386 = append(i386, r)
		} else {
			native = append(native, r)
		}
	}
	for i, sc := range s.Syscalls {
		ret, err := action(sc.Action, sc.ErrnoRet, defaultErrno)
		if err != nil {
			return nil, fmt.Errorf("linux.seccomp.syscalls[%d].action: %w", i, err)
		}
		if ret == def {
			continue
		}
		// Conditions on distinct arguments are ANDed; several conditions
		// on the same argument are each a rule of their own (ORed), as
		// runc has always read them.
		var seen uint64
		repeated := false
		for _, a := range sc.Args {
			if a.Index >= maxSeccompArguments {
				return nil, fmt.Errorf("linux.seccomp.syscalls[%d].args: index %d out of range: %w", i, a.Index, errdefs.ErrInvalid)
			}
			repeated = repeated || seen&(1<<a.Index) != 0
			seen |= 1 << a.Index
		}
		for _, name := range sc.Names {
			num, ok := lookup(name)
			if !ok {
				continue // a syscall the x86 family lacks
			}
			for a := abiX86_64; a <= abiX32; a++ {
				nr := num.nr(a)
				if !want[a] || nr < 0 {
					continue
				}
				if !repeated {
					add(a, uint32(nr), ret, sc.Args)
					continue
				}
				for k := range sc.Args {
					add(a, uint32(nr), ret, sc.Args[k:k+1])
				}
			}
			if !want[abiI386] || len(sc.Args) > 0 {
				continue // the selector's arguments are in memory a filter cannot read
			}
			if sel, ok := socketcalls[name]; ok {
				add(abiI386, socketcallNr, ret, []specs.LinuxSeccompArg{{Index: 0, Value: uint64(sel), Op: specs.OpEqualTo}})
			}
			if sel, ok := ipcCalls[name]; ok {
				add(abiI386, ipcNr, ret, []specs.LinuxSeccompArg{{Index: 0, Value: uint64(sel), Op: specs.OpEqualTo}})
			}
		}
	}
	// By number, keeping the profile's order. (sort, not slices: one more
	// generic instantiation is ~17 KB of binary, and the runtime's binary
	// size is its memory.)
	for _, rs := range [][]rule{native, i386} {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].nr < rs[j].nr })
	}

	above := newerThan(s, def)
	// A syscall of another architecture kills the thread.
	c := &compiler{def: def, badArch: unix.SECCOMP_RET_KILL_THREAD}
	c.prog = make([]insn, 0, 2*(len(native)+len(i386))+64)
	c.load(offArch)
	l64 := c.label()
	c.branch(opJEQ, unix.AUDIT_ARCH_X86_64, l64, next)
	l32 := c.label()
	if want[abiI386] {
		c.branch(opJEQ, unix.AUDIT_ARCH_I386, l32, next)
	}
	c.ret(c.badArch)

	c.bind(l64)
	if max, ok := above[abiX86_64]; ok {
		// x32 numbers (bit 30) go on to the search.
		c.enosysAbove(max, opJGE, x32Bit)
	}
	var tail []interval
	if !want[abiX32] {
		// x32 numbers under AUDIT_ARCH_X86_64 are another ABI.
		tail = []interval{{x32Bit, outcome{ret: c.badArch}}, {noSyscall, outcome{ret: def}}}
	}
	if err := c.dispatch(native, tail, abiX86_64.wide()); err != nil {
		return nil, err
	}
	if want[abiI386] {
		c.bind(l32)
		if max, ok := above[abiI386]; ok {
			c.enosysAbove(max, opJEQ, noSyscall)
		}
		if err := c.dispatch(i386, nil, abiI386.wide()); err != nil {
			return nil, err
		}
	}
	return c.assemble()
}

// enosysRet is what a syscall newer than the profile gets.
const enosysRet = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)

// enosysAbove returns ENOSYS for a syscall numbered above max, except
// the numbers for which (op k) holds, which go on.
func (c *compiler) enosysAbove(max uint32, op uint16, k uint32) {
	skip := c.label()
	c.load(offNr)
	c.branch(op, k, skip, next)
	c.branch(opJGT, max, next, skip)
	c.ret(enosysRet)
	c.bind(skip)
}

// newerThan gives, per architecture (x86_64 and i386; x32 is left to the
// default), the highest syscall number the profile names: a syscall above
// it is newer than the profile, and returns ENOSYS instead of the default
// errno, as runc's filters do — a program then falls back to an older
// call (glibc's clone3 → clone) instead of failing on EPERM. Not when the
// default allows or logs, or is ENOSYS already.
func newerThan(s *specs.LinuxSeccomp, def uint32) map[abi]uint32 {
	if def == unix.SECCOMP_RET_ALLOW || def == unix.SECCOMP_RET_LOG || def == enosysRet {
		return nil
	}
	out := map[abi]uint32{}
	for _, sc := range s.Syscalls {
		for _, name := range sc.Names {
			num, ok := lookup(name)
			if !ok {
				continue
			}
			for _, a := range []abi{abiX86_64, abiI386} {
				if nr := num.nr(a); nr >= 0 && (out[a] < uint32(nr)) {
					out[a] = uint32(nr)
				}
			}
		}
	}
	return out
}

// dispatch emits the search over one architecture's rules, sorted by
// number (the accumulator holds the number), followed by tail's intervals
// above every syscall.
func (c *compiler) dispatch(rules []rule, tail []interval, wide bool) error {
	var bodies [][]rule
	ivs := []interval{{0, outcome{ret: c.def}}}
	push := func(start uint32, o outcome) {
		last := &ivs[len(ivs)-1]
		switch {
		case last.out == o:
		case last.start == start:
			last.out = o
			if n := len(ivs); n > 1 && ivs[n-2].out == o {
				ivs = ivs[:n-1]
			}
		default:
			ivs = append(ivs, interval{start, o})
		}
	}
	for i := 0; i < len(rules); {
		nr := rules[i].nr
		j := i
		for j < len(rules) && rules[j].nr == nr {
			j++
		}
		same := rules[i:j]
		o := outcome{ret: c.def}
		cond := false
		for _, r := range same {
			if len(r.args) == 0 {
				o.ret = r.ret
				break
			}
			cond = true
		}
		if cond {
			o.body, o.cond = len(bodies), true
			bodies = append(bodies, same)
		}
		push(nr, o)
		if nr != noSyscall && (j == len(rules) || rules[j].nr != nr+1) {
			push(nr+1, outcome{ret: c.def})
		}
		i = j
	}
	for _, t := range tail {
		push(t.start, t.out)
	}
	c.load(offNr)
	return c.search(ivs, bodies, wide)
}

// search emits a binary search over ivs: one JGE per split, each leaf its
// outcome inline.
func (c *compiler) search(ivs []interval, bodies [][]rule, wide bool) error {
	if len(ivs) == 1 {
		o := ivs[0].out
		if !o.cond {
			c.ret(o.ret)
			return nil
		}
		for _, r := range bodies[o.body] {
			if len(r.args) == 0 {
				break // the fallback: o.ret
			}
			fail := c.label()
			for _, a := range r.args {
				if err := c.condition(a, wide, fail); err != nil {
					return err
				}
			}
			c.ret(r.ret)
			c.bind(fail)
		}
		c.ret(o.ret)
		return nil
	}
	mid := len(ivs) / 2
	right := c.label()
	c.branch(opJGE, ivs[mid].start, right, next)
	if err := c.search(ivs[:mid], bodies, wide); err != nil {
		return err
	}
	c.bind(right)
	return c.search(ivs[mid:], bodies, wide)
}

// condition emits one argument comparison: it falls through when the
// condition holds and jumps to fail when not. A 64-bit comparison decides
// on the high words and looks at the low words only when those are equal.
func (c *compiler) condition(a specs.LinuxSeccompArg, wide bool, fail label) error {
	lo := uint32(offArgs + 8*a.Index)
	hi := lo + 4
	v, v2 := a.Value, a.ValueTwo
	ok := c.label()
	switch a.Op {
	case specs.OpEqualTo:
		if wide {
			c.load(hi)
			c.branch(opJEQ, uint32(v>>32), next, fail)
		}
		c.load(lo)
		c.branch(opJEQ, uint32(v), next, fail)
	case specs.OpNotEqual:
		if wide {
			c.load(hi)
			c.branch(opJEQ, uint32(v>>32), next, ok)
		}
		c.load(lo)
		c.branch(opJEQ, uint32(v), fail, next)
	case specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpLessThan, specs.OpLessEqual:
		// LT is "not GE" and LE "not GT": the same test, outcomes swapped.
		op := uint16(opJGT)
		if a.Op == specs.OpGreaterEqual || a.Op == specs.OpLessThan {
			op = opJGE
		}
		above, below, taken, notTaken := ok, fail, next, fail
		if a.Op == specs.OpLessThan || a.Op == specs.OpLessEqual {
			above, below, taken, notTaken = fail, ok, fail, next
		}
		if wide {
			c.load(hi)
			c.branch(opJGT, uint32(v>>32), above, next)
			c.branch(opJEQ, uint32(v>>32), next, below)
		}
		c.load(lo)
		c.branch(op, uint32(v), taken, notTaken)
	case specs.OpMaskedEqual:
		// value is the mask, valueTwo the datum; datum bits outside the
		// mask are ignored, as libseccomp does.
		v2 &= v
		if wide {
			c.load(hi)
			c.and(uint32(v >> 32))
			c.branch(opJEQ, uint32(v2>>32), next, fail)
		}
		c.load(lo)
		c.and(uint32(v))
		c.branch(opJEQ, uint32(v2), next, fail)
	default:
		return fmt.Errorf("unknown operator %q: %w", a.Op, errdefs.ErrInvalid)
	}
	c.bind(ok)
	return nil
}
