package profile

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func errnoProfile(syscalls ...specs.LinuxSyscall) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1), Syscalls: syscalls}
}

func plainRule(action specs.LinuxSeccompAction, names ...string) specs.LinuxSyscall {
	return specs.LinuxSyscall{Names: names, Action: action}
}

func errnoRule(errno uint, names ...string) specs.LinuxSyscall {
	return specs.LinuxSyscall{Names: names, Action: specs.ActErrno, ErrnoRet: uintp(errno)}
}

func argRule(action specs.LinuxSeccompAction, name string, value uint64) specs.LinuxSyscall {
	return specs.LinuxSyscall{
		Names:  []string{name},
		Action: action,
		Args:   []specs.LinuxSeccompArg{{Index: 0, Value: value, Op: specs.OpEqualTo}},
	}
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name string
		in   []Named
		want *specs.LinuxSeccomp
	}{
		{
			name: "one profile is sorted and compacted",
			in: []Named{{"a", &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1),
				Architectures: []specs.Arch{specs.ArchX86, specs.ArchX86_64, specs.ArchX86},
				Syscalls: []specs.LinuxSyscall{
					plainRule(specs.ActAllow, "write", "read"),
					plainRule(specs.ActAllow, "read", "close"),
				},
			}}},
			want: &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1),
				Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
				Syscalls:      []specs.LinuxSyscall{plainRule(specs.ActAllow, "close", "read", "write")},
			},
		},
		{
			name: "plain names unioned per action",
			in: []Named{
				{"a", errnoProfile(plainRule(specs.ActAllow, "read", "write"), plainRule(specs.ActLog, "ptrace"))},
				{"b", errnoProfile(plainRule(specs.ActAllow, "close", "read"), plainRule(specs.ActLog, "bpf"))},
			},
			want: errnoProfile(
				plainRule(specs.ActAllow, "close", "read", "write"),
				plainRule(specs.ActLog, "bpf", "ptrace"),
			),
		},
		{
			name: "ERRNO with different errnoRet are separate rules; absent errnoRet is EPERM",
			in: []Named{
				{"a", errnoProfile(errnoRule(1, "ptrace"), errnoRule(38, "bpf"))},
				{"b", errnoProfile(errnoRule(1, "kexec_load"), plainRule(specs.ActErrno, "mount"))},
			},
			want: errnoProfile(
				errnoRule(1, "kexec_load", "mount", "ptrace"),
				errnoRule(38, "bpf"),
			),
		},
		{
			name: "architectures unioned and ordered",
			in: []Named{
				{"a", &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Architectures: []specs.Arch{specs.ArchARM, specs.ArchX86}}},
				{"b", &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Architectures: []specs.Arch{specs.ArchAARCH64, specs.ArchX86_64, specs.ArchX86}}},
			},
			want: &specs.LinuxSeccomp{
				DefaultAction: specs.ActKillProcess,
				Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchAARCH64, specs.ArchARM},
			},
		},
		{
			name: "flags unioned and sorted",
			in: []Named{
				{"a", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagLog}}},
				{"b", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagWaitKillableRecv}}},
			},
			want: &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Flags: []specs.LinuxSeccompFlag{
					specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv,
				},
			},
		},
		{
			name: "rules with args kept once and not flattened",
			in: []Named{
				{"a", errnoProfile(plainRule(specs.ActAllow, "read"), argRule(specs.ActAllow, "personality", 8))},
				{"b", errnoProfile(argRule(specs.ActAllow, "personality", 8), argRule(specs.ActAllow, "personality", 0))},
			},
			want: errnoProfile(
				plainRule(specs.ActAllow, "read"),
				argRule(specs.ActAllow, "personality", 0),
				argRule(specs.ActAllow, "personality", 8),
			),
		},
		{
			name: "name with args and plain in another action is no conflict",
			in: []Named{
				{"a", errnoProfile(plainRule(specs.ActAllow, "read"), argRule(specs.ActErrno, "read", 3))},
				{"b", errnoProfile(plainRule(specs.ActAllow, "read"))},
			},
			want: errnoProfile(
				plainRule(specs.ActAllow, "read"),
				argRule(specs.ActErrno, "read", 3),
			),
		},
		{
			name: "listener taken from the inputs",
			in: []Named{
				{"a", &specs.LinuxSeccomp{DefaultAction: specs.ActNotify, ListenerPath: "/run/s.sock", ListenerMetadata: "m"}},
				{"b", &specs.LinuxSeccomp{DefaultAction: specs.ActNotify, ListenerPath: "/run/s.sock", ListenerMetadata: "m"}},
			},
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActNotify, ListenerPath: "/run/s.sock", ListenerMetadata: "m"},
		},
		{
			name: "listener of a later input kept",
			in: []Named{
				{"a", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}},
				{"b", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, ListenerPath: "/run/s.sock"}},
				{"c", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}},
			},
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, ListenerPath: "/run/s.sock"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Merge(tt.in...)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestMergeErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      []Named
		wantErr []string
	}{
		{
			name:    "no profiles",
			wantErr: []string{"merge: no profiles"},
		},
		{
			name: "different default actions",
			in: []Named{
				{"old.json", errnoProfile()},
				{"new.json", &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess}},
			},
			wantErr: []string{"old.json and new.json differ in default action", "SCMP_ACT_ERRNO errno 1", "SCMP_ACT_KILL_PROCESS"},
		},
		{
			name: "different default errno",
			in: []Named{
				{"old.json", errnoProfile()},
				{"new.json", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(38)}},
			},
			wantErr: []string{"old.json and new.json differ in default action", "errno 1 vs SCMP_ACT_ERRNO errno 38"},
		},
		{
			// Absent is EPERM, 0 makes denied calls succeed: merging must not pick one
			// by input order.
			name: "absent vs zero default errno",
			in: []Named{
				{"old.json", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}},
				{"new.json", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(0)}},
			},
			wantErr: []string{"old.json and new.json differ in default action", "SCMP_ACT_ERRNO vs SCMP_ACT_ERRNO errno 0"},
		},
		{
			name: "different default in third input",
			in: []Named{
				{"a.json", errnoProfile()},
				{"b.json", errnoProfile()},
				{"c.json", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}},
			},
			wantErr: []string{"a.json and c.json differ in default action"},
		},
		{
			name: "different listeners",
			in: []Named{
				{"a.json", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}},
				{"b.json", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, ListenerPath: "/run/b.sock"}},
				{"c.json", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, ListenerPath: "/run/b.sock", ListenerMetadata: "c"}},
			},
			wantErr: []string{`b.json and c.json differ in seccomp listener ("/run/b.sock" "" vs "/run/b.sock" "c")`},
		},
		{
			name: "ALLOW vs ERRNO",
			in: []Named{
				{"a.json", errnoProfile(plainRule(specs.ActAllow, "read", "ptrace"))},
				{"b.json", errnoProfile(errnoRule(1, "ptrace"))},
			},
			wantErr: []string{`a.json and b.json give "ptrace" different actions`, "SCMP_ACT_ALLOW vs SCMP_ACT_ERRNO errno 1"},
		},
		{
			name: "ERRNO with different errnoRet",
			in: []Named{
				{"a.json", errnoProfile(errnoRule(1, "bpf"))},
				{"b.json", errnoProfile(errnoRule(38, "bpf"))},
			},
			wantErr: []string{`a.json and b.json give "bpf" different actions`, "errno 1 vs SCMP_ACT_ERRNO errno 38"},
		},
		{
			name: "ERRNO EPERM and ERRNO EACCES",
			in: []Named{
				{"a.json", errnoProfile(plainRule(specs.ActErrno, "bpf"))},
				{"b.json", errnoProfile(errnoRule(13, "bpf"))},
			},
			wantErr: []string{`a.json and b.json give "bpf" different actions`},
		},
		{
			name: "conflict inside one profile",
			in: []Named{
				{"a.json", errnoProfile(plainRule(specs.ActAllow, "bpf"), plainRule(specs.ActLog, "bpf"))},
			},
			wantErr: []string{`a.json gives "bpf" two actions`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Merge(tt.in...)
			if err == nil {
				t.Fatalf("Merge succeeded: %+v", got)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// Each pool name has one fixed plain action, so random profiles never conflict.
var (
	mergePoolNames   = []string{"read", "write", "close", "openat", "mmap", "ptrace", "bpf", "mount", "kexec_load", "personality", "socket", "clone3"}
	mergePoolActions = []specs.LinuxSyscall{
		plainRule(specs.ActAllow),
		errnoRule(1),
		errnoRule(38),
		plainRule(specs.ActLog),
	}
	mergePoolArgRules = []specs.LinuxSyscall{
		argRule(specs.ActAllow, "personality", 0),
		argRule(specs.ActAllow, "personality", 8),
		argRule(specs.ActErrno, "socket", 16),
		{Names: []string{"clone", "clone3"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x7e020000, Op: specs.OpMaskedEqual}}},
	}
	mergePoolArches = []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64, specs.ArchARM, specs.ArchRISCV64}
	mergePoolFlags  = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv}
)

