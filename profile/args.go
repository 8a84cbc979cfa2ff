package profile

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ArgKind says how a recorder turns a call's arguments into the value it keeps;
// the values are bpf.ArgKind's.
type ArgKind uint32

const (
	// ArgOne keeps Args[Index0] & Mask0.
	ArgOne ArgKind = iota + 1
	// ArgPair keeps Args[Index0] & Mask0 in the low 32 bits of the value and
	// Args[Index1] & Mask1 in the high 32 bits.
	ArgPair
	// ArgMem keeps the 64-bit word Args[Index0] points to, & Mask0: what a seccomp
	// filter cannot read, recorded to be allowed to the call named in RuleAs.
	ArgMem
)

// Namespace flags of clone, unshare and setns (include/uapi/linux/sched.h).
const (
	CloneNewNS     = 0x00020000
	CloneNewCgroup = 0x02000000
	CloneNewUTS    = 0x04000000
	CloneNewIPC    = 0x08000000
	CloneNewUser   = 0x10000000
	CloneNewPID    = 0x20000000
	CloneNewNet    = 0x40000000
	// CloneNamespaces are all of them: the mask the runtimes' defaults require to
	// be zero in clone's flags.
	CloneNamespaces = CloneNewNS | CloneNewCgroup | CloneNewUTS | CloneNewIPC | CloneNewUser | CloneNewPID | CloneNewNet
)

// ArgSpec is one syscall whose arguments decide what the call can reach, and which
// of them a recording keeps.
type ArgSpec struct {
	Name           string
	Kind           ArgKind
	Index0, Index1 uint
	Mask0, Mask1   uint64
	// RuleAs names the syscall whose rules the values are allowed to (clone3's
	// flags go to the clone libc falls back to); empty: Name.
	RuleAs string
}

const all64 = math.MaxUint64

// ArgSpecs are the syscalls whose argument values syscage records, in the
// kernel's table order (the recorder takes at most 16). Chosen because their
// arguments are what the runtimes' defaults and known exploits turn on:
// namespaces (clone, clone3, unshare, setns), socket families and kinds (socket,
// socketpair: AF_ALG, AF_VSOCK, raw packet sockets), personalities, terminal and
// device ioctls (TIOCSTI), prctl options, socket options (setsockopt: the level
// and option most netfilter and packet-socket exploits go through), and
// writable-executable memory (mmap, mmap2, mprotect, pkey_mprotect: W and X
// together). Left out: fcntl (many harmless commands, none a boundary), and
// keyctl and bpf (both defaults refuse them whatever their arguments).
var ArgSpecs = []ArgSpec{
	{Name: "clone", Kind: ArgOne, Index0: 0, Mask0: CloneNamespaces},
	{Name: "clone3", Kind: ArgMem, Index0: 0, Mask0: CloneNamespaces, RuleAs: "clone"},
	{Name: "unshare", Kind: ArgOne, Index0: 0, Mask0: all64},
	{Name: "setns", Kind: ArgOne, Index0: 1, Mask0: all64},
	{Name: "socket", Kind: ArgPair, Index0: 0, Mask0: all64, Index1: 1, Mask1: 0xf},
	{Name: "socketpair", Kind: ArgPair, Index0: 0, Mask0: all64, Index1: 1, Mask1: 0xf},
	{Name: "personality", Kind: ArgOne, Index0: 0, Mask0: all64},
	{Name: "ioctl", Kind: ArgOne, Index0: 1, Mask0: all64},
	{Name: "prctl", Kind: ArgOne, Index0: 0, Mask0: all64},
	{Name: "setsockopt", Kind: ArgPair, Index0: 1, Mask0: all64, Index1: 2, Mask1: all64},
	{Name: "mmap", Kind: ArgOne, Index0: 2, Mask0: protWX},
	{Name: "mmap2", Kind: ArgOne, Index0: 2, Mask0: protWX},
	{Name: "mprotect", Kind: ArgOne, Index0: 2, Mask0: protWX},
	{Name: "pkey_mprotect", Kind: ArgOne, Index0: 2, Mask0: protWX},
}

// protWX is PROT_WRITE|PROT_EXEC.
const protWX = 0x2 | 0x4

// ArgSpecOf returns the spec of a syscall name.
func ArgSpecOf(name string) (ArgSpec, bool) {
	for _, s := range ArgSpecs {
		if s.Name == name {
			return s, true
		}
	}
	return ArgSpec{}, false
}

