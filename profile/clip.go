package profile

import (
	"fmt"
	"maps"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Dropped is a call a profile allowed that its baseline refuses, left out of the
// clipped profile.
type Dropped struct {
	Name string
	// Args are the conditions of the rule that allowed it (nil: any arguments).
	Args []specs.LinuxSeccompArg
}

func (d Dropped) String() string { return DescribeCall(d.Name, d.Args) }

// enosys is the errno the runtimes' defaults answer clone3 with, so that libc
// falls back to clone, whose flags a filter can check.
const enosys = 38

// conj is one rule as runc hands it to libseccomp: conditions ANDed, each on a
// different argument (nil: unconditional).
type conj []specs.LinuxSeccompArg

// expand returns the rules runc makes of one entry: one rule of all its
// conditions when they name different arguments, one rule per condition when an
// argument is named twice or more (runc's matchCall).
func expand(sc specs.LinuxSyscall) []conj {
	if len(sc.Args) == 0 {
		return []conj{nil}
	}
	seen := map[uint]bool{}
	for _, a := range sc.Args {
		if seen[a.Index] {
			out := make([]conj, len(sc.Args))
			for i, a := range sc.Args {
				out[i] = conj{a}
			}
			return out
		}
		seen[a.Index] = true
	}
	return []conj{slices.Clone(sc.Args)}
}

// Baseline is a profile that others are clipped to (see Clip), indexed once: the
// conditions under which it allows each call. A caller that clips many profiles
// to one baseline (the node agent, at each change of each container's calls)
// prepares it once with NewBaseline.
type Baseline struct {
	// Name is how messages call it.
	Name    string
	Profile *specs.LinuxSeccomp
	allowed map[string][]conj
}

// NewBaseline prepares p, known in messages as name, as a baseline: it must
// refuse by default, and not both allow and refuse a call by its arguments.
func NewBaseline(name string, p *specs.LinuxSeccomp) (*Baseline, error) {
	if allows(p.DefaultAction) {
		return nil, fmt.Errorf("baseline %s allows by default (%s): a baseline must refuse by default", name, p.DefaultAction)
	}
	b := &Baseline{Name: name, Profile: p, allowed: map[string][]conj{}}
	refusing := map[string]bool{}
	for _, sc := range p.Syscalls {
		for _, n := range sc.Names {
			if allows(sc.Action) {
				b.allowed[n] = append(b.allowed[n], expand(sc)...)
			} else {
				refusing[n] = true
			}
		}
	}
	for _, n := range slices.Sorted(maps.Keys(refusing)) {
		if len(b.allowed[n]) > 0 {
			return nil, fmt.Errorf("baseline %s both allows and refuses %q by argument: syscage cannot tell which wins; use a baseline that does one or the other", name, n)
		}
	}
	return b, nil
}

// Clip returns what p allows that baseline allows too: for every architecture,
// syscall and arguments, the result allows a call only if both do. Where the
// baseline conditions a syscall that p allows whatever its arguments, the result
// keeps the baseline's conditions; where both condition it, the conditions are
// joined. A small range of the baseline (containerd's socket family < 38) becomes
// a set of values, so that no clipped profile carries ranges that libseccomp
// compiles inexactly beside other conditions. Calls p allows and the baseline
// refuses are returned, not dropped silently. name and baseName are used in
// errors. Rules that refuse are kept as they are: a refusal never widens.
func Clip(name string, p *specs.LinuxSeccomp, baseName string, baseline *specs.LinuxSeccomp) (*specs.LinuxSeccomp, []Dropped, error) {
	b, err := NewBaseline(baseName, baseline)
	if err != nil {
		return nil, nil, err
	}
	return b.Clip(name, p)
}

// Clip is the package's Clip to b.
func (b *Baseline) Clip(name string, p *specs.LinuxSeccomp) (*specs.LinuxSeccomp, []Dropped, error) {
	if allows(p.DefaultAction) {
		return nil, nil, fmt.Errorf("%s allows every syscall it does not name (defaultAction %s), which is wider than the baseline %s: set a refusing defaultAction, or use --baseline none", name, p.DefaultAction, b.Name)
	}
	out := *p
	out.Syscalls = nil
	var dropped []Dropped
	for _, sc := range p.Syscalls {
		if !allows(sc.Action) {
			out.Syscalls = append(out.Syscalls, sc)
			continue
		}
		for _, n := range sc.Names {
			for _, c := range expand(sc) {
				kept := false
				for _, bc := range b.allowed[n] {
					for _, j := range join(c, bc) {
						kept = true
						out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{Names: []string{n}, Action: sc.Action, Args: j})
					}
				}
				if !kept {
					dropped = append(dropped, Dropped{Name: n, Args: c})
				}
			}
		}
	}
	norm, err := Normalize(name, &out)
	if err != nil {
		return nil, nil, err
	}
	return norm, dedupeDropped(dropped), nil
}

