package profile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Recorded holds the syscall numbers a recorder saw, per seccomp architecture.
type Recorded map[specs.Arch][]int

// Unnamed is a recorded number that its architecture's table has no name for.
type Unnamed struct {
	Arch specs.Arch
	Nr   int
}

func (u Unnamed) String() string { return fmt.Sprintf("%s:%d", u.Arch, u.Nr) }

// Options shape a profile built from a recording.
type Options struct {
	// DefaultAction applies to every syscall not recorded; SCMP_ACT_ERRNO if empty.
	DefaultAction specs.LinuxSeccompAction
	// DefaultErrnoRet is the errno of an ERRNO default action (1, EPERM, if 0).
	DefaultErrnoRet uint
	// Strict leaves out AlwaysAllowed.
	Strict bool
	// Args are the argument values recorded for the syscalls of ArgSpecs; nil
	// (not recorded) allows every recorded syscall by name.
	Args Args
	// Baseline, if set, is the profile the result must stay within (see Clip).
	Baseline *Baseline
}

// AlwaysAllowed are the calls every profile built from a recording allows, recorded
// or not, on the architectures that have them. Whether a run makes them depends on
// timing alone -- a signal handler returns with rt_sigreturn only if a signal came,
// an interrupted call resumes with restart_syscall only if it was interrupted --
// and they give a process nothing it did not have, while denying them kills it
// at random. The exits are here so that no profile can forbid ending.
var AlwaysAllowed = []string{"exit", "exit_group", "restart_syscall", "rt_sigreturn", "sigreturn"}

// Built is a profile made from a recording, with what could not go into it.
type Built struct {
	Profile *specs.LinuxSeccomp
	// Unnamed are recorded numbers without a name in their architecture's table.
	Unnamed []Unnamed
	// Dropped are recorded calls the baseline refuses, left out.
	Dropped []Dropped
}

// FromRecorded builds the profile that allows exactly what was recorded, within the
// baseline. Numbers of each architecture are named from that architecture's own
// table: compat call 5 is i386 "open", not x86_64 "fstat". Numbers without a name
// are returned, not dropped silently, and so are calls the baseline refuses. The
// OCI format cannot tie a rule to an architecture, so the allowed names and
// argument values are the union over all recorded architectures, each of which is
// listed.
//
// With argument values or a baseline, clone3 is answered with ENOSYS whenever the
// recording forked: seccomp cannot read clone3's flags, and libc falls back to
// clone, whose flags the profile checks. Under a runtime's default filter the
// recorder never sees clone3 at all (the filter answers it first), so a profile
// that answered it with the default EPERM would break pthread_create.
func FromRecorded(rec Recorded, opts Options) (*Built, error) {
	p := &specs.LinuxSeccomp{DefaultAction: opts.DefaultAction}
	if p.DefaultAction == "" {
		p.DefaultAction = specs.ActErrno
	}
	if p.DefaultAction == specs.ActErrno || p.DefaultAction == specs.ActTrace {
		errno := opts.DefaultErrnoRet
		if errno == 0 {
			errno = 1
		}
		p.DefaultErrnoRet = &errno
	}
	b := &Built{Profile: p}
	var names []string
	for _, arch := range sortArches(mapsKeys(rec)) {
		nrs := rec[arch]
		if len(nrs) == 0 {
			continue
		}
		tab, err := TableFor(arch)
		if err != nil {
			return nil, err
		}
		p.Architectures = append(p.Architectures, arch)
		for _, nr := range nrs {
			name, ok := tab.Name(nr)
			if !ok {
				b.Unnamed = append(b.Unnamed, Unnamed{Arch: arch, Nr: nr})
				continue
			}
			names = append(names, name)
		}
	}
	if !opts.Strict {
		for _, arch := range p.Architectures {
			tab, _ := TableFor(arch)
			for _, name := range AlwaysAllowed {
				if _, ok := tab.Number(name); ok {
					names = append(names, name)
				}
			}
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)

	forked := slices.Contains(names, "clone") || slices.Contains(names, "clone3")
	clone3ENOSYS := forked && (opts.Args != nil || opts.Baseline != nil)
	var rules []specs.LinuxSyscall
	plain := names
	if opts.Args != nil {
		var bare map[string]bool
		rules, bare = argRules(names, opts.Args)
		plain = slices.DeleteFunc(slices.Clone(names), func(n string) bool {
			_, curated := ArgSpecOf(n)
			return curated && !bare[n]
		})
		if slices.Contains(names, "clone3") && !slices.Contains(names, "clone") && bare["clone"] {
			plain = append(plain, "clone")
		}
	} else if clone3ENOSYS && !slices.Contains(plain, "clone") {
		plain = append(plain, "clone")
	}
	if clone3ENOSYS {
		plain = slices.DeleteFunc(plain, func(n string) bool { return n == "clone3" })
		errno := uint(enosys)
		rules = append(rules, specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &errno})
	}
	slices.Sort(plain)
	if len(plain) > 0 {
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: plain, Action: specs.ActAllow})
	}
	p.Syscalls = append(p.Syscalls, rules...)
	var err error
	if opts.Baseline != nil {
		p, b.Dropped, err = opts.Baseline.Clip("the recorded profile", p)
	} else {
		p, err = Normalize("the recorded profile", p)
	}
	if err != nil {
		return nil, err
	}
	b.Profile = p
	return b, nil
}

