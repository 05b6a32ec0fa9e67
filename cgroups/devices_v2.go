package cgroups

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"github.com/berth-project/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Device access on cgroup v2 is decided by a BPF_PROG_TYPE_CGROUP_DEVICE
// program attached to the cgroup. The kernel calls it with
// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; },
// access_type being (access << 16) | type; it returns 1 to allow, 0 to deny.
const (
	bpfDevBlock = 1 // BPF_DEVCG_DEV_BLOCK
	bpfDevChar  = 2 // BPF_DEVCG_DEV_CHAR

	bpfAccMknod = 1 // BPF_DEVCG_ACC_MKNOD
	bpfAccRead  = 2 // BPF_DEVCG_ACC_READ
	bpfAccWrite = 4 // BPF_DEVCG_ACC_WRITE
)

// bpfInsn is one eBPF instruction before jump targets are resolved:
// jump instructions name the rule block (or -1: the final deny) they skip
// to.
type bpfInsn struct {
	op       uint8
	dst, src uint8
	off      int16
	imm      int32
	target   int // for jumps: index of the rule block; -1 the deny block
	isJump   bool
}

// eBPF opcodes used here (<linux/bpf_common.h>, <linux/bpf.h>).
const (
	opLdxW      = 0x61 // BPF_LDX | BPF_MEM | BPF_W
	opMov32Reg  = 0xbc // BPF_ALU | BPF_MOV | BPF_X
	opMov32Imm  = 0xb4 // BPF_ALU | BPF_MOV | BPF_K
	opAnd32Imm  = 0x54 // BPF_ALU | BPF_AND | BPF_K
	opRsh32Imm  = 0x74 // BPF_ALU | BPF_RSH | BPF_K
	opJneImm    = 0x55 // BPF_JMP | BPF_JNE | BPF_K
	opExit      = 0x95 // BPF_JMP | BPF_EXIT
	regR0       = 0
	regR1       = 1 // the context
	regType     = 3
	regAccess   = 2
	regMajor    = 4
	regMinor    = 5
	denyBlock   = -1
	bpfInsnSize = 8
)

// DeviceProgram compiles device rules into the bytes of a cgroup device
// program with the v1 devices controller's meaning: the last rule that
// matches a request decides it, and a request no rule matches is denied.
// A rule matches when its type ("a" or empty: any), major and minor (nil
// or -1: any) fit and the requested access is within its access letters.
func DeviceProgram(rules []specs.LinuxDeviceCgroup) ([]byte, error) {
	prog := []bpfInsn{
		{op: opLdxW, dst: regAccess, src: regR1, off: 0}, // access_type
		{op: opMov32Reg, dst: regType, src: regAccess},
		{op: opAnd32Imm, dst: regType, imm: 0xffff},
		{op: opRsh32Imm, dst: regAccess, imm: 16},
		{op: opLdxW, dst: regMajor, src: regR1, off: 4},
		{op: opLdxW, dst: regMinor, src: regR1, off: 8},
	}
	start := map[int]int{} // block → index of its first instruction
	jne := func(reg uint8, v int64, next int) bpfInsn {
		return bpfInsn{op: opJneImm, dst: reg, imm: int32(v), target: next, isJump: true}
	}
	// Rules are tried from the last: the first match from the end returns.
	// A rule that matches everything ends the program: the verifier
	// refuses code it cannot reach.
	ended := false
	for i := len(rules) - 1; i >= 0 && !ended; i-- {
		r := rules[i]
		next := i - 1 // blocks are numbered by rule; -1 is the deny block
		var block []bpfInsn
		switch r.Type {
		case "", "a":
		case "b":
			block = append(block, jne(regType, bpfDevBlock, next))
		case "c":
			block = append(block, jne(regType, bpfDevChar, next))
		default:
			return nil, fmt.Errorf("linux.resources.devices: type %q must be a, b or c: %w", r.Type, errdefs.ErrInvalid)
		}
		acc := accessBits(r.Access)
		if acc != bpfAccMknod|bpfAccRead|bpfAccWrite {
			// Any requested bit outside the rule's access: no match.
			block = append(block,
				bpfInsn{op: opMov32Reg, dst: regR0, src: regAccess},
				bpfInsn{op: opAnd32Imm, dst: regR0, imm: ^acc & 7},
				jne(regR0, 0, next))
		}
		if r.Type != "" && r.Type != "a" {
			if r.Major != nil && *r.Major >= 0 {
				block = append(block, jne(regMajor, *r.Major, next))
			}
			if r.Minor != nil && *r.Minor >= 0 {
				block = append(block, jne(regMinor, *r.Minor, next))
			}
		}
		ended = len(block) == 0
		verdict := int32(0)
		if r.Allow {
			verdict = 1
		}
		start[i] = len(prog)
		prog = append(prog, block...)
		prog = append(prog, bpfInsn{op: opMov32Imm, dst: regR0, imm: verdict}, bpfInsn{op: opExit})
	}
	if !ended {
		start[denyBlock] = len(prog)
		prog = append(prog, bpfInsn{op: opMov32Imm, dst: regR0, imm: 0}, bpfInsn{op: opExit})
	}
	out := make([]byte, 0, len(prog)*bpfInsnSize)
	for pc, in := range prog {
		if in.isJump {
			in.off = int16(start[in.target] - (pc + 1))
		}
		out = append(out, in.op, in.src<<4|in.dst&0xf)
		out = binary.LittleEndian.AppendUint16(out, uint16(in.off))
		out = binary.LittleEndian.AppendUint32(out, uint32(in.imm))
	}
	return out, nil
}