func dedupeDropped(d []Dropped) []Dropped {
	seen := map[string]bool{}
	var out []Dropped
	for _, x := range d {
		if k := x.String(); !seen[k] {
			seen[k] = true
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b Dropped) int {
		if a.Name != b.Name {
			if a.Name < b.Name {
				return -1
			}
			return 1
		}
		if a.String() < b.String() {
			return -1
		}
		return 1
	})
	return out
}

// maxRangeValues is the largest range of the baseline turned into a set of values.
const maxRangeValues = 64

// join returns rules that allow exactly the calls both c and b allow (one rule, or
// a set of values for a small range, or none when they cannot both hold). Where
// the two cannot be joined exactly, the baseline's condition is kept alone: wider
// than the recording, never wider than the baseline.
func join(c, b conj) []conj {
	out := conj{}
	byIdx := map[uint]specs.LinuxSeccompArg{}
	for _, x := range c {
		byIdx[x.Index] = x
	}
	var ranges []specs.LinuxSeccompArg
	for _, y := range b {
		x, ok := byIdx[y.Index]
		if !ok {
			if isRange(y.Op) {
				ranges = append(ranges, y)
			} else {
				byIdx[y.Index] = y
			}
			continue
		}
		j, sat := joinCond(x, y)
		if !sat {
			return nil
		}
		byIdx[y.Index] = j
	}
	for _, x := range byIdx {
		out = append(out, x)
	}
	sortConds(out)
	res := []conj{out}
	for _, r := range ranges {
		vals, ok := rangeValues(r)
		if !ok {
			for i := range res {
				res[i] = append(res[i], r)
				sortConds(res[i])
			}
			continue
		}
		var next []conj
		for _, cur := range res {
			for _, v := range vals {
				n := append(slices.Clone(cur), specs.LinuxSeccompArg{Index: r.Index, Value: v, Op: specs.OpEqualTo})
				sortConds(n)
				next = append(next, n)
			}
		}
		res = next
	}
	if len(res) == 1 && len(res[0]) == 0 {
		return []conj{nil}
	}
	return res
}

func isRange(op specs.LinuxSeccompOperator) bool {
	switch op {
	case specs.OpLessThan, specs.OpLessEqual, specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpNotEqual:
		return true
	}
	return false
}

// rangeValues lists the values a small range condition holds for.
func rangeValues(r specs.LinuxSeccompArg) ([]uint64, bool) {
	var lo, hi uint64 // inclusive
	switch r.Op {
	case specs.OpLessThan:
		if r.Value == 0 {
			return nil, true
		}
		lo, hi = 0, r.Value-1
	case specs.OpLessEqual:
		lo, hi = 0, r.Value
	default:
		return nil, false
	}
	if hi-lo >= maxRangeValues {
		return nil, false
	}
	var out []uint64
	for v := lo; v <= hi; v++ {
		out = append(out, v)
	}
	return out, true
}

// joinCond joins two conditions on one argument: the recorded x (EQ or MASKED_EQ
// as syscage writes them, or anything a user wrote) and the baseline's y.
func joinCond(x, y specs.LinuxSeccompArg) (specs.LinuxSeccompArg, bool) {
	switch {
	case x == y:
		return x, true
	case x.Op == specs.OpEqualTo:
		return x, Holds(y, x.Value)
	case y.Op == specs.OpEqualTo:
		return y, Holds(x, y.Value)
	case x.Op == specs.OpMaskedEqual && y.Op == specs.OpMaskedEqual:
		// (v & m1 == a) and (v & m2 == b): one MASKED_EQ on m1|m2 if they agree
		// where the masks overlap.
		m1, a, m2, b := x.Value, x.ValueTwo&x.Value, y.Value, y.ValueTwo&y.Value
		if a&m2 != b&m1 {
			return x, false
		}
		return specs.LinuxSeccompArg{Index: x.Index, Op: specs.OpMaskedEqual, Value: m1 | m2, ValueTwo: a | b}, true
	}
	// Not joinable exactly: keep the baseline's.
	return y, true
}

// Holds reports whether a condition holds for value v, as libseccomp compares on
// a 64-bit architecture.
func Holds(c specs.LinuxSeccompArg, v uint64) bool {
	switch c.Op {
	case specs.OpEqualTo:
		return v == c.Value
	case specs.OpNotEqual:
		return v != c.Value
	case specs.OpLessThan:
		return v < c.Value
	case specs.OpLessEqual:
		return v <= c.Value
	case specs.OpGreaterThan:
		return v > c.Value
	case specs.OpGreaterEqual:
		return v >= c.Value
	case specs.OpMaskedEqual:
		return v&c.Value == c.ValueTwo
	}
	return false
}