// ParseArgsMode reads how argument values are used, as --args and the hook
// config's "args" say it: "record" (or "", the default) keeps the values seen,
// "none" allows recorded syscalls by name.
func ParseArgsMode(v string) (withArgs bool, err error) {
	switch v {
	case "", "record":
		return true, nil
	case "none":
		return false, nil
	}
	return false, fmt.Errorf("%q: use record or none", v)
}

// ArgValues are the values of one spec a recording saw on one architecture.
type ArgValues struct {
	Values []uint64
	// Any: the recorder kept no list (more distinct values than it keeps): the
	// call is allowed whatever its arguments, within the baseline.
	Any bool
}

// Args are the argument values recorded, by architecture and syscall name.
type Args map[specs.Arch]map[string]ArgValues

// Conds turns a recorded value into the conditions that allow exactly it: EQ on an
// argument kept whole, MASKED_EQ on one kept under a mask. Each condition names a
// different argument, so runc and crun AND them.
func (s ArgSpec) Conds(v uint64) []specs.LinuxSeccompArg {
	cond := func(idx uint, mask, v uint64) specs.LinuxSeccompArg {
		if mask == all64 {
			return specs.LinuxSeccompArg{Index: idx, Value: v, Op: specs.OpEqualTo}
		}
		return specs.LinuxSeccompArg{Index: idx, Value: mask, ValueTwo: v & mask, Op: specs.OpMaskedEqual}
	}
	if s.Kind == ArgPair {
		return []specs.LinuxSeccompArg{cond(s.Index0, s.Mask0, v&0xffffffff), cond(s.Index1, s.Mask1, v>>32)}
	}
	return []specs.LinuxSeccompArg{cond(s.Index0, s.Mask0, v)}
}

// argRules returns, for each recorded syscall name with argument values, the
// conditional rules that allow what was recorded; names with Any (or with a
// recorded bit but no values) are returned in bare, to be allowed by name.
func argRules(names []string, args Args) (rules []specs.LinuxSyscall, bare map[string]bool) {
	values := map[string]map[uint64]bool{}
	bare = map[string]bool{}
	seen := map[string]bool{}
	for _, byName := range args {
		for name, av := range byName {
			s, ok := ArgSpecOf(name)
			if !ok {
				continue
			}
			to := cmp.Or(s.RuleAs, s.Name)
			seen[to] = true
			if av.Any {
				bare[to] = true
				continue
			}
			if values[to] == nil {
				values[to] = map[uint64]bool{}
			}
			for _, v := range av.Values {
				values[to][v] = true
			}
		}
	}
	for _, name := range names {
		if _, ok := ArgSpecOf(name); ok && !seen[name] {
			// Recorded by name with no values: allow it by name rather than break the
			// workload; the baseline still narrows it.
			if name != "clone3" {
				bare[name] = true
			}
		}
	}
	for name, vs := range values {
		if bare[name] {
			continue
		}
		s, _ := ArgSpecOf(name)
		for v := range vs {
			rules = append(rules, specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow, Args: s.Conds(v)})
		}
	}
	return rules, bare
}

// DescribeCall names a call of a curated syscall with the values its conditions
// fix, for people: "clone(CLONE_NEWUSER)", "socket(AF_ALG, SOCK_SEQPACKET)",
// "ioctl(*, TIOCSTI)". Conditions of other syscalls are shown as written.
func DescribeCall(name string, conds []specs.LinuxSeccompArg) string {
	if len(conds) == 0 {
		return name + "(any arguments)"
	}
	byIdx := map[uint]specs.LinuxSeccompArg{}
	maxIdx := uint(0)
	for _, c := range conds {
		byIdx[c.Index] = c
		maxIdx = max(maxIdx, c.Index)
	}
	parts := make([]string, maxIdx+1)
	for i := uint(0); i <= maxIdx; i++ {
		c, ok := byIdx[i]
		if !ok {
			parts[i] = "*"
			continue
		}
		parts[i] = describeCond(name, c)
	}
	return name + "(" + strings.Join(parts, ", ") + ")"
}

