package seccomp

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/syscage/syscage/profile"
)

func parse(t *testing.T, s string) *specs.LinuxSeccomp {
	t.Helper()
	var p specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		t.Fatalf("profile %s: %v", s, err)
	}
	return &p
}

func compile(t *testing.T, p *specs.LinuxSeccomp, opts Options) *Filter {
	t.Helper()
	if opts.Goarch == "" {
		opts.Goarch = "amd64"
	}
	f, err := Compile(p, opts)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return f
}

func call(t *testing.T, f *Filter, arch specs.Arch, name string, args ...uint64) uint32 {
	t.Helper()
	ret, err := f.Call(arch, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return ret
}

const (
	allow  = unix.SECCOMP_RET_ALLOW
	eperm  = unix.SECCOMP_RET_ERRNO | 1
	x86_64 = specs.ArchX86_64
	x86    = specs.ArchX86
)

func errno(e uint32) uint32 { return unix.SECCOMP_RET_ERRNO | e }

func TestActions(t *testing.T) {
	p := parse(t, `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[
		{"names":["getpid"],"action":"SCMP_ACT_ALLOW"},
		{"names":["getppid"],"action":"SCMP_ACT_ERRNO"},
		{"names":["getuid"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
		{"names":["getgid"],"action":"SCMP_ACT_KILL"},
		{"names":["geteuid"],"action":"SCMP_ACT_KILL_PROCESS"},
		{"names":["getegid"],"action":"SCMP_ACT_KILL_THREAD"},
		{"names":["getpgrp"],"action":"SCMP_ACT_TRAP"},
		{"names":["getsid"],"action":"SCMP_ACT_TRACE","errnoRet":7},
		{"names":["gettid"],"action":"SCMP_ACT_TRACE"},
		{"names":["sysinfo"],"action":"SCMP_ACT_LOG"}]}`)
	f := compile(t, p, Options{})
	for name, want := range map[string]uint32{
		"getpid":  allow,
		"getppid": eperm,
		"getuid":  errno(13),
		"getgid":  unix.SECCOMP_RET_KILL_THREAD,
		"geteuid": unix.SECCOMP_RET_KILL_PROCESS,
		"getegid": unix.SECCOMP_RET_KILL_THREAD,
		"getpgrp": unix.SECCOMP_RET_TRAP,
		"getsid":  unix.SECCOMP_RET_TRACE | 7,
		"gettid":  unix.SECCOMP_RET_TRACE | 1,
		"sysinfo": unix.SECCOMP_RET_LOG,
		"uname":   errno(38),
	} {
		if got := call(t, f, x86_64, name); got != want {
			t.Errorf("%s: got %s, want %s", name, Action(got), Action(want))
		}
	}
}

// ref is the profile's meaning, written plainly, to check the compiled program
// against: the semantics Compile documents, without segments, trees or jumps.
func ref(p *specs.LinuxSeccomp, ab abi, d Data, enosys bool) uint32 {
	defRet, _ := retOf("", p.DefaultAction, p.DefaultErrnoRet, "")
	t, _ := profile.TableFor(ab.arch)
	nameOf := func(nr uint32) string {
		if nr < ab.base {
			return ""
		}
		n, _ := t.Name(int(nr - ab.base))
		return n
	}
	name := nameOf(d.Nr)
	argOK := func(a specs.LinuxSeccompArg) bool {
		v, x, y := d.Args[a.Index], a.Value, a.ValueTwo
		if ab.bits32 {
			v, x, y = uint64(uint32(v)), uint64(uint32(x)), uint64(uint32(y))
		}
		switch a.Op {
		case specs.OpEqualTo:
			return v == x
		case specs.OpNotEqual:
			return v != x
		case specs.OpLessThan:
			return v < x
		case specs.OpLessEqual:
			return v <= x
		case specs.OpGreaterThan:
			return v > x
		case specs.OpGreaterEqual:
			return v >= x
		case specs.OpMaskedEqual:
			return v&x == y
		}
		panic(a.Op)
	}
	// Unconditional first.
	for _, sc := range p.Syscalls {
		ret, _ := retOf("", sc.Action, sc.ErrnoRet, "")
		if ret != defRet && len(sc.Args) == 0 && name != "" && slices.Contains(sc.Names, name) {
			return ret
		}
	}
	for _, sc := range p.Syscalls {
		ret, _ := retOf("", sc.Action, sc.ErrnoRet, "")
		if ret == defRet || len(sc.Args) == 0 || name == "" || !slices.Contains(sc.Names, name) {
			continue
		}
		seen := map[uint]bool{}
		dup := false
		for _, a := range sc.Args {
			dup = dup || seen[a.Index]
			seen[a.Index] = true
		}
		matched := !dup
		for _, a := range sc.Args {
			if dup && argOK(a) {
				matched = true
			}
			if !dup && !argOK(a) {
				matched = false
			}
		}
		if matched {
			return ret
		}
	}
	if enosys {
		max := -1
		for _, sc := range p.Syscalls {
			for _, n := range sc.Names {
				if nr, ok := t.Number(n); ok && nr > max {
					max = nr
				}
			}
		}
		if max >= 0 && uint64(d.Nr) > uint64(max)+uint64(ab.base) {
			return errno(uint32(unix.ENOSYS))
		}
	}
	return defRet
}

var ops = []specs.LinuxSeccompOperator{
	specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
	specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
}

// interesting are values around the edges of the two 32-bit halves.
var interesting = []uint64{0, 1, 2, 0x7fffffff, 0x80000000, 0xffffffff, 1 << 32, 1<<32 + 1, 1<<32 - 1 + 1<<33,
	0x1_0000_0002, 0xffffffff_00000000, 0xffffffff_fffffffe, 0xffffffff_ffffffff, 0x8000_0000_0000_0000}

func randValue(r *rand.Rand) uint64 {
	if r.IntN(3) == 0 {
		return r.Uint64()
	}
	return interesting[r.IntN(len(interesting))]
}

// TestAgainstReference compiles random profiles and compares the program, run on
// random syscalls, with ref: all operators on both halves of 64-bit values, several
// rules for one syscall, conditions on one argument, and the three x86 ABIs.
func TestAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	names := []string{"getppid", "socket", "clone", "personality", "read", "write", "mmap", "ioctl"}
	actions := []string{`"SCMP_ACT_ALLOW"`, `"SCMP_ACT_ERRNO","errnoRet":5`, `"SCMP_ACT_ERRNO"`, `"SCMP_ACT_KILL_PROCESS"`, `"SCMP_ACT_TRAP"`, `"SCMP_ACT_LOG"`}
	iters := 300
	if testing.Short() {
		iters = 60
	}
	for it := range iters {
		var rules []string
		for range 1 + r.IntN(8) {
			var args []string
			for range r.IntN(4) {
				args = append(args, `{"index":`+itoa(uint64(r.IntN(3)))+`,"value":`+itoa(randValue(r))+`,"valueTwo":`+itoa(randValue(r))+`,"op":"`+string(ops[r.IntN(len(ops))])+`"}`)
			}
			rules = append(rules, `{"names":["`+names[r.IntN(len(names))]+`","`+names[r.IntN(len(names))]+`"],"action":`+actions[r.IntN(len(actions))]+`,"args":[`+strings.Join(args, ",")+`]}`)
		}
		def := []string{`"SCMP_ACT_ERRNO","defaultErrnoRet":99`, `"SCMP_ACT_ALLOW"`, `"SCMP_ACT_KILL"`}[r.IntN(3)]
		src := `{"defaultAction":` + def + `,"architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],"syscalls":[` + strings.Join(rules, ",") + `]}`
		p := parse(t, src)
		enosys := it%2 == 0
		f, err := Compile(p, Options{Goarch: "amd64", RuncENOSYS: enosys})
		if err != nil && strings.Contains(err.Error(), "same conditions") {
			continue // a profile runc refuses, as TestRefused checks
		}
		if err != nil {
			t.Fatal(err)
		}
		m, _ := machineFor("amd64")
		for range 200 {
			ab := m.abis[r.IntN(len(m.abis))]
			tb, _ := profile.TableFor(ab.arch)
			nr, _ := tb.Number(names[r.IntN(len(names))])
			d := Data{Nr: uint32(nr) + ab.base, Arch: ab.audit}
			if r.IntN(10) == 0 {
				d.Nr = uint32(r.IntN(600)) + ab.base
			}
			for i := range d.Args {
				d.Args[i] = randValue(r)
				if ab.bits32 {
					d.Args[i] = uint64(uint32(d.Args[i])) // the kernel zero-extends compat registers
				}
			}
			got, err := f.Run(d)
			if err != nil {
				t.Fatal(err)
			}
			if want := ref(p, ab, d, enosys && !isAllow(p.DefaultAction)); got != want {
				t.Fatalf("profile %s\nenosys %v, %s call %+v: got %s, want %s", src, enosys, ab.arch, d, Action(got), Action(want))
			}
		}
	}
}

