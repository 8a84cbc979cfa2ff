package profile

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Severity ranks a finding of Check.
type Severity int

const (
	// Note is information: nothing to fix.
	Note Severity = iota
	// Warning is a profile that works but is probably not what was meant.
	Warning
	// Error is a profile a runtime refuses or misreads.
	Error
)

func (s Severity) String() string {
	return [...]string{"note", "warning", "error"}[s]
}

// MarshalText writes the severity's name in JSON output.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Finding is one thing Check has to say, at a JSON path of the profile.
type Finding struct {
	Severity Severity `json:"severity"`
	Path     string   `json:"path"`
	Message  string   `json:"message"`
}

func (f Finding) String() string {
	if f.Path == "" {
		return f.Message
	}
	return f.Path + ": " + f.Message
}

var (
	knownActions = []specs.LinuxSeccompAction{
		specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap,
		specs.ActErrno, specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify,
	}
	knownOps = []specs.LinuxSeccompOperator{
		specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
		specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
	}
	knownArches = []specs.Arch{
		specs.ArchX86, specs.ArchX86_64, specs.ArchX32, specs.ArchARM, specs.ArchAARCH64,
		specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPS64N32, specs.ArchMIPSEL, specs.ArchMIPSEL64,
		specs.ArchMIPSEL64N32, specs.ArchPPC, specs.ArchPPC64, specs.ArchPPC64LE, specs.ArchS390,
		specs.ArchS390X, specs.ArchPARISC, specs.ArchPARISC64, specs.ArchRISCV64, specs.ArchLOONGARCH64,
	}
	knownFlags = []specs.LinuxSeccompFlag{
		"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog,
		specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv,
	}
)

// Dangerous are syscalls a container rarely needs and an attacker often wants,
// with why. Check warns when a profile allows one.
var Dangerous = map[string]string{
	"bpf":               "loads programs into the kernel",
	"ptrace":            "reads and changes other processes, and escaped seccomp before Linux 4.8",
	"process_vm_readv":  "reads other processes' memory",
	"process_vm_writev": "writes other processes' memory",
	"mount":             "changes the mount table",
	"umount":            "changes the mount table",
	"umount2":           "changes the mount table",
	"fsopen":            "mounts file systems",
	"fsmount":           "mounts file systems",
	"move_mount":        "changes the mount table",
	"open_tree":         "clones mounts",
	"mount_setattr":     "changes mount attributes",
	"pivot_root":        "changes the root file system",
	"unshare":           "creates namespaces; user namespaces open kernel code to unprivileged users",
	"setns":             "joins other namespaces",
	"keyctl":            "uses the kernel keyring, which is not namespaced",
	"add_key":           "uses the kernel keyring, which is not namespaced",
	"request_key":       "uses the kernel keyring, which is not namespaced",
	"kexec_load":        "replaces the running kernel",
	"kexec_file_load":   "replaces the running kernel",
	"init_module":       "loads kernel code",
	"finit_module":      "loads kernel code",
	"delete_module":     "unloads kernel code",
	"open_by_handle_at": "opens host files by handle (the \"shocker\" container escape)",
	"userfaultfd":       "stalls the kernel at chosen points, a staple of kernel exploits",
	"perf_event_open":   "exposes kernel and hardware events, and has a long record of kernel bugs",
	"io_uring_setup":    "submits I/O that seccomp does not see",
	"io_uring_enter":    "submits I/O that seccomp does not see",
	"io_uring_register": "submits I/O that seccomp does not see",
	"reboot":            "reboots the host (or its PID namespace)",
	"swapon":            "changes host swap",
	"swapoff":           "changes host swap",
	"syslog":            "reads the kernel log",
	"acct":              "switches process accounting",
	"settimeofday":      "sets the host clock",
	"clock_settime":     "sets the host clock",
	"stime":             "sets the host clock",
	"iopl":              "reaches I/O ports",
	"ioperm":            "reaches I/O ports",
	"quotactl":          "manages disk quotas",
	"lookup_dcookie":    "reads kernel state for profilers",
	"kcmp":              "compares kernel objects of other processes",
	"pidfd_getfd":       "takes file descriptors from other processes",
	"fanotify_init":     "watches file system events host-wide",
	"vhangup":           "hangs up the terminal",
	"nfsservctl":        "controls the kernel NFS server",
}

