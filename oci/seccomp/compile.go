package seccomp

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/syscage/syscage/profile"
)

// ErrNotSupported marks a profile feature syscage cannot enforce (SCMP_ACT_NOTIFY
// needs a seccomp agent). errors.Is tells it from a malformed profile.
var ErrNotSupported = errors.New("not supported by syscage")

// Options are the choices Compile leaves to its caller.
type Options struct {
	// Goarch is the machine the filter is for, as a GOARCH ("" is this one). It
	// decides which architectures the kernel can report: native, 32-bit compat and
	// x32.
	Goarch string
	// RuncENOSYS makes syscall numbers above the highest one the profile names (per
	// architecture) fail with ENOSYS instead of taking the default action, as runc
	// does when the default action is neither an allow nor ENOSYS already. A program
	// then falls back from a syscall newer than the profile (clone3 to clone), as it
	// would in a runc container.
	RuncENOSYS bool
}

// Filter is a compiled profile.
type Filter struct {
	// Program is the classic-BPF program, for SECCOMP_SET_MODE_FILTER.
	Program []unix.SockFilter
	// Flags are the SECCOMP_FILTER_FLAG_* bits the profile asks for (LOG,
	// SPEC_ALLOW). TSYNC is the installer's choice: see Exec.
	Flags uint
	// Arches are the architectures the filter accepts, each with its own rules;
	// every other one gets BadArch.
	Arches []specs.Arch

	bigEndian bool // how seccomp_data's 64-bit fields are laid out
	abis      []abi
}

// BadArch is what a syscall made through an architecture the profile does not list
// gets: libseccomp's default bad-architecture action, which runc keeps.
const BadArch = unix.SECCOMP_RET_KILL_THREAD

// abi is one syscall ABI as seccomp_data shows it.
type abi struct {
	arch   specs.Arch
	audit  uint32 // seccomp_data.arch
	base   uint32 // added to the table's numbers (X32SyscallBit for x32)
	lo, hi uint64 // the seccomp_data.nr values the ABI owns, [lo, hi)
	bits32 bool   // arguments are 32 bits: libseccomp compares the low halves only
}

// machine describes what the kernel of one GOARCH reports.
type machine struct {
	abis      []abi // native first
	bigEndian bool
}

func machineFor(goarch string) (machine, error) {
	native, compat, x32, err := profile.NativeArches(goarch)
	if err != nil {
		return machine{}, err
	}
	audit := map[specs.Arch]uint32{
		specs.ArchX86_64:  unix.AUDIT_ARCH_X86_64,
		specs.ArchX32:     unix.AUDIT_ARCH_X86_64,
		specs.ArchX86:     unix.AUDIT_ARCH_I386,
		specs.ArchAARCH64: unix.AUDIT_ARCH_AARCH64,
		specs.ArchARM:     unix.AUDIT_ARCH_ARM,
		specs.ArchRISCV64: unix.AUDIT_ARCH_RISCV64,
		specs.ArchS390X:   unix.AUDIT_ARCH_S390X,
		specs.ArchPPC64LE: unix.AUDIT_ARCH_PPC64LE,
	}
	m := machine{bigEndian: goarch == "s390x"}
	nativeHi := uint64(1 << 32)
	if x32 != "" {
		nativeHi = profile.X32SyscallBit
	}
	m.abis = append(m.abis, abi{arch: native, audit: audit[native], hi: nativeHi})
	if x32 != "" {
		m.abis = append(m.abis, abi{arch: x32, audit: audit[x32], base: profile.X32SyscallBit, lo: profile.X32SyscallBit, hi: 1 << 32})
	}
	if compat != "" {
		m.abis = append(m.abis, abi{arch: compat, audit: audit[compat], hi: 1 << 32, bits32: true})
	}
	return m, nil
}