func itoa(v uint64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestPrecedence(t *testing.T) {
	for _, tc := range []struct {
		name, rules string
		args        []uint64
		want        uint32
	}{
		{"unconditional wins over an earlier conditional", `
			{"names":["socket"],"action":"SCMP_ACT_ERRNO","errnoRet":5,"args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
			{"names":["socket"],"action":"SCMP_ACT_ALLOW"}`, []uint64{1}, allow},
		{"first unconditional wins", `
			{"names":["socket"],"action":"SCMP_ACT_ERRNO","errnoRet":5},
			{"names":["socket"],"action":"SCMP_ACT_ALLOW"}`, nil, errno(5)},
		{"conditional rules in order", `
			{"names":["socket"],"action":"SCMP_ACT_ERRNO","errnoRet":5,"args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
			{"names":["socket"],"action":"SCMP_ACT_ERRNO","errnoRet":6,"args":[{"index":1,"value":1,"op":"SCMP_CMP_EQ"}]}`, []uint64{1, 1}, errno(5)},
		{"conditions AND", `
			{"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":2,"op":"SCMP_CMP_EQ"}]}`, []uint64{1, 3}, eperm},
		{"same argument twice is OR, as runc", `
			{"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]}`, []uint64{2}, allow},
		{"rule with the default action skipped", `
			{"names":["socket"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
			{"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}`, []uint64{1}, allow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := compile(t, parse(t, `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[`+tc.rules+`]}`), Options{})
			if got := call(t, f, x86_64, "socket", tc.args...); got != tc.want {
				t.Errorf("got %s, want %s", Action(got), Action(tc.want))
			}
		})
	}
}

