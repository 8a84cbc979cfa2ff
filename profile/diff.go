package profile

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Normalize returns p in the form Merge writes: plain rules grouped by action with
// sorted names, conditional rules sorted, architectures in Arches order. It is the
// same profile to a runtime. name is used in errors (a syscall given two actions).
func Normalize(name string, p *specs.LinuxSeccomp) (*specs.LinuxSeccomp, error) {
	return Merge(Named{Name: name, Profile: p})
}

// Verdict is what a profile does with one syscall.
type Verdict struct {
	Action specs.LinuxSeccompAction `json:"action"`
	// Errno is the errno of an ERRNO or TRACE action, 0 otherwise.
	Errno uint `json:"errno,omitempty"`
	// Conditional is set when rules with argument conditions decide for some
	// arguments; Action is what happens when none of them matches.
	Conditional bool `json:"conditional,omitempty"`
}

func (v Verdict) String() string {
	s := string(v.Action)
	if hasErrno(v.Action) {
		s = fmt.Sprintf("%s errno %d", v.Action, v.Errno)
	}
	if v.Conditional {
		s += " unless argument conditions match"
	}
	return s
}

// allows reports whether an action lets the call run.
func allows(a specs.LinuxSeccompAction) bool { return a == specs.ActAllow || a == specs.ActLog }

// verdicts is what a profile does with each syscall it names; every other syscall
// gets the default.
type verdicts struct {
	def   Verdict
	names map[string]Verdict
	// condAllow: names some conditional rule lets through.
	condAllow map[string]bool
}

func verdictsOf(p *specs.LinuxSeccomp) verdicts {
	v := verdicts{
		def:       Verdict{Action: p.DefaultAction, Errno: effectiveErrno(p.DefaultAction, p.DefaultErrnoRet)},
		names:     map[string]Verdict{},
		condAllow: map[string]bool{},
	}
	for _, sc := range p.Syscalls {
		if len(sc.Args) > 0 {
			continue
		}
		for _, n := range sc.Names {
			v.names[n] = Verdict{Action: sc.Action, Errno: effectiveErrno(sc.Action, sc.ErrnoRet)}
		}
	}
	for _, sc := range p.Syscalls {
		if len(sc.Args) == 0 {
			continue
		}
		for _, n := range sc.Names {
			cur, plain := v.names[n]
			if !plain {
				cur = v.def
			} else if !cur.Conditional {
				// An unconditional rule decides; libseccomp lets it override the
				// conditional ones of the same syscall only if the actions agree,
				// which Normalize makes them.
				if cur.Action == sc.Action {
					continue
				}
			}
			cur.Conditional = true
			v.names[n] = cur
			if allows(sc.Action) {
				v.condAllow[n] = true
			}
		}
	}
	return v
}

func (v verdicts) of(name string) Verdict {
	if x, ok := v.names[name]; ok {
		return x
	}
	return v.def
}

// Allowed returns the syscalls of arch that p lets run whatever their arguments,
// and those it lets run for some arguments only. Names arch has no number for are
// not counted: they cannot be called there.
func Allowed(p *specs.LinuxSeccomp, arch specs.Arch) (always, conditional []string, err error) {
	tab, err := TableFor(arch)
	if err != nil {
		return nil, nil, err
	}
	v := verdictsOf(p)
	for _, name := range tab.Names() {
		x := v.of(name)
		switch {
		case !x.Conditional && allows(x.Action):
			always = append(always, name)
		case x.Conditional && (allows(x.Action) || v.condAllow[name]):
			conditional = append(conditional, name)
		}
	}
	return always, conditional, nil
}

// Diff is how profile B differs from profile A.
type Diff struct {
	DefaultAction *Change `json:"defaultAction,omitempty"`
	Listener      *Change `json:"listener,omitempty"`
	// Architectures and flags B lists and A does not (Added), and the reverse.
	Architectures *SetDelta `json:"architectures,omitempty"`
	Flags         *SetDelta `json:"flags,omitempty"`
	// Arches lists, per architecture either profile covers, the syscalls B allows
	// unconditionally and A does not (Added), and the reverse.
	Arches []ArchDelta `json:"arches,omitempty"`
	// Changed are syscalls whose verdict differs in another way: a different
	// errno, KILL instead of ERRNO, argument conditions.
	Changed []NameChange `json:"changed,omitempty"`
	// Rules are the rules with argument conditions only one side has.
	Rules *RuleDelta `json:"rules,omitempty"`
}

