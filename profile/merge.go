package profile

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Named is a profile with the name it is known by in errors (usually its file).
type Named struct {
	Name    string
	Profile *specs.LinuxSeccomp
}

// Merge returns a profile that allows what any of the inputs allows. Plain rules
// (an action with no argument conditions) are unioned name by name per action;
// rules with conditions are kept as they are, once. Profiles with different default
// actions, or a syscall given two different plain actions, are a conflict: the error
// names both inputs. A listener (listenerPath, listenerMetadata) set in some inputs
// is kept; two different ones are a conflict. The output does not depend on the order
// of the inputs: plain
// rules come first, sorted by action, then the conditional ones sorted by content.
func Merge(in ...Named) (*specs.LinuxSeccomp, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("merge: no profiles")
	}
	first := in[0]
	out := &specs.LinuxSeccomp{
		DefaultAction:    first.Profile.DefaultAction,
		DefaultErrnoRet:  first.Profile.DefaultErrnoRet,
		ListenerPath:     first.Profile.ListenerPath,
		ListenerMetadata: first.Profile.ListenerMetadata,
	}
	// Rules are keyed by what they do: an ERRNO rule without errnoRet and one with
	// errnoRet 1 are the same rule. explicit records whether any input spelled the
	// errno out, so the output says it too, whatever the input order.
	type plainKey struct {
		action specs.LinuxSeccompAction
		errno  uint
	}
	plain := map[plainKey][]string{}
	explicit := map[plainKey]bool{}
	defaultExplicit := false
	var order []plainKey
	owner := map[string]struct {
		key  plainKey
		from string
	}{}
	conditional := map[string]specs.LinuxSyscall{} // by JSON encoding
	listenerFrom := first.Name

	for _, n := range in {
		p := n.Profile
		defaultExplicit = defaultExplicit || p.DefaultErrnoRet != nil
		if p.DefaultAction != out.DefaultAction || effectiveErrno(p.DefaultAction, p.DefaultErrnoRet) != effectiveErrno(out.DefaultAction, out.DefaultErrnoRet) {
			return nil, fmt.Errorf("%s and %s differ in default action (%s vs %s): merge profiles with the same default",
				first.Name, n.Name, describeAction(out.DefaultAction, out.DefaultErrnoRet), describeAction(p.DefaultAction, p.DefaultErrnoRet))
		}
		if p.ListenerPath != "" || p.ListenerMetadata != "" {
			// A listener set in one input only is kept, whichever input that is.
			if out.ListenerPath == "" && out.ListenerMetadata == "" {
				out.ListenerPath, out.ListenerMetadata = p.ListenerPath, p.ListenerMetadata
				listenerFrom = n.Name
			} else if p.ListenerPath != out.ListenerPath || p.ListenerMetadata != out.ListenerMetadata {
				return nil, fmt.Errorf("%s and %s differ in seccomp listener (%q %q vs %q %q): merge profiles with the same listenerPath and listenerMetadata",
					listenerFrom, n.Name, out.ListenerPath, out.ListenerMetadata, p.ListenerPath, p.ListenerMetadata)
			}
		}
		out.Architectures = append(out.Architectures, p.Architectures...)
		out.Flags = append(out.Flags, p.Flags...)
		for _, sc := range p.Syscalls {
			if len(sc.Args) > 0 {
				// Rules with the same action and conditions are one rule over the
				// union of their names: the normal form of a set of (name,
				// conditions) pairs, whatever the order they came in.
				key := sc
				key.Names = nil
				key.Args = slices.Clone(sc.Args)
				sortConds(key.Args)
				key.ErrnoRet = ptrIf(hasErrno(sc.Action), effectiveErrno(sc.Action, sc.ErrnoRet))
				b, _ := json.Marshal(key)
				cur, ok := conditional[string(b)]
				if !ok {
					cur = key
					cur.ErrnoRet = nil
				}
				if sc.ErrnoRet != nil {
					cur.ErrnoRet = sc.ErrnoRet
				}
				// cur.Names is this merge's own slice (nil for a new rule):
				// appended to in place, not copied for every input.
				cur.Names = append(cur.Names, sc.Names...)
				conditional[string(b)] = cur
				continue
			}
			k := plainKey{action: sc.Action, errno: effectiveErrno(sc.Action, sc.ErrnoRet)}
			if _, ok := plain[k]; !ok {
				order = append(order, k)
			}
			explicit[k] = explicit[k] || sc.ErrnoRet != nil
			for _, name := range sc.Names {
				if o, ok := owner[name]; ok && o.key != k {
					if o.from == n.Name {
						return nil, fmt.Errorf("%s gives %q two actions (%s and %s): keep one of the rules",
							n.Name, name, describeAction(o.key.action, ptrIf(hasErrno(o.key.action), o.key.errno)), describeAction(k.action, sc.ErrnoRet))
					}
					return nil, fmt.Errorf("%s and %s give %q different actions (%s vs %s): decide which one it gets in one of them",
						o.from, n.Name, name, describeAction(o.key.action, ptrIf(hasErrno(o.key.action), o.key.errno)), describeAction(k.action, sc.ErrnoRet))
				}
				_, seen := owner[name]
				owner[name] = struct {
					key  plainKey
					from string
				}{k, n.Name}
				if !seen {
					// Once per name, not once per input that allows it.
					plain[k] = append(plain[k], name)
				}
			}
		}
	}
	e := effectiveErrno(out.DefaultAction, out.DefaultErrnoRet)
	out.DefaultErrnoRet = ptrIf(defaultExplicit || hasErrno(out.DefaultAction) && e != eperm, e)
	out.Architectures = sortArches(out.Architectures)
	slices.Sort(out.Flags)
	out.Flags = slices.Compact(out.Flags)
	slices.SortFunc(order, func(a, b plainKey) int {
		return cmp.Or(cmp.Compare(a.action, b.action), cmp.Compare(a.errno, b.errno))
	})
	for _, k := range order {
		names := plain[k]
		slices.Sort(names)
		out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{
			Names:    slices.Compact(names),
			Action:   k.action,
			ErrnoRet: ptrIf(explicit[k] || hasErrno(k.action) && k.errno != eperm, k.errno),
		})
	}
	// A conditional rule whose action a syscall already gets unconditionally adds
	// nothing for it: that name is dropped from the rule, and a rule left with no
	// names goes.
	kept := map[string]specs.LinuxSyscall{}
	for _, sc := range conditional {
		k := plainKey{action: sc.Action, errno: effectiveErrno(sc.Action, sc.ErrnoRet)}
		names := slices.DeleteFunc(slices.Clone(sc.Names), func(name string) bool {
			o, ok := owner[name]
			return ok && o.key == k
		})
		if len(names) == 0 {
			continue
		}
		slices.Sort(names)
		sc.Names = slices.Compact(names)
		b, _ := json.Marshal(sc)
		kept[string(b)] = sc
	}
	for _, k := range slices.Sorted(maps.Keys(kept)) {
		out.Syscalls = append(out.Syscalls, kept[k])
	}
	return out, nil
}

// eperm is the errno of an ERRNO or TRACE action that names none (runtime-spec).
const eperm = 1

func hasErrno(a specs.LinuxSeccompAction) bool {
	return a == specs.ActErrno || a == specs.ActTrace
}

// effectiveErrno is the errno an action returns: errnoRet, EPERM when it is absent
// on an ERRNO or TRACE action, and 0 (none) for any other action.
func effectiveErrno(a specs.LinuxSeccompAction, errnoRet *uint) uint {
	switch {
	case errnoRet != nil:
		return *errnoRet
	case hasErrno(a):
		return eperm
	}
	return 0
}

// sameUint compares optional numbers: absent is not 0 (an absent errnoRet is EPERM).
func sameUint(a, b *uint) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

func derefUint(p *uint) uint {
	if p == nil {
		return 0
	}
	return *p
}

func ptrIf(ok bool, v uint) *uint {
	if !ok {
		return nil
	}
	return &v
}

func describeAction(a specs.LinuxSeccompAction, errno *uint) string {
	if errno != nil {
		return fmt.Sprintf("%s errno %d", a, *errno)
	}
	return string(a)
}