// Compile turns p into a filter for the machine opts.Goarch, with runc's and
// libseccomp's semantics where the runtime-spec leaves them open:
//
//   - Architectures: the native one always, plus those listed that this machine's
//     kernel can report (compat, x32); others are ignored, since no process here can
//     make their calls. A call through an architecture not in the filter gets BadArch
//     (SIGSYS). On x86_64, numbers with X32SyscallBit are x32 calls.
//   - A name an architecture lacks is skipped there; a name no architecture has is an
//     error.
//   - A rule whose action and errno are the default's is skipped (runc).
//   - For one syscall, a rule without conditions wins over every rule with some, and
//     the first such rule wins over later ones (libseccomp keeps the first and drops
//     later ones). Rules with conditions are tried in profile order; the first whose
//     conditions all hold decides.
//   - Conditions of one rule all must hold (AND), except that when two name the same
//     argument each becomes a rule of its own (OR), as runc does.
//   - Arguments compare as unsigned 64-bit values, both halves. On 32-bit ABIs only
//     the low 32 bits of the value and the argument count, as in libseccomp.
//   - SCMP_ACT_KILL is KILL_THREAD; SCMP_ACT_ERRNO and SCMP_ACT_TRACE without errnoRet
//     return EPERM; defaultErrnoRet applies to the default action.
//   - SCMP_ACT_NOTIFY is refused (ErrNotSupported): it needs a seccomp agent.
func Compile(p *specs.LinuxSeccomp, opts Options) (*Filter, error) {
	goarch := opts.Goarch
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	m, err := machineFor(goarch)
	if err != nil {
		return nil, err
	}
	defRet, err := retOf("defaultAction", p.DefaultAction, p.DefaultErrnoRet, "defaultErrnoRet")
	if err != nil {
		return nil, err
	}
	f := &Filter{bigEndian: m.bigEndian}
	for i, fl := range p.Flags {
		switch fl {
		case "SECCOMP_FILTER_FLAG_TSYNC":
			// Exec covers every thread CMD will have regardless: see Exec.
		case specs.LinuxSeccompFlagLog:
			f.Flags |= unix.SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			f.Flags |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case specs.LinuxSeccompFlagWaitKillableRecv:
			return nil, fmt.Errorf("flags[%d]: %s only applies to SCMP_ACT_NOTIFY, which syscage does not run: %w", i, fl, ErrNotSupported)
		default:
			return nil, fmt.Errorf("flags[%d]: unknown flag %q: use SECCOMP_FILTER_FLAG_TSYNC, SECCOMP_FILTER_FLAG_LOG or SECCOMP_FILTER_FLAG_SPEC_ALLOW", i, fl)
		}
	}
	for i, a := range p.Architectures {
		if _, err := profile.TableFor(a); err != nil && !slices.Contains(knownArchNames, a) {
			return nil, fmt.Errorf("architectures[%d]: unknown architecture %q", i, a)
		}
	}

	// The rules, validated once, independent of the architecture.
	type rule struct {
		names []string
		path  string
		ret   uint32
		conds [][]cond // alternatives (OR) of conjunctions (AND); nil: unconditional
	}
	var rules []rule
	for i, sc := range p.Syscalls {
		path := fmt.Sprintf("syscalls[%d]", i)
		ret, err := retOf(path+".action", sc.Action, sc.ErrnoRet, path+".errnoRet")
		if err != nil {
			return nil, err
		}
		if len(sc.Names) == 0 {
			return nil, fmt.Errorf("%s.names: no syscalls: list at least one or remove the rule", path)
		}
		for j, name := range sc.Names {
			if len(profile.KnownName(name)) == 0 {
				return nil, fmt.Errorf("%s.names[%d]: unknown syscall %q: no architecture has it (check the spelling)", path, j, name)
			}
		}
		r := rule{names: sc.Names, path: path, ret: ret}
		var all []cond
		perIndex := map[uint]int{}
		for k, a := range sc.Args {
			apath := fmt.Sprintf("%s.args[%d]", path, k)
			if a.Index > 5 {
				return nil, fmt.Errorf("%s.index: %d: syscalls have 6 arguments, numbered 0 to 5", apath, a.Index)
			}
			if !slices.Contains(knownOps, a.Op) {
				return nil, fmt.Errorf("%s.op: unknown operator %q: use one of SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ", apath, a.Op)
			}
			all = append(all, cond{a.Index, a.Op, a.Value, a.ValueTwo})
			perIndex[a.Index]++
		}
		switch {
		case len(all) == 0:
		case len(perIndex) < len(all):
			// runc's matchCall: "If two or more arguments have the same condition,
			// revert to old behavior, adding each condition as a separate rule".
			for _, c := range all {
				r.conds = append(r.conds, []cond{c})
			}
		default:
			r.conds = [][]cond{all}
		}
		if ret == defRet {
			continue // runc skips it; libseccomp would refuse it
		}
		rules = append(rules, r)
	}
	// Names of rules runc skips still count towards the highest number (runc's
	// findLastSyscalls reads every rule).
	allNames := func(yield func(string) bool) {
		for _, sc := range p.Syscalls {
			for _, n := range sc.Names {
				if !yield(n) {
					return
				}
			}
		}
	}

	type policy struct {
		uncond *uint32
		conds  []struct {
			ret  uint32
			alts [][]cond
		}
		seen map[string]seenCond
	}
	var body asm
	enosys := opts.RuncENOSYS && !isAllow(p.DefaultAction) &&
		!(p.DefaultAction == specs.ActErrno && p.DefaultErrnoRet != nil && *p.DefaultErrnoRet == uint(unix.ENOSYS))

	// Which ABIs are in the filter, grouped by audit arch.
	var inFilter []abi
	for i, ab := range m.abis {
		if i == 0 || slices.Contains(p.Architectures, ab.arch) {
			inFilter = append(inFilter, ab)
			f.abis = append(f.abis, ab)
			f.Arches = append(f.Arches, ab.arch)
		}
	}
	type archCode struct {
		audit uint32
		l     label
		segs  []segment
	}
	var codes []*archCode
	byAudit := map[uint32]*archCode{}
	type condBlock struct {
		l      label
		bits32 bool
		pol    *policy
	}
	var blocks []condBlock
	blockOf := map[string]label{}

	for _, ab := range inFilter {
		table, err := profile.TableFor(ab.arch)
		if err != nil {
			return nil, err
		}
		pols := map[uint32]*policy{}
		for _, r := range rules {
			for _, name := range r.names {
				nr, ok := table.Number(name)
				if !ok {
					continue
				}
				key := uint32(nr) + ab.base
				pol := pols[key]
				if pol == nil {
					pol = &policy{}
					pols[key] = pol
				}
				if r.conds == nil {
					if pol.uncond == nil {
						ret := r.ret
						pol.uncond = &ret
					}
					continue
				}
				// libseccomp refuses the same conditions with another action for one
				// syscall (EEXIST), and runc with it: say so before running anything.
				for _, alt := range r.conds {
					key := condKey(alt)
					if prev, ok := pol.seen[key]; ok && prev.ret != r.ret {
						return nil, fmt.Errorf("%s: %s has the same conditions as in %s with another action: runc refuses this (libseccomp: file exists); keep one", r.path, name, prev.path)
					}
					if pol.seen == nil {
						pol.seen = map[string]seenCond{}
					}
					pol.seen[key] = seenCond{r.ret, r.path}
				}
				pol.conds = append(pol.conds, struct {
					ret  uint32
					alts [][]cond
				}{r.ret, r.conds})
			}
		}
		// The default outcome over the ABI's numbers.
		segs := []segment{{start: ab.lo, ret: defRet}}
		if enosys {
			maxNr := int64(-1)
			for name := range allNames {
				if nr, ok := table.Number(name); ok && int64(nr) > maxNr {
					maxNr = int64(nr)
				}
			}
			if maxNr >= 0 && uint64(maxNr)+uint64(ab.base)+1 < ab.hi {
				segs = append(segs, segment{start: uint64(maxNr) + uint64(ab.base) + 1, ret: errnoRet(uint32(unix.ENOSYS))})
			}
		}
		keys := make([]uint32, 0, len(pols))
		for k := range pols {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			pol := pols[k]
			s := segment{start: uint64(k)}
			if pol.uncond != nil {
				s.ret = *pol.uncond
			} else {
				// Syscalls with the same rules share one block.
				key := fmt.Sprint(ab.bits32, pol.conds)
				l, ok := blockOf[key]
				if !ok {
					l = body.newLabel()
					blockOf[key] = l
					blocks = append(blocks, condBlock{l: l, bits32: ab.bits32, pol: pol})
				}
				s.block = l
				s.hasBlock = true
			}
			segs = setSegment(segs, s, ab.hi)
		}
		ac := byAudit[ab.audit]
		if ac == nil {
			ac = &archCode{audit: ab.audit, l: body.newLabel()}
			byAudit[ab.audit] = ac
			codes = append(codes, ac)
		}
		// x86_64 and x32 share AUDIT_ARCH_X86_64: their segments are disjoint halves
		// of one number line.
		ac.segs = append(ac.segs, segs...)
	}
	// Fill the holes of shared audit arches (x86_64 without x32: numbers with
	// X32SyscallBit are a bad architecture, as in libseccomp).
	for _, ac := range codes {
		slices.SortFunc(ac.segs, func(a, b segment) int { return cmpU64(a.start, b.start) })
		if ac.audit == unix.AUDIT_ARCH_X86_64 && !slices.Contains(f.Arches, specs.ArchX32) {
			ac.segs = append(ac.segs, segment{start: profile.X32SyscallBit, ret: BadArch})
		}
		ac.segs = mergeSegments(ac.segs)
	}

	// Layout: arch dispatch, each arch's search tree, then the conditional blocks.
	body.ld(offArch)
	for _, ac := range codes {
		body.jump(opJeqK, ac.audit, ac.l, next)
	}
	body.ret(BadArch)
	for _, ac := range codes {
		body.mark(ac.l)
		body.ld(offNr)
		tree(&body, ac.segs)
	}
	for _, cb := range blocks {
		body.mark(cb.l)
		for _, c := range cb.pol.conds {
			for _, alt := range c.alts {
				fail := body.newLabel()
				for _, cd := range alt {
					cmpArg(&body, m.bigEndian, cb.bits32, cd.index, cd.op, cd.val, cd.val2, fail)
				}
				body.ret(c.ret)
				body.mark(fail)
			}
		}
		body.ret(defRet)
	}
	prog, err := body.assemble()
	if err != nil {
		return nil, err
	}
	f.Program = prog
	return f, nil
}