func mapsKeys(rec Recorded) []specs.Arch {
	out := make([]specs.Arch, 0, len(rec))
	for a := range rec {
		out = append(out, a)
	}
	return out
}

// CompareArches orders architectures as Arches() does, the order every output of
// syscage lists them in; architectures without a table go last, by name.
func CompareArches(a, b specs.Arch) int {
	rank := func(a specs.Arch) int {
		for i := range tables {
			if tables[i].arch == a {
				return i
			}
		}
		return len(tables)
	}
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra - rb
	}
	return strings.Compare(string(a), string(b))
}

// ShortArch is an architecture's name for people: "x86_64" for SCMP_ARCH_X86_64.
func ShortArch(a specs.Arch) string {
	return strings.ToLower(strings.TrimPrefix(string(a), "SCMP_ARCH_"))
}

// sortArches sorts architectures with CompareArches and drops repeats.
func sortArches(arches []specs.Arch) []specs.Arch {
	slices.SortFunc(arches, CompareArches)
	return slices.Compact(arches)
}

// Marshal encodes a profile byte-stably: fields in runtime-spec order, names as
// given (FromRecorded and Merge sort them), 2-space indent, trailing newline.
func Marshal(p *specs.LinuxSeccomp) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("encoding profile: %w", err)
	}
	return buf.Bytes(), nil
}

// Parse decodes an OCI seccomp profile (runtime-spec LinuxSeccomp). name is used in
// errors. Fields the format does not have are refused, since a profile in another
// format read as OCI would silently lose its rules.
func Parse(name string, data []byte) (*specs.LinuxSeccomp, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%s: empty file: not a seccomp profile", name)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p specs.LinuxSeccomp
	if err := dec.Decode(&p); err != nil {
		var syn *json.SyntaxError
		switch {
		case errors.As(err, &syn):
			return nil, fmt.Errorf("%s: invalid JSON at byte %d: %w", name, syn.Offset, err)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, fmt.Errorf("%s: truncated JSON (ends before the profile does)", name)
		case strings.Contains(err.Error(), "unknown field"):
			return nil, fmt.Errorf("%s: not an OCI seccomp profile (%w); a Docker profile (archMap, includes) must be converted first", name, err)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// Not dec.More: it is false before a stray '}' or ']', which would pass.
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s: trailing data after the profile", name)
	}
	if p.DefaultAction == "" {
		return nil, fmt.Errorf("%s: defaultAction is missing: set it, e.g. \"SCMP_ACT_ERRNO\"", name)
	}
	for i, sc := range p.Syscalls {
		if len(sc.Names) == 0 {
			return nil, fmt.Errorf("%s: syscalls[%d].names is empty: list at least one syscall or remove the rule", name, i)
		}
		if sc.Action == "" {
			return nil, fmt.Errorf("%s: syscalls[%d].action is missing: set it, e.g. \"SCMP_ACT_ALLOW\"", name, i)
		}
	}
	return &p, nil
}