// CheckOptions are what Check lints against.
type CheckOptions struct {
	// Reference returns the runtime's default profile for arch (containerd's), or
	// nil: Check warns about what p allows that it forbids.
	Reference func(arch specs.Arch) *specs.LinuxSeccomp
	// ReferenceName names the reference in findings.
	ReferenceName string
	// Fallback are the architectures to lint for when p lists none.
	Fallback []specs.Arch
	// PathsFrom, if set, is the profile findings give paths into, matched by
	// syscall name: the file a resolved Docker profile came from.
	PathsFrom *specs.LinuxSeccomp
}

// Check validates p and lints it (Validate, then Lint).
func Check(p *specs.LinuxSeccomp, opts CheckOptions) []Finding {
	return append(Validate(p), Lint(p, opts)...)
}

// Validate reports what runc and libseccomp would refuse or misread in p: unknown
// actions, operators, architectures and flags; names no listed architecture has;
// a syscall given two actions; argument indexes beyond 5; errnos on actions that
// return none. Findings come in the order of the profile.
func Validate(p *specs.LinuxSeccomp) []Finding {
	c := checker{}
	c.validate(p)
	return c.out
}

// Lint warns about what p allows: dangerous syscalls, what the reference forbids,
// and Baseline calls it forbids.
func Lint(p *specs.LinuxSeccomp, opts CheckOptions) []Finding {
	c := checker{}
	c.lint(p, opts)
	return c.out
}

type checker struct{ out []Finding }