func TestArchitectures(t *testing.T) {
	p := parse(t, `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["getpid","socketcall"],"action":"SCMP_ACT_ALLOW"}]}`)
	f := compile(t, p, Options{})
	if !slices.Equal(f.Arches, []specs.Arch{x86_64}) {
		t.Errorf("arches %v: want native only", f.Arches)
	}
	run := func(f *Filter, d Data) uint32 {
		t.Helper()
		ret, err := f.Run(d)
		if err != nil {
			t.Fatal(err)
		}
		return ret
	}
	if got := run(f, Data{Nr: 20, Arch: unix.AUDIT_ARCH_I386}); got != BadArch {
		t.Errorf("i386 call without SCMP_ARCH_X86: %s, want bad arch", Action(got))
	}
	if got := run(f, Data{Nr: 39 | profile.X32SyscallBit, Arch: unix.AUDIT_ARCH_X86_64}); got != BadArch {
		t.Errorf("x32 call without SCMP_ARCH_X32: %s, want bad arch", Action(got))
	}
	if got := run(f, Data{Nr: 39, Arch: unix.AUDIT_ARCH_AARCH64}); got != BadArch {
		t.Errorf("aarch64 call: %s, want bad arch", Action(got))
	}

	// Listed: i386 names its own numbers (getpid is 20), x32 adds the bit, and
	// arguments on i386 compare as 32 bits.
	p = parse(t, `{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32","SCMP_ARCH_AARCH64"],"syscalls":[
		{"names":["getpid"],"action":"SCMP_ACT_ALLOW"},
		{"names":["getppid"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":4294967297,"op":"SCMP_CMP_EQ"}]}]}`)
	f = compile(t, p, Options{})
	if !slices.Equal(f.Arches, []specs.Arch{x86_64, specs.ArchX32, x86}) {
		t.Errorf("arches %v: want x86_64, x32, x86 (aarch64 cannot occur on amd64)", f.Arches)
	}
	for _, tc := range []struct {
		arch specs.Arch
		name string
		args []uint64
		want uint32
	}{
		{x86, "getpid", nil, allow},
		{specs.ArchX32, "getpid", nil, allow},
		{x86_64, "getppid", []uint64{1}, eperm},
		{x86_64, "getppid", []uint64{1<<32 + 1}, allow},
		{x86, "getppid", []uint64{1}, allow}, // the value's high half is not compared
		{specs.ArchX32, "getppid", []uint64{1}, eperm},
	} {
		if got := call(t, f, tc.arch, tc.name, tc.args...); got != tc.want {
			t.Errorf("%s %s%v: got %s, want %s", tc.arch, tc.name, tc.args, Action(got), Action(tc.want))
		}
	}
	if got := run(f, Data{Nr: 20, Arch: unix.AUDIT_ARCH_I386}); got != allow {
		t.Errorf("i386 getpid (20): %s", Action(got))
	}
}