// Change is a value that differs.
type Change struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// SetDelta is what was added to and removed from a set.
type SetDelta struct {
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

// ArchDelta is the change in allowed syscalls on one architecture.
type ArchDelta struct {
	Arch    specs.Arch `json:"arch"`
	Added   []string   `json:"added,omitempty"`
	Removed []string   `json:"removed,omitempty"`
}

// NameChange is a syscall whose verdict changed, other than allowed ↔ not.
type NameChange struct {
	Name string       `json:"name"`
	From Verdict      `json:"from"`
	To   Verdict      `json:"to"`
	On   []specs.Arch `json:"on"`
}

// RuleDelta are conditional rules added and removed.
type RuleDelta struct {
	Added   []specs.LinuxSyscall `json:"added,omitempty"`
	Removed []specs.LinuxSyscall `json:"removed,omitempty"`
}

// Empty reports whether the profiles behave the same.
func (d *Diff) Empty() bool {
	return d.DefaultAction == nil && d.Listener == nil && d.Architectures == nil && d.Flags == nil &&
		len(d.Arches) == 0 && len(d.Changed) == 0 && d.Rules == nil
}

// Compare returns how b differs from a. Both are normalised first, so rule order,
// name order and an errnoRet spelled out or implied make no difference. Syscalls
// are compared per architecture listed by either profile; when neither lists one,
// on fallback (the architecture the profiles will run on).
func Compare(a, b Named, fallback ...specs.Arch) (*Diff, error) {
	na, err := Normalize(a.Name, a.Profile)
	if err != nil {
		return nil, err
	}
	nb, err := Normalize(b.Name, b.Profile)
	if err != nil {
		return nil, err
	}
	d := &Diff{}
	va, vb := verdictsOf(na), verdictsOf(nb)
	if va.def != vb.def {
		d.DefaultAction = &Change{From: va.def.String(), To: vb.def.String()}
	}
	if na.ListenerPath != nb.ListenerPath || na.ListenerMetadata != nb.ListenerMetadata {
		d.Listener = &Change{From: listener(na), To: listener(nb)}
	}
	d.Architectures = setDelta(na.Architectures, nb.Architectures)
	d.Flags = setDelta(na.Flags, nb.Flags)

	arches := sortArches(append(slices.Clone(na.Architectures), nb.Architectures...))
	if len(arches) == 0 {
		arches = fallback
	}
	changedOn := map[string][]specs.Arch{}
	for _, arch := range arches {
		tab, err := TableFor(arch)
		if err != nil {
			continue // no names to compare on an architecture without a table
		}
		ad := ArchDelta{Arch: arch}
		for _, name := range tab.Names() {
			x, y := va.of(name), vb.of(name)
			if x == y {
				continue
			}
			ax, ay := !x.Conditional && allows(x.Action), !y.Conditional && allows(y.Action)
			switch {
			case ay && !ax:
				ad.Added = append(ad.Added, name)
			case ax && !ay:
				ad.Removed = append(ad.Removed, name)
			default:
				changedOn[name] = append(changedOn[name], arch)
			}
		}
		if len(ad.Added)+len(ad.Removed) > 0 {
			d.Arches = append(d.Arches, ad)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(changedOn)) {
		d.Changed = append(d.Changed, NameChange{Name: name, From: va.of(name), To: vb.of(name), On: changedOn[name]})
	}
	ra, rb := conditionalRules(na), conditionalRules(nb)
	var rd RuleDelta
	for _, k := range slices.Sorted(maps.Keys(rb)) {
		if _, ok := ra[k]; !ok {
			rd.Added = append(rd.Added, rb[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(ra)) {
		if _, ok := rb[k]; !ok {
			rd.Removed = append(rd.Removed, ra[k])
		}
	}
	if len(rd.Added)+len(rd.Removed) > 0 {
		d.Rules = &rd
	}
	return d, nil
}

func listener(p *specs.LinuxSeccomp) string {
	if p.ListenerPath == "" && p.ListenerMetadata == "" {
		return "none"
	}
	return fmt.Sprintf("%s %q", p.ListenerPath, p.ListenerMetadata)
}

func setDelta[T ~string](a, b []T) *SetDelta {
	var d SetDelta
	for _, x := range b {
		if !slices.Contains(a, x) {
			d.Added = append(d.Added, string(x))
		}
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			d.Removed = append(d.Removed, string(x))
		}
	}
	if len(d.Added)+len(d.Removed) == 0 {
		return nil
	}
	return &d
}

// conditionalRules are p's rules with argument conditions, one per syscall name
// (a rule over several names is several rules to a runtime), by content.
func conditionalRules(p *specs.LinuxSeccomp) map[string]specs.LinuxSyscall {
	out := map[string]specs.LinuxSyscall{}
	for _, sc := range p.Syscalls {
		if len(sc.Args) == 0 {
			continue
		}
		for _, n := range sc.Names {
			one := sc
			one.Names = []string{n}
			one.Args = slices.Clone(sc.Args)
			sortConds(one.Args)
			b, _ := json.Marshal(one)
			out[string(b)] = one
		}
	}
	return out
}

// Missing returns what the others allow that base does not: how merging them into
// base would change it. It is empty exactly when Merge(base, others...) behaves
// like base, which is what `merge --check` tests. fallback is as for Compare.
func Missing(fallback []specs.Arch, base Named, others ...Named) (*Diff, error) {
	merged, err := Merge(append([]Named{base}, others...)...)
	if err != nil {
		return nil, err
	}
	return Compare(base, Named{Name: "merged", Profile: merged}, fallback...)
}
