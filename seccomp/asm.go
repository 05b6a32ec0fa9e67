package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// label names an instruction position; next means "the following
// instruction" (a jump offset of 0).
type label int

const next label = -1

// insn is one classic BPF instruction before layout. For a conditional
// jump jt and jf are its targets; for JA jt is the target.
type insn struct {
	code   uint16
	k      uint32
	jt, jf label
}

// asm builds a forward-only BPF program from labelled instructions and
// lays it out, inserting a trampoline wherever a conditional jump reaches
// further than its 8-bit offset allows.
type asm struct {
	prog   []insn
	labels []int // label → instruction index; -1 until bound
}

const (
	opJEQ = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	opJGT = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	opJGE = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	opJA  = unix.BPF_JMP | unix.BPF_JA
	opLD  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	opAND = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	opRET = unix.BPF_RET | unix.BPF_K

	// maxInsns is the kernel's BPF_MAXINSNS.
	maxInsns = 4096
)

func (a *asm) label() label {
	a.labels = append(a.labels, -1)
	return label(len(a.labels) - 1)
}

func (a *asm) bind(l label) { a.labels[l] = len(a.prog) }

func (a *asm) emit(code uint16, k uint32, jt, jf label) {
	a.prog = append(a.prog, insn{code: code, k: k, jt: jt, jf: jf})
}

func (a *asm) load(off uint32)                          { a.emit(opLD, off, next, next) }
func (a *asm) and(k uint32)                             { a.emit(opAND, k, next, next) }
func (a *asm) ret(k uint32)                             { a.emit(opRET, k, next, next) }
func (a *asm) branch(op uint16, k uint32, jt, jf label) { a.emit(op, k, jt, jf) }

func isCond(code uint16) bool {
	return code&0x07 == unix.BPF_JMP && code != opJA
}

// offset is the distance from the instruction at i to label l's target.
func (a *asm) offset(i int, l label) int {
	if l == next {
		return 0
	}
	t := a.labels[l]
	if t < 0 {
		panic(fmt.Sprintf("seccomp: label %d never bound", l))
	}
	if t <= i {
		panic(fmt.Sprintf("seccomp: backward jump from %d to %d", i, t))
	}
	return t - i - 1
}

// insert puts in at position at, moving every label at or after it.
func (a *asm) insert(at int, in insn) {
	a.prog = append(a.prog, insn{})
	copy(a.prog[at+1:], a.prog[at:])
	a.prog[at] = in
	for l, t := range a.labels {
		if t >= at {
			a.labels[l] = t + 1
		}
	}
}

// assemble lays the program out. A conditional branch whose target is more
// than 255 instructions away is pointed at a trampoline right after it: a
// copy of the target when that is a return, else an unconditional jump
// (whose offset has 32 bits). Insertions only lengthen jumps, so the loop
// ends once no branch is too long.
func (a *asm) assemble() ([]unix.SockFilter, error) {
	// Name every fall-through target, so that inserting a trampoline after
	// a branch does not redirect its "next".
	for i := range a.prog {
		if in := &a.prog[i]; isCond(in.code) {
			for _, br := range []*label{&in.jt, &in.jf} {
				if *br == next {
					*br = a.label()
					a.labels[*br] = i + 1
				}
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for i := 0; i < len(a.prog); i++ {
			if !isCond(a.prog[i].code) {
				continue
			}
			for _, jf := range []bool{false, true} {
				target := a.prog[i].jt
				if jf {
					target = a.prog[i].jf
				}
				if a.offset(i, target) <= 255 {
					continue
				}
				tramp := insn{code: opJA, jt: target, jf: next}
				if t := a.prog[a.labels[target]]; t.code == opRET {
					tramp = t
				}
				a.insert(i+1, tramp)
				near := a.label()
				a.labels[near] = i + 1
				if jf {
					a.prog[i].jf = near
				} else {
					a.prog[i].jt = near
				}
				changed = true
			}
		}
	}
	if len(a.prog) > maxInsns {
		return nil, fmt.Errorf("filter of %d instructions exceeds the kernel's %d", len(a.prog), maxInsns)
	}
	out := make([]unix.SockFilter, len(a.prog))
	for i, in := range a.prog {
		f := unix.SockFilter{Code: in.code, K: in.k}
		switch {
		case in.code == opJA:
			f.K = uint32(a.offset(i, in.jt))
		case isCond(in.code):
			f.Jt, f.Jf = uint8(a.offset(i, in.jt)), uint8(a.offset(i, in.jf))
		}
		out[i] = f
	}
	return out, nil
}
