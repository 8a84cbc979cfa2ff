package profile

import (
	"encoding/json"
	"fmt"
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
// names both inputs.
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
	type plainKey struct {
		action specs.LinuxSeccompAction
		errno  uint
		hasErr bool
	}
	plain := map[plainKey][]string{}
	var order []plainKey
	owner := map[string]struct {
		key  plainKey
		from string
	}{}
	var conditional []specs.LinuxSyscall
	seen := map[string]bool{}

	for _, n := range in {
		p := n.Profile
		if p.DefaultAction != out.DefaultAction || derefUint(p.DefaultErrnoRet) != derefUint(out.DefaultErrnoRet) {
			return nil, fmt.Errorf("%s and %s differ in default action (%s vs %s): merge profiles with the same default",
				first.Name, n.Name, describeAction(out.DefaultAction, out.DefaultErrnoRet), describeAction(p.DefaultAction, p.DefaultErrnoRet))
		}
		out.Architectures = append(out.Architectures, p.Architectures...)
		out.Flags = append(out.Flags, p.Flags...)
		for _, sc := range p.Syscalls {
			if len(sc.Args) > 0 {
				b, _ := json.Marshal(sc)
				if !seen[string(b)] {
					seen[string(b)] = true
					conditional = append(conditional, sc)
				}
				continue
			}
			k := plainKey{action: sc.Action, errno: derefUint(sc.ErrnoRet), hasErr: sc.ErrnoRet != nil}
			if _, ok := plain[k]; !ok {
				order = append(order, k)
			}
			for _, name := range sc.Names {
				if o, ok := owner[name]; ok && o.key != k {
					return nil, fmt.Errorf("%s and %s give %q different actions (%s vs %s): decide which one it gets in one of them",
						o.from, n.Name, name, describeAction(o.key.action, ptrIf(o.key.hasErr, o.key.errno)), describeAction(k.action, sc.ErrnoRet))
				}
				owner[name] = struct {
					key  plainKey
					from string
				}{k, n.Name}
				plain[k] = append(plain[k], name)
			}
		}
	}
	out.Architectures = sortArches(out.Architectures)
	slices.Sort(out.Flags)
	out.Flags = slices.Compact(out.Flags)
	for _, k := range order {
		names := plain[k]
		slices.Sort(names)
		out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{
			Names:    slices.Compact(names),
			Action:   k.action,
			ErrnoRet: ptrIf(k.hasErr, k.errno),
		})
	}
	out.Syscalls = append(out.Syscalls, conditional...)
	return out, nil
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