var knownArchNames = []specs.Arch{
	specs.ArchX86, specs.ArchX86_64, specs.ArchX32, specs.ArchARM, specs.ArchAARCH64,
	specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPS64N32, specs.ArchMIPSEL, specs.ArchMIPSEL64,
	specs.ArchMIPSEL64N32, specs.ArchPPC, specs.ArchPPC64, specs.ArchPPC64LE, specs.ArchS390,
	specs.ArchS390X, specs.ArchPARISC, specs.ArchPARISC64, specs.ArchRISCV64, specs.ArchLOONGARCH64,
}

var knownOps = []specs.LinuxSeccompOperator{
	specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
	specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
}

func isAllow(a specs.LinuxSeccompAction) bool {
	// runc's isAllowAction: TRACE counts, since a tracer handles ENOSYS itself.
	return a == specs.ActAllow || a == specs.ActLog || a == specs.ActTrace
}

func errnoRet(e uint32) uint32 { return unix.SECCOMP_RET_ERRNO | e }

// retOf is the SECCOMP_RET_* value of an action.
func retOf(path string, a specs.LinuxSeccompAction, errno *uint, errnoPath string) (uint32, error) {
	data := uint32(unix.EPERM)
	if errno != nil {
		if *errno > math.MaxUint16 {
			return 0, fmt.Errorf("%s: %d does not fit the 16 bits seccomp returns: use an errno below 4096", errnoPath, *errno)
		}
		data = uint32(*errno)
	}
	var ret uint32
	switch a {
	case specs.ActAllow:
		ret = unix.SECCOMP_RET_ALLOW
	case specs.ActLog:
		ret = unix.SECCOMP_RET_LOG
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | data, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | data, nil
	case specs.ActKill, specs.ActKillThread:
		ret = unix.SECCOMP_RET_KILL_THREAD
	case specs.ActKillProcess:
		ret = unix.SECCOMP_RET_KILL_PROCESS
	case specs.ActTrap:
		ret = unix.SECCOMP_RET_TRAP
	case specs.ActNotify:
		return 0, fmt.Errorf("%s: SCMP_ACT_NOTIFY needs a seccomp agent, which syscage exec does not run: %w; use the profile with a runtime and its listenerPath", path, ErrNotSupported)
	case "":
		return 0, fmt.Errorf("%s: missing: set it, e.g. \"SCMP_ACT_ERRNO\"", path)
	default:
		return 0, fmt.Errorf("%s: unknown action %q: use SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_TRACE or SCMP_ACT_LOG", path, a)
	}
	if errno != nil {
		// runc ignores it; a reader would think it applies.
		return 0, fmt.Errorf("%s: %s returns no errno: remove it, or use SCMP_ACT_ERRNO", errnoPath, a)
	}
	return ret, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type cond struct {
	index     uint
	op        specs.LinuxSeccompOperator
	val, val2 uint64
}

type seenCond struct {
	ret  uint32
	path string
}

// condKey identifies a conjunction whatever the order of its conditions, as
// libseccomp's tree, sorted by argument, does.
func condKey(c []cond) string {
	keys := make([]string, len(c))
	for i, x := range c {
		keys[i] = fmt.Sprintf("%d %s %#x %#x", x.index, x.op, x.val, x.val2)
	}
	slices.Sort(keys)
	return strings.Join(keys, "&")
}