func TestRuncENOSYS(t *testing.T) {
	src := `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","getppid"],"action":"SCMP_ACT_ALLOW"},{"names":["openat"],"action":"SCMP_ACT_ERRNO"}]}`
	f := compile(t, parse(t, src), Options{RuncENOSYS: true})
	for name, want := range map[string]uint32{
		"read":       allow,
		"write":      eperm,
		"openat":     eperm,                      // 257: the highest name, though its rule is skipped
		"newfstatat": errno(uint32(unix.ENOSYS)), // 262
		"clone3":     errno(uint32(unix.ENOSYS)),
	} {
		if got := call(t, f, x86_64, name); got != want {
			t.Errorf("%s: got %s, want %s", name, Action(got), Action(want))
		}
	}
	for _, def := range []string{`"SCMP_ACT_ALLOW"`, `"SCMP_ACT_LOG"`, `"SCMP_ACT_TRACE"`, `"SCMP_ACT_ERRNO","defaultErrnoRet":38`} {
		src := `{"defaultAction":` + def + `,"syscalls":[{"names":["read"],"action":"SCMP_ACT_KILL"}]}`
		p := parse(t, src)
		f := compile(t, p, Options{RuncENOSYS: true})
		want, _ := retOf("", p.DefaultAction, p.DefaultErrnoRet, "")
		if got := call(t, f, x86_64, "clone3"); got != want {
			t.Errorf("default %s: clone3 got %s, want the default %s", def, Action(got), Action(want))
		}
	}
}

// TestLarge allows every x86_64 syscall but a few and gives hundreds of them
// conditions, so that the program needs long jumps, and checks every syscall.
func TestLarge(t *testing.T) {
	tb, _ := profile.TableFor(x86_64)
	var plain, conds []string
	for i, n := range tb.Names() {
		switch {
		case i%17 == 0:
		case i%2 == 0:
			conds = append(conds, n)
		default:
			plain = append(plain, n)
		}
	}
	q := func(s []string) string { b, _ := json.Marshal(s); return string(b) }
	rules := []string{`{"names":` + q(plain) + `,"action":"SCMP_ACT_ALLOW"}`}
	// A value per syscall, so that no two share a block of conditions.
	for i, n := range conds {
		rules = append(rules,
			`{"names":["`+n+`"],"action":"SCMP_ACT_ALLOW","args":[{"index":1,"value":`+itoa(uint64(i)<<32)+`,"op":"SCMP_CMP_GE"}]}`,
			`{"names":["`+n+`"],"action":"SCMP_ACT_ERRNO","errnoRet":3,"args":[{"index":2,"value":255,"valueTwo":`+itoa(uint64(i%256))+`,"op":"SCMP_CMP_MASKED_EQ"}]}`)
	}
	src := `{"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":[` + strings.Join(rules, ",") + `]}`
	p := parse(t, src)
	f := compile(t, p, Options{})
	if len(f.Program) > 4096 {
		t.Fatalf("program has %d instructions", len(f.Program))
	}
	m, _ := machineFor("amd64")
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range tb.Names() {
		nr, _ := tb.Number(n)
		for range 8 {
			d := Data{Nr: uint32(nr), Arch: unix.AUDIT_ARCH_X86_64}
			for i := range d.Args {
				d.Args[i] = randValue(r)
			}
			if r.IntN(2) == 0 {
				d.Args[1] = uint64(r.IntN(len(conds))) << 32
				d.Args[2] = uint64(r.IntN(256))
			}
			got, err := f.Run(d)
			if err != nil {
				t.Fatal(err)
			}
			if want := ref(p, m.abis[0], d, false); got != want {
				t.Fatalf("%s%v: got %s, want %s", n, d.Args, Action(got), Action(want))
			}
		}
	}
	far := 0
	for _, in := range f.Program {
		if in.Code == opJa && in.K > 255 {
			far++
		}
	}
	if far == 0 {
		t.Errorf("no long jump in %d instructions: the test no longer covers them", len(f.Program))
	}
	t.Logf("%d syscalls, %d with conditions: %d instructions, %d long jumps", len(tb.Names()), len(conds), len(f.Program), far)
}