func describeCond(name string, c specs.LinuxSeccompArg) string {
	var v uint64
	switch c.Op {
	case specs.OpEqualTo:
		v = c.Value
	case specs.OpMaskedEqual:
		v = c.ValueTwo
	default:
		return fmt.Sprintf("%s %#x", opSymbol(c.Op), c.Value)
	}
	switch {
	case (name == "clone" || name == "clone3" || name == "unshare" || name == "setns") && c.Index == argIndex(name):
		return describeFlags(v, namespaceNames, "no namespace flags")
	case (name == "socket" || name == "socketpair") && c.Index == 0:
		if n, ok := familyNames[v]; ok {
			return n
		}
	case (name == "socket" || name == "socketpair") && c.Index == 1:
		if n, ok := typeNames[v]; ok {
			return n
		}
	case name == "ioctl" && c.Index == 1:
		if n, ok := ioctlNames[v]; ok {
			return n
		}
	case (name == "mmap" || name == "mmap2" || name == "mprotect" || name == "pkey_mprotect") && c.Index == 2 && c.Op == specs.OpMaskedEqual:
		return describeFlags(v, protNames, "neither PROT_WRITE nor PROT_EXEC")
	}
	if c.Op == specs.OpMaskedEqual {
		return fmt.Sprintf("%#x under mask %#x", v, c.Value)
	}
	return fmt.Sprintf("%#x", v)
}

func argIndex(name string) uint {
	if name == "setns" {
		return 1
	}
	return 0
}

func opSymbol(op specs.LinuxSeccompOperator) string {
	switch op {
	case specs.OpNotEqual:
		return "!="
	case specs.OpLessThan:
		return "<"
	case specs.OpLessEqual:
		return "<="
	case specs.OpGreaterEqual:
		return ">="
	case specs.OpGreaterThan:
		return ">"
	}
	return string(op)
}

type flagName struct {
	bit  uint64
	name string
}

var namespaceNames = []flagName{
	{CloneNewNS, "CLONE_NEWNS"}, {CloneNewCgroup, "CLONE_NEWCGROUP"}, {CloneNewUTS, "CLONE_NEWUTS"},
	{CloneNewIPC, "CLONE_NEWIPC"}, {CloneNewUser, "CLONE_NEWUSER"}, {CloneNewPID, "CLONE_NEWPID"},
	{CloneNewNet, "CLONE_NEWNET"}, {0x80, "CLONE_NEWTIME"},
}

var protNames = []flagName{{0x2, "PROT_WRITE"}, {0x4, "PROT_EXEC"}}

func describeFlags(v uint64, names []flagName, none string) string {
	if v == 0 {
		return none
	}
	var out []string
	for _, f := range names {
		if v&f.bit != 0 {
			out = append(out, f.name)
			v &^= f.bit
		}
	}
	if v != 0 {
		out = append(out, fmt.Sprintf("%#x", v))
	}
	return strings.Join(out, "|")
}

var familyNames = map[uint64]string{
	0: "AF_UNSPEC", 1: "AF_UNIX", 2: "AF_INET", 3: "AF_AX25", 4: "AF_IPX", 5: "AF_APPLETALK", 9: "AF_X25",
	10: "AF_INET6", 16: "AF_NETLINK", 17: "AF_PACKET", 29: "AF_CAN", 31: "AF_BLUETOOTH", 38: "AF_ALG",
	40: "AF_VSOCK", 42: "AF_QIPCRTR", 44: "AF_XDP",
}

var ioctlNames = map[uint64]string{
	0x5401: "TCGETS", 0x5402: "TCSETS", 0x5403: "TCSETSW", 0x540f: "TIOCGPGRP", 0x5410: "TIOCSPGRP",
	0x5412: "TIOCSTI", 0x5413: "TIOCGWINSZ", 0x5414: "TIOCSWINSZ", 0x541b: "FIONREAD", 0x5421: "FIONBIO",
	0x5450: "FIONCLEX", 0x5451: "FIOCLEX",
}

var typeNames = map[uint64]string{1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 4: "SOCK_RDM", 5: "SOCK_SEQPACKET", 10: "SOCK_PACKET"}

// sortConds puts conditions in the order normal forms use: by index, operator,
// value, value two.
func sortConds(c []specs.LinuxSeccompArg) {
	slices.SortFunc(c, func(a, b specs.LinuxSeccompArg) int {
		switch {
		case a.Index != b.Index:
			return int(a.Index) - int(b.Index)
		case a.Op != b.Op:
			return strings.Compare(string(a.Op), string(b.Op))
		case a.Value != b.Value:
			if a.Value < b.Value {
				return -1
			}
			return 1
		case a.ValueTwo != b.ValueTwo:
			if a.ValueTwo < b.ValueTwo {
				return -1
			}
			return 1
		}
		return 0
	})
}
