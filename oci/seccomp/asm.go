package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
const (
	opLdAbsW = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	opAndK   = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	opJa     = unix.BPF_JMP | unix.BPF_JA
	opJeqK   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	opJgtK   = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	opJgeK   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	opJsetK  = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	opRetK   = unix.BPF_RET | unix.BPF_K
)

// label names an instruction before it is placed; next is "the instruction after".
type label int

const next label = -1

type insn struct {
	op     uint16
	k      uint32
	jt, jf label // conditional jumps
	ja     label // BPF_JA
}

// asm builds a program whose forward jumps name labels. cBPF conditional jumps reach
// at most 255 instructions; assemble gives a jump that reaches further a trampoline
// (an unconditional BPF_JA, whose offset has 32 bits) right behind it.
type asm struct {
	insns  []insn
	labels []int // label -> index into insns
}

func (a *asm) newLabel() label {
	a.labels = append(a.labels, -1)
	return label(len(a.labels) - 1)
}

// mark places l at the next instruction emitted.
func (a *asm) mark(l label) { a.labels[l] = len(a.insns) }

func (a *asm) emit(i insn) { a.insns = append(a.insns, i) }

func (a *asm) ld(off uint32) { a.emit(insn{op: opLdAbsW, k: off, jt: next, jf: next, ja: next}) }
func (a *asm) and(k uint32)  { a.emit(insn{op: opAndK, k: k, jt: next, jf: next, ja: next}) }
func (a *asm) ret(k uint32)  { a.emit(insn{op: opRetK, k: k, jt: next, jf: next, ja: next}) }
func (a *asm) jmp(l label)   { a.emit(insn{op: opJa, jt: next, jf: next, ja: l}) }
func (a *asm) jump(op uint16, k uint32, jt, jf label) {
	a.emit(insn{op: op, k: k, jt: jt, jf: jf, ja: next})
}

// assemble resolves labels. far[i] records which of instruction i's targets need a
// trampoline; adding one moves later code, so it repeats until nothing changes (each
// round only adds trampolines, so it ends).
func (a *asm) assemble() ([]unix.SockFilter, error) {
	type farness struct{ t, f bool }
	far := make([]farness, len(a.insns))
	pos := make([]int, len(a.insns)+1)
	for {
		p := 0
		for i := range a.insns {
			pos[i] = p
			p++
			if far[i].t {
				p++
			}
			if far[i].f {
				p++
			}
		}
		pos[len(a.insns)] = p
		changed := false
		for i, in := range a.insns {
			if !isCond(in.op) {
				continue
			}
			end := pos[i] + 1 // first slot after the jump itself
			if !far[i].t && a.target(in.jt, i, pos)-end > 255 {
				far[i].t, changed = true, true
			}
			if !far[i].f && a.target(in.jf, i, pos)-end > 255 {
				far[i].f, changed = true, true
			}
		}
		if !changed {
			break
		}
	}
	if n := pos[len(a.insns)]; n > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("the filter needs %d instructions, more than the kernel's limit of %d: split the profile's conditions", n, unix.BPF_MAXINSNS)
	}

	out := make([]unix.SockFilter, 0, pos[len(a.insns)])
	for i, in := range a.insns {
		switch {
		case in.op == opJa:
			t := a.target(in.ja, i, pos)
			out = append(out, unix.SockFilter{Code: opJa, K: uint32(t - pos[i] - 1)})
		case isCond(in.op):
			t, f := a.target(in.jt, i, pos), a.target(in.jf, i, pos)
			slot := pos[i] + 1 // where trampolines go
			var tr []unix.SockFilter
			var jt, jf int
			if far[i].t {
				jt = slot - pos[i] - 1
				tr = append(tr, unix.SockFilter{Code: opJa, K: uint32(t - slot - 1)})
				slot++
			} else {
				jt = t - pos[i] - 1
			}
			if far[i].f {
				jf = slot - pos[i] - 1
				tr = append(tr, unix.SockFilter{Code: opJa, K: uint32(f - slot - 1)})
			} else {
				jf = f - pos[i] - 1
			}
			out = append(out, unix.SockFilter{Code: in.op, K: in.k, Jt: uint8(jt), Jf: uint8(jf)})
			out = append(out, tr...)
		default:
			out = append(out, unix.SockFilter{Code: in.op, K: in.k})
		}
	}
	return out, nil
}

// target is the final position of l as seen from instruction i.
func (a *asm) target(l label, i int, pos []int) int {
	if l == next {
		return pos[i+1]
	}
	idx := a.labels[l]
	if idx < 0 {
		panic(fmt.Sprintf("seccomp: label %d never placed", l))
	}
	if idx <= i {
		panic(fmt.Sprintf("seccomp: backward jump from %d to %d", i, idx))
	}
	return pos[idx]
}

func isCond(op uint16) bool {
	return op&0x07 == unix.BPF_JMP && op != opJa
}