// randomProfile returns a small profile over the pools, with duplicates and any order.
func randomProfile(r *rand.Rand) *specs.LinuxSeccomp {
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1)}
	if r.IntN(3) == 0 {
		p.ListenerPath = "/run/seccomp.sock"
	}
	for range r.IntN(4) {
		p.Architectures = append(p.Architectures, mergePoolArches[r.IntN(len(mergePoolArches))])
	}
	for range r.IntN(3) {
		p.Flags = append(p.Flags, mergePoolFlags[r.IntN(len(mergePoolFlags))])
	}
	for range r.IntN(5) {
		if r.IntN(4) == 0 {
			rule := mergePoolArgRules[r.IntN(len(mergePoolArgRules))]
			rule.Names = append([]string(nil), rule.Names...)
			p.Syscalls = append(p.Syscalls, rule)
			continue
		}
		a := r.IntN(len(mergePoolActions))
		rule := mergePoolActions[a]
		rule.Names = nil
		for i, name := range mergePoolNames {
			if i%len(mergePoolActions) == a && r.IntN(2) == 0 {
				rule.Names = append(rule.Names, name)
			}
		}
		if len(rule.Names) == 0 {
			rule.Names = []string{mergePoolNames[a]}
		}
		r.Shuffle(len(rule.Names), func(i, j int) { rule.Names[i], rule.Names[j] = rule.Names[j], rule.Names[i] })
		p.Syscalls = append(p.Syscalls, rule)
	}
	return p
}