func accessBits(access string) int32 {
	acc, _ := deviceAccess(access)
	var bits int32
	for _, c := range acc {
		switch c {
		case 'r':
			bits |= bpfAccRead
		case 'w':
			bits |= bpfAccWrite
		case 'm':
			bits |= bpfAccMknod
		}
	}
	return bits
}

// setDevicesV2 replaces the device program of the cgroup at dir with one
// made from rules. The new program is attached before the old ones are
// detached (several attached programs must all allow), so no moment is
// less strict than either set of rules. No rules leave dir as it is.
func setDevicesV2(dir string, rules []specs.LinuxDeviceCgroup) error {
	if len(rules) == 0 {
		return nil
	}
	insns, err := DeviceProgram(rules)
	if err != nil {
		return err
	}
	prog, err := bpfLoadDeviceProgram(insns)
	if err != nil {
		return fmt.Errorf("linux.resources.devices: load the cgroup device program: %w", err)
	}
	defer unix.Close(prog)
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("linux.resources.devices: %w", &os.PathError{Op: "open", Path: dir, Err: err})
	}
	defer unix.Close(fd)
	old, err := bpfQueryDevicePrograms(fd)
	if err != nil {
		return fmt.Errorf("linux.resources.devices: query %s: %w", dir, err)
	}
	if err := bpfAttachDevice(unix.BPF_PROG_ATTACH, fd, prog); err != nil {
		return fmt.Errorf("linux.resources.devices: attach the device program to %s: %w", dir, err)
	}
	var errs []string
	for _, id := range old {
		op, err := bpfProgByID(id)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		err = bpfAttachDevice(unix.BPF_PROG_DETACH, fd, op)
		unix.Close(op)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("linux.resources.devices: detach the previous device program of %s: %s", dir, strings.Join(errs, "; "))
	}
	return nil
}

// The bpf(2) calls, with the attribute layouts of <linux/bpf.h>.

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	r, _, e := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// bpfLoadDeviceProgram loads insns as a BPF_PROG_TYPE_CGROUP_DEVICE
// program and returns its descriptor. On failure it loads again with the
// verifier's log, and returns the log's last line with the error.
func bpfLoadDeviceProgram(insns []byte) (int, error) {
	license := []byte("Apache-2.0\x00")
	attr := struct {
		ProgType, InsnCnt  uint32
		Insns, License     uint64
		LogLevel, LogSize  uint32
		LogBuf             uint64
		KernVersion, Flags uint32
		Name               [16]byte
		Ifindex, Expected  uint32
	}{
		ProgType: unix.BPF_PROG_TYPE_CGROUP_DEVICE, InsnCnt: uint32(len(insns) / bpfInsnSize),
		Insns: uint64(uintptr(unsafe.Pointer(&insns[0]))), License: uint64(uintptr(unsafe.Pointer(&license[0]))),
	}
	copy(attr.Name[:], "berth_devices")
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err == nil {
		return fd, nil
	}
	log := make([]byte, 1<<16)
	attr.LogLevel, attr.LogSize, attr.LogBuf = 1, uint32(len(log)), uint64(uintptr(unsafe.Pointer(&log[0])))
	if fd, err2 := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err2 == nil {
		return fd, nil // loaded the second time: keep it
	}
	text, _, _ := bytes.Cut(log, []byte{0})
	lines := strings.Split(strings.TrimRight(string(text), "\n"), "\n")
	return -1, fmt.Errorf("%w: %s", err, lines[len(lines)-1])
}

// bpfAttachDevice attaches (BPF_PROG_ATTACH, with BPF_F_ALLOW_MULTI) or
// detaches (BPF_PROG_DETACH) prog on the cgroup cg.
func bpfAttachDevice(cmd, cg, prog int) error {
	attr := struct{ Target, Prog, Type, Flags, Replace uint32 }{
		Target: uint32(cg), Prog: uint32(prog), Type: unix.BPF_CGROUP_DEVICE,
	}
	if cmd == unix.BPF_PROG_ATTACH {
		attr.Flags = unix.BPF_F_ALLOW_MULTI
	}
	_, err := bpf(cmd, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}

// bpfQueryDevicePrograms lists the IDs of the device programs attached to
// the cgroup cg itself.
func bpfQueryDevicePrograms(cg int) ([]uint32, error) {
	ids := make([]uint32, 64)
	attr := struct {
		Target, Type, QueryFlags, AttachFlags uint32
		ProgIDs                               uint64
		ProgCnt, _                            uint32
	}{Target: uint32(cg), Type: unix.BPF_CGROUP_DEVICE, ProgIDs: uint64(uintptr(unsafe.Pointer(&ids[0]))), ProgCnt: uint32(len(ids))}
	if _, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err != nil {
		return nil, err
	}
	return ids[:attr.ProgCnt], nil
}

// bpfProgByID opens the program with this ID.
func bpfProgByID(id uint32) (int, error) {
	attr := struct{ ID, NextID, OpenFlags uint32 }{ID: id}
	return bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
}