func (c *checker) add(sev Severity, path, format string, args ...any) {
	c.out = append(c.out, Finding{Severity: sev, Path: path, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) action(path string, a specs.LinuxSeccompAction, errnoRet *uint, errnoPath string) {
	if !slices.Contains(knownActions, a) {
		c.add(Error, path, "unknown action %q: use one of %s", a, joinStrings(knownActions))
	}
	if errnoRet != nil && !hasErrno(a) && slices.Contains(knownActions, a) {
		c.add(Error, errnoPath, "%s takes no errno: remove it, or use SCMP_ACT_ERRNO", a)
	}
}

func (c *checker) validate(p *specs.LinuxSeccomp) {
	c.action("defaultAction", p.DefaultAction, p.DefaultErrnoRet, "defaultErrnoRet")
	notify := p.DefaultAction == specs.ActNotify
	for i, a := range p.Architectures {
		path := fmt.Sprintf("architectures[%d]", i)
		switch {
		case !slices.Contains(knownArches, a):
			c.add(Error, path, "unknown architecture %q: use one of %s", a, joinStrings(knownArches))
		case slices.Index(p.Architectures, a) < i:
			c.add(Warning, path, "%s is listed twice: remove one", a)
		default:
			if _, err := TableFor(a); err != nil {
				c.add(Note, path, "syscage has no syscall table for %s: names are not checked there", a)
			}
		}
	}
	for i, f := range p.Flags {
		path := fmt.Sprintf("flags[%d]", i)
		switch {
		case !slices.Contains(knownFlags, f):
			c.add(Error, path, "unknown flag %q: use one of %s", f, joinStrings(knownFlags))
		case slices.Index(p.Flags, f) < i:
			c.add(Warning, path, "%s is listed twice: remove one", f)
		}
	}

	tables := checkTables(p)
	type seen struct {
		path string
		v    Verdict
	}
	plain := map[string]seen{}
	for i, sc := range p.Syscalls {
		rule := fmt.Sprintf("syscalls[%d]", i)
		c.action(rule+".action", sc.Action, sc.ErrnoRet, rule+".errnoRet")
		notify = notify || sc.Action == specs.ActNotify
		if len(sc.Names) == 0 {
			c.add(Error, rule+".names", "no syscalls: list at least one or remove the rule")
		}
		for j, name := range sc.Names {
			path := fmt.Sprintf("%s.names[%d]", rule, j)
			c.name(path, name, tables)
			if len(sc.Args) > 0 {
				continue
			}
			v := Verdict{Action: sc.Action, Errno: effectiveErrno(sc.Action, sc.ErrnoRet)}
			if prev, ok := plain[name]; ok {
				if prev.v == v {
					c.add(Warning, path, "%q is already in %s with the same action: remove one", name, prev.path)
				} else {
					c.add(Error, path, "%q is also in %s with another action (%s, here %s): keep one", name, prev.path, prev.v, v)
				}
				continue
			}
			plain[name] = seen{path, v}
		}
		if len(sc.Args) == 0 && sc.Action == p.DefaultAction && effectiveErrno(sc.Action, sc.ErrnoRet) == effectiveErrno(p.DefaultAction, p.DefaultErrnoRet) {
			c.add(Warning, rule, "%s is the default action already: the rule does nothing (runc skips it), remove it", sc.Action)
		}
		for k, a := range sc.Args {
			path := fmt.Sprintf("%s.args[%d]", rule, k)
			if a.Index > 5 {
				c.add(Error, path+".index", "index %d: syscalls have 6 arguments, numbered 0 to 5", a.Index)
			}
			if !slices.Contains(knownOps, a.Op) {
				c.add(Error, path+".op", "unknown operator %q: use one of %s", a.Op, joinStrings(knownOps))
			}
			if a.ValueTwo != 0 && a.Op != specs.OpMaskedEqual {
				c.add(Warning, path+".valueTwo", "only SCMP_CMP_MASKED_EQ reads valueTwo: remove it")
			}
		}
	}
	if notify && p.ListenerPath == "" {
		c.add(Error, "listenerPath", "SCMP_ACT_NOTIFY needs a seccomp agent: set listenerPath to its socket")
	}
	if !notify && p.ListenerPath != "" {
		c.add(Warning, "listenerPath", "set, but no rule uses SCMP_ACT_NOTIFY: the agent is never asked")
	}
}

// checkTables are the tables names are checked against: the listed architectures
// that have one, or every table when the profile lists none.
func checkTables(p *specs.LinuxSeccomp) []*Table {
	var out []*Table
	for _, a := range sortArches(slices.Clone(p.Architectures)) {
		if t, err := TableFor(a); err == nil {
			out = append(out, t)
		}
	}
	if len(out) == 0 && len(p.Architectures) == 0 {
		for _, a := range Arches() {
			t, _ := TableFor(a)
			out = append(out, t)
		}
	}
	return out
}

func (c *checker) name(path, name string, tables []*Table) {
	if len(tables) == 0 {
		return
	}
	var missing []string
	for _, t := range tables {
		if _, ok := t.Number(name); !ok {
			missing = append(missing, string(t.Arch()))
		}
	}
	if len(missing) < len(tables) {
		return // libseccomp skips a name on the architectures that lack it
	}
	where := strings.Join(missing, ", ")
	if len(tables) == len(Arches()) {
		where = "any architecture"
	}
	elsewhere := KnownName(name)
	if len(elsewhere) > 0 {
		// Harmless to a runtime, which skips it, and usual in profiles shared by
		// architectures; but a profile recorded on one architecture does not
		// carry over to another (open has no aarch64 number: it is openat there).
		c.add(Note, path, "%q has no number on %s (only on %s): it has no effect here", name, where, joinStrings(elsewhere))
		return
	}
	msg := fmt.Sprintf("unknown syscall %q for %s", name, where)
	if s := suggest(name, tables); s != "" {
		msg += fmt.Sprintf(": did you mean %q?", s)
	}
	c.add(Error, path, "%s", msg)
}

// suggest returns the name in tables closest to name, if it is close.
func suggest(name string, tables []*Table) string {
	best, bestD := "", 3
	for _, t := range tables {
		for _, n := range t.Names() {
			if d := editDistance(name, n); d < bestD {
				best, bestD = n, d
			}
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (c *checker) lint(p *specs.LinuxSeccomp, opts CheckOptions) {
	arches := sortArches(slices.Clone(p.Architectures))
	if len(arches) == 0 {
		arches = opts.Fallback
	}
	v := verdictsOf(p)
	where := namePaths(p)
	if opts.PathsFrom != nil {
		where = namePaths(opts.PathsFrom)
	}
	refName := cmp.Or(opts.ReferenceName, "the runtime's default profile")

	// Per name, the architectures it is allowed on, in order.
	type allowedOn struct {
		arches []specs.Arch
		beyond []specs.Arch // where the reference forbids it
	}
	allowed := map[string]*allowedOn{}
	var order []string
	for _, arch := range arches {
		always, cond, err := Allowed(p, arch)
		if err != nil {
			continue
		}
		var ref map[string]bool
		if opts.Reference != nil {
			if r := opts.Reference(arch); r != nil {
				ra, rc, _ := Allowed(r, arch)
				ref = setOf(append(ra, rc...))
			}
		}
		for _, name := range append(always, cond...) {
			a := allowed[name]
			if a == nil {
				a = &allowedOn{}
				allowed[name] = a
				order = append(order, name)
			}
			a.arches = append(a.arches, arch)
			if ref != nil && !ref[name] {
				a.beyond = append(a.beyond, arch)
			}
		}
	}
	slices.Sort(order)
	if allows(p.DefaultAction) {
		var bad []string
		for _, name := range order {
			if _, ok := Dangerous[name]; ok && v.of(name) == v.def {
				bad = append(bad, name)
			}
		}
		if len(bad) > 0 {
			c.add(Warning, "defaultAction", "%s lets every unlisted syscall run, including %d dangerous ones: %s; deny them, or make the default SCMP_ACT_ERRNO and list what is needed",
				p.DefaultAction, len(bad), strings.Join(bad, ", "))
		}
	}
	for _, name := range order {
		a := allowed[name]
		path := where[name]
		if path == "" && allows(p.DefaultAction) {
			continue // said above, for the default action
		}
		how := "allows"
		if x := v.of(name); x.Conditional {
			how = "allows, for some arguments,"
		}
		reason, dangerous := Dangerous[name]
		beyond := ""
		if len(a.beyond) > 0 {
			beyond = refName + " forbids it"
			if len(a.beyond) < len(arches) {
				beyond += " on " + joinStrings(a.beyond)
			}
		}
		switch {
		case dangerous && beyond != "":
			c.add(Warning, path, "%s %q: it %s; %s", how, name, reason, beyond)
		case dangerous:
			c.add(Warning, path, "%s %q: it %s", how, name, reason)
		case beyond != "":
			c.add(Warning, path, "%s %q, which %s", how, name, beyond)
		}
	}
	for _, name := range AlwaysAllowed {
		var on []specs.Arch
		for _, arch := range arches {
			t, err := TableFor(arch)
			if err != nil {
				continue
			}
			if _, ok := t.Number(name); ok {
				if x := v.of(name); x.Conditional || !allows(x.Action) {
					on = append(on, arch)
				}
			}
		}
		if len(on) > 0 {
			c.add(Warning, cmp.Or(where[name], "syscalls"), "forbids %q on %s: the workload will die at random (signal return, interrupted calls, exit); allow it", name, joinStrings(on))
		}
	}
	c.lintArgs(p, opts, arches, v, where, refName)
}

// ArgSensitive are syscalls whose arguments decide what they reach: allowed
// whatever their arguments, they give namespaces, any socket family, any
// personality or terminal injection.
var ArgSensitive = map[string]string{
	"clone":       "clone(CLONE_NEWUSER)",
	"clone3":      "clone3 with CLONE_NEWUSER, which no filter can check (answer it with ENOSYS)",
	"unshare":     "unshare(CLONE_NEWUSER)",
	"socket":      "socket(AF_ALG), socket(AF_VSOCK)",
	"ioctl":       "ioctl(TIOCSTI)",
	"personality": "personality(ADDR_NO_RANDOMIZE)",
}

// lintArgs warns about argument-level width: syscalls whose arguments matter
// allowed whatever their arguments, anything wider than the reference at the
// argument level, rule shapes libseccomp compiles inexactly, and i386's
// socketcall, which no socket rule can see through.
func (c *checker) lintArgs(p *specs.LinuxSeccomp, opts CheckOptions, arches []specs.Arch, v verdicts, where map[string]string, refName string) {
	var ref *specs.LinuxSeccomp
	if opts.Reference != nil && len(arches) > 0 {
		ref = opts.Reference(arches[0])
	}
	refCond := map[string]bool{}
	if ref != nil {
		for _, sc := range ref.Syscalls {
			if len(sc.Args) > 0 && allows(sc.Action) {
				for _, n := range sc.Names {
					refCond[n] = true
				}
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(ArgSensitive)) {
		x := v.of(name)
		if x.Conditional || !allows(x.Action) || where[name] == "" {
			continue
		}
		if refCond[name] {
			c.add(Warning, where[name], "allows %q whatever its arguments, so %s, which %s refuses: allow only the values the workload uses (syscage record does)", name, ArgSensitive[name], refName)
		} else {
			c.add(Warning, where[name], "allows %q whatever its arguments, including %s: allow only the values the workload uses (syscage record does)", name, ArgSensitive[name])
		}
	}
	if ref != nil && !allows(p.DefaultAction) {
		if _, dropped, err := Clip("profile", p, refName, ref); err == nil {
			for _, d := range dropped {
				if len(d.Args) == 0 {
					continue // a name the reference forbids: said above
				}
				c.add(Warning, cmp.Or(where[d.Name], "syscalls"), "allows %s, which %s refuses", d, refName)
			}
		}
	}
	// Range comparisons on one argument across one syscall's rules.
	ranges := map[string]map[uint]int{}
	for _, sc := range p.Syscalls {
		for _, a := range sc.Args {
			if a.Op == specs.OpLessThan || a.Op == specs.OpLessEqual || a.Op == specs.OpGreaterThan || a.Op == specs.OpGreaterEqual {
				for _, n := range sc.Names {
					if ranges[n] == nil {
						ranges[n] = map[uint]int{}
					}
					ranges[n][a.Index]++
				}
			}
		}
	}
	for _, n := range slices.Sorted(maps.Keys(ranges)) {
		for _, idx := range slices.Sorted(maps.Keys(ranges[n])) {
			if ranges[n][idx] > 1 {
				c.add(Warning, cmp.Or(where[n], "syscalls"), "puts %d range comparisons (LT, LE, GT, GE) on argument %d of %q: libseccomp (2.5.4, with runc 1.1.5) compiles such rules inexactly, so runtimes may not enforce what the profile says; use sets of SCMP_CMP_EQ values or SCMP_CMP_MASKED_EQ", ranges[n][idx], idx, n)
			}
		}
	}
	if slices.Contains(arches, specs.ArchX86) {
		if x := v.of("socketcall"); allows(x.Action) || v.condAllow["socketcall"] {
			c.add(Warning, cmp.Or(where["socketcall"], "syscalls"), "allows \"socketcall\" on SCMP_ARCH_X86: seccomp cannot read its argument array, so no socket rule binds 32-bit programs that call through it")
		}
	}
}

// namePaths maps each name to the path of its first unconditional mention, or
// else its first mention.
func namePaths(p *specs.LinuxSeccomp) map[string]string {
	out := map[string]string{}
	for pass := range 2 {
		for i, sc := range p.Syscalls {
			if (pass == 0) != (len(sc.Args) == 0) {
				continue
			}
			for j, name := range sc.Names {
				if _, ok := out[name]; !ok {
					out[name] = fmt.Sprintf("syscalls[%d].names[%d]", i, j)
				}
			}
		}
	}
	return out
}

func setOf(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func joinStrings[T ~string](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = string(x)
	}
	return strings.Join(s, ", ")
}