func mustMerge(t *testing.T, in ...*specs.LinuxSeccomp) *specs.LinuxSeccomp {
	t.Helper()
	named := make([]Named, len(in))
	for i, p := range in {
		named[i] = Named{Name: string(rune('a' + i)), Profile: p}
	}
	out, err := Merge(named...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustMarshal(t *testing.T, p *specs.LinuxSeccomp) string {
	t.Helper()
	b, err := Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMergeProperties(t *testing.T) {
	iterations := 2000
	if testing.Short() {
		iterations = 300
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range iterations {
		a, b, c := randomProfile(r), randomProfile(r), randomProfile(r)
		ma := mustMarshal(t, mustMerge(t, a))
		tests := []struct {
			name      string
			got, want string
		}{
			{"commutative", mustMarshal(t, mustMerge(t, b, a)), mustMarshal(t, mustMerge(t, a, b))},
			{
				"associative",
				mustMarshal(t, mustMerge(t, a, mustMerge(t, b, c))),
				mustMarshal(t, mustMerge(t, mustMerge(t, a, b), c)),
			},
			{"flat", mustMarshal(t, mustMerge(t, a, b, c)), mustMarshal(t, mustMerge(t, mustMerge(t, a, b), c))},
			{"idempotent", mustMarshal(t, mustMerge(t, a, a)), ma},
			{"normal form", mustMarshal(t, mustMerge(t, mustMerge(t, a))), ma},
		}
		for _, tt := range tests {
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Fatalf("%s fails for\na = %s\nb = %s\nc = %s\n(-want +got):\n%s",
					tt.name, mustMarshal(t, a), mustMarshal(t, b), mustMarshal(t, c), diff)
			}
		}
		// Merge output is a profile Parse accepts and that round-trips byte for byte.
		checkStable(t, "Merge(a, b)", []byte(mustMarshal(t, mustMerge(t, a, b))))
	}
}

// TestMergeKeepsInputs checks Merge does not reorder or alias its inputs' slices.
func TestMergeKeepsInputs(t *testing.T) {
	a := errnoProfile(plainRule(specs.ActAllow, "write", "read"))
	a.Architectures = []specs.Arch{specs.ArchX86, specs.ArchX86_64}
	a.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagLog}
	before := mustMarshal(t, a)
	out := mustMerge(t, a, errnoProfile(plainRule(specs.ActAllow, "close")))
	out.Syscalls[0].Names[0] = "changed"
	out.Architectures[0] = "changed"
	out.Flags[0] = "changed"
	if diff := cmp.Diff(before, mustMarshal(t, a)); diff != "" {
		t.Errorf("input changed (-before +after):\n%s", diff)
	}
}

func FuzzMerge(f *testing.F) {
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"architectures":["SCMP_ARCH_X86"],"syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"},{"names":["bpf"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}`),
		[]byte(`{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"flags":["SECCOMP_FILTER_FLAG_LOG"],"syscalls":[{"names":["close","read"],"action":"SCMP_ACT_ALLOW"},{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]}]}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["ptrace"],"action":"SCMP_ACT_LOG"}]}`),
		[]byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["ptrace"],"action":"SCMP_ACT_ALLOW"}]}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ERRNO"}`), []byte(`{"defaultAction":"SCMP_ACT_KILL"}`))
	f.Fuzz(func(t *testing.T, da, db []byte) {
		a, err := Parse("a", da)
		if err != nil {
			return
		}
		b, err := Parse("b", db)
		if err != nil {
			return
		}
		ab, errAB := Merge(Named{"a", a}, Named{"b", b})
		ba, errBA := Merge(Named{"b", b}, Named{"a", a})
		if (errAB == nil) != (errBA == nil) {
			t.Fatalf("Merge(a, b) err = %v but Merge(b, a) err = %v", errAB, errBA)
		}
		if errAB != nil {
			// A conflict inside one input names that input twice.
			if !strings.HasPrefix(errAB.Error(), "a ") && !strings.HasPrefix(errAB.Error(), "b ") {
				t.Errorf("error %q does not start with an input's name", errAB)
			}
			return
		}
		if diff := cmp.Diff(mustMarshal(t, ab), mustMarshal(t, ba)); diff != "" {
			t.Fatalf("Merge not commutative (-ab +ba):\n%s", diff)
		}
		if diff := cmp.Diff(mustMarshal(t, ab), mustMarshal(t, mustMerge(t, ab))); diff != "" {
			t.Fatalf("Merge output not a normal form (-once +twice):\n%s", diff)
		}
	})
}

// An ERRNO rule without errnoRet returns EPERM (runtime-spec), so it is the same
// rule as one with errnoRet 1, in either order, and the output spells it out.
func TestMergeAbsentErrnoIsEPERM(t *testing.T) {
	a := Named{"a.json", errnoProfile(plainRule(specs.ActErrno, "bpf"))}
	b := Named{"b.json", errnoProfile(errnoRule(1, "ptrace"))}
	for _, in := range [][]Named{{a, b}, {b, a}} {
		got, err := Merge(in...)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Syscalls) != 1 || got.Syscalls[0].ErrnoRet == nil || *got.Syscalls[0].ErrnoRet != 1 {
			t.Fatalf("want one ERRNO 1 rule, got %+v", got.Syscalls)
		}
		if !slices.Equal(got.Syscalls[0].Names, []string{"bpf", "ptrace"}) {
			t.Errorf("names: %v", got.Syscalls[0].Names)
		}
	}
}
