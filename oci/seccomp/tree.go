package seccomp

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// seccomp_data offsets (include/uapi/linux/seccomp.h): int nr; __u32 arch;
// __u64 instruction_pointer; __u64 args[6].
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// segment is an outcome over the syscall numbers [start, next segment's start).
type segment struct {
	start    uint64
	ret      uint32
	block    label // the conditional block for a single number, when hasBlock
	hasBlock bool
}

func (s segment) sameOutcome(o segment) bool {
	return !s.hasBlock && !o.hasBlock && s.ret == o.ret
}

// setSegment gives the single number s.start the outcome s, splitting the segment
// that holds it. hi is the end of the number line.
func setSegment(segs []segment, s segment, hi uint64) []segment {
	i, found := slices.BinarySearchFunc(segs, s.start, func(x segment, k uint64) int { return cmpU64(x.start, k) })
	if !found {
		i-- // the segment that holds s.start
	}
	old := segs[i]
	end := hi
	if i+1 < len(segs) {
		end = segs[i+1].start
	}
	var repl []segment
	if old.start < s.start {
		repl = append(repl, old)
	}
	repl = append(repl, s)
	if s.start+1 < end {
		rest := old
		rest.start = s.start + 1
		repl = append(repl, rest)
	}
	return slices.Replace(segs, i, i+1, repl...)
}

// mergeSegments joins neighbours with the same plain outcome.
func mergeSegments(segs []segment) []segment {
	out := segs[:0]
	for _, s := range segs {
		if n := len(out); n > 0 && out[n-1].sameOutcome(s) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// tree emits a binary search over segs on the syscall number in A: about log2(n)
// comparisons per call whatever the profile's size, where a list of jeq would cost
// one per rule.
func tree(a *asm, segs []segment) {
	if len(segs) == 1 {
		if segs[0].hasBlock {
			a.jmp(segs[0].block)
		} else {
			a.ret(segs[0].ret)
		}
		return
	}
	mid := len(segs) / 2
	right := a.newLabel()
	a.jump(opJgeK, uint32(segs[mid].start), right, next)
	tree(a, segs[:mid])
	a.mark(right)
	tree(a, segs[mid:])
}

// cmpArg emits code that falls through when argument index compares as op to val
// (and val2, for SCMP_CMP_MASKED_EQ: (arg & val) == val2) and jumps to fail
// otherwise. 64-bit comparisons are done on both halves: first the high words, and
// the low words only when the high words are equal.
func cmpArg(a *asm, bigEndian, bits32 bool, index uint, op specs.LinuxSeccompOperator, val, val2 uint64, fail label) {
	base := uint32(offArgs + 8*index)
	loOff, hiOff := base, base+4
	if bigEndian {
		loOff, hiOff = base+4, base
	}
	vl, vh := uint32(val), uint32(val>>32)
	wl, wh := uint32(val2), uint32(val2>>32)
	if bits32 {
		a.ld(loOff)
		cmp32(a, op, vl, wl, next, fail)
		return
	}
	ok := a.newLabel()
	a.ld(hiOff)
	switch op {
	case specs.OpEqualTo:
		a.jump(opJeqK, vh, next, fail)
		a.ld(loOff)
		a.jump(opJeqK, vl, next, fail)
	case specs.OpNotEqual:
		a.jump(opJeqK, vh, next, ok)
		a.ld(loOff)
		a.jump(opJeqK, vl, fail, next)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		a.jump(opJgtK, vh, ok, next)
		a.jump(opJeqK, vh, next, fail)
		a.ld(loOff)
		cmp32(a, op, vl, 0, next, fail)
	case specs.OpLessThan, specs.OpLessEqual:
		a.jump(opJgtK, vh, fail, next)
		a.jump(opJeqK, vh, next, ok)
		a.ld(loOff)
		cmp32(a, op, vl, 0, next, fail)
	case specs.OpMaskedEqual:
		a.and(vh)
		a.jump(opJeqK, wh, next, fail)
		a.ld(loOff)
		a.and(vl)
		a.jump(opJeqK, wl, next, fail)
	}
	a.mark(ok) // the next instruction: another condition or the rule's return
}

// cmp32 compares A to v as op: jumps to t when it holds, f when not.
func cmp32(a *asm, op specs.LinuxSeccompOperator, v, v2 uint32, t, f label) {
	switch op {
	case specs.OpEqualTo:
		a.jump(opJeqK, v, t, f)
	case specs.OpNotEqual:
		a.jump(opJeqK, v, f, t)
	case specs.OpGreaterThan:
		a.jump(opJgtK, v, t, f)
	case specs.OpGreaterEqual:
		a.jump(opJgeK, v, t, f)
	case specs.OpLessThan:
		a.jump(opJgeK, v, f, t)
	case specs.OpLessEqual:
		a.jump(opJgtK, v, f, t)
	case specs.OpMaskedEqual:
		a.and(v)
		a.jump(opJeqK, v2, t, f)
	}
}