func TestRefused(t *testing.T) {
	for _, tc := range []struct{ profile, want string }{
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid","opn"],"action":"SCMP_ACT_ERRNO"}]}`, `syscalls[0].names[1]: unknown syscall "opn"`},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}`, `syscalls[0].args[0].index: 6`},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_BETWEEN"}]}]}`, `syscalls[0].args[0].op: unknown operator "SCMP_CMP_BETWEEN"`},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOTIFY"}]}`, `syscalls[0].action: SCMP_ACT_NOTIFY needs a seccomp agent`},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_DENY"}]}`, `syscalls[0].action: unknown action "SCMP_ACT_DENY"`},
		{`{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":70000}`, `defaultErrnoRet: 70000 does not fit`},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_KILL","errnoRet":1}]}`, `syscalls[0].errnoRet: SCMP_ACT_KILL returns no errno`},
		{`{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_NEW"]}`, `flags[0]: unknown flag`},
		{`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_Z80"]}`, `architectures[0]: unknown architecture`},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
			{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":1,"op":"SCMP_CMP_EQ"}]},
			{"names":["read"],"action":"SCMP_ACT_KILL","args":[{"index":1,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}]}`,
			`syscalls[1]: read has the same conditions as in syscalls[0] with another action: runc refuses this`},
	} {
		_, err := Compile(parse(t, tc.profile), Options{Goarch: "amd64"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.profile, err, tc.want)
		}
	}
	_, err := Compile(parse(t, `{"defaultAction":"SCMP_ACT_NOTIFY"}`), Options{Goarch: "amd64"})
	if !errors.Is(err, ErrNotSupported) {
		t.Errorf("NOTIFY: %v, want ErrNotSupported", err)
	}
}

func TestFlags(t *testing.T) {
	f := compile(t, parse(t, `{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}`), Options{})
	if f.Flags != unix.SECCOMP_FILTER_FLAG_LOG|unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW {
		t.Errorf("flags %#x", f.Flags)
	}
}

func TestOtherMachines(t *testing.T) {
	p := parse(t, `{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_AARCH64","SCMP_ARCH_ARM","SCMP_ARCH_S390X"],"syscalls":[
		{"names":["getppid"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":4294967298,"op":"SCMP_CMP_EQ"}]}]}`)
	for _, goarch := range []string{"arm64", "s390x", "riscv64", "ppc64le"} {
		f := compile(t, p, Options{Goarch: goarch})
		native := f.Arches[0]
		if got := call(t, f, native, "getppid", 1<<32+2); got != allow {
			t.Errorf("%s: getppid(1<<32+2) %s", goarch, Action(got))
		}
		if got := call(t, f, native, "getppid", 2); got != eperm {
			t.Errorf("%s: getppid(2) %s", goarch, Action(got))
		}
	}
}

func BenchmarkCompileLarge(b *testing.B) {
	tb, _ := profile.TableFor(x86_64)
	names, _ := json.Marshal(tb.Names())
	var p specs.LinuxSeccomp
	json.Unmarshal([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],"syscalls":[{"names":`+string(names)+`,"action":"SCMP_ACT_ALLOW"}]}`), &p)
	for b.Loop() {
		if _, err := Compile(&p, Options{Goarch: "amd64"}); err != nil {
			b.Fatal(err)
		}
	}
}
