package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/profile"
	"github.com/syscage/syscage/profiles"
	"github.com/syscage/syscage/tests/internal/rt"
	"github.com/syscage/syscage/tests/testenv"
)

// The agreement matrix: each profile runs a static probe once under `syscage exec`
// and once in a runc container whose linux.seccomp is the same profile, and every
// probe call must end the same way on both sides: succeed, fail with the same errno,
// or kill the process with the same signal.

// probeBase are the calls every probe process needs, allowed in every profile on
// both sides alike: the static probe's start-up and output (x86_64 and i386 names),
// and what runc 1.1 itself does after installing the filter and before the probe's
// execve (it closes its log pipe, walks /proc/self/fd, and its Go runtime runs on).
var probeBase = []string{
	// probe, x86_64 and i386
	"execve", "brk", "arch_prctl", "set_thread_area", "set_tid_address", "set_robust_list", "rseq",
	"prlimit64", "ugetrlimit", "readlink", "getrandom", "mprotect", "newfstatat", "statx", "fstat64",
	"mmap", "mmap2", "munmap", "write", "exit", "exit_group", "wait4", "waitpid",
	// runc after its filter
	"close", "openat", "getdents64", "fcntl", "fcntl64", "futex", "epoll_ctl", "epoll_pwait", "fstatfs",
	"getpid", "read", "nanosleep", "rt_sigreturn", "rt_sigprocmask", "rt_sigaction", "sigaltstack",
	"tgkill", "madvise", "capget", "capset", "prctl", "setgroups", "setuid", "setgid", "setresuid", "setresgid",
}

type probeCall struct {
	label string
	name  string
	args  []uint64
}

func (p probeCall) arg(t *testing.T, arch specs.Arch) string {
	t.Helper()
	tb, err := profile.TableFor(arch)
	if err != nil {
		t.Fatal(err)
	}
	nr, ok := tb.Number(p.name)
	if !ok {
		t.Fatalf("probe %s: %s has no %s", p.label, arch, p.name)
	}
	s := fmt.Sprintf("%s=%x", p.label, nr)
	for _, a := range p.args {
		s += fmt.Sprintf(",%x", a)
	}
	return s
}

type matrixCase struct {
	name    string
	profile string // OCI JSON; probeBase is added as one more SCMP_ACT_ALLOW rule
	i386    bool   // run the 32-bit probe
	calls   []probeCall
	// killers run one per process: each is expected to end it, so the signal is
	// what is compared.
	killers []probeCall
}

const (
	afUnix       = 1
	afInet       = 2
	sockStream   = 1
	cloneNewuser = 0x10000000
	sigchld      = 17
	big          = 0x1_0000_0005 // both halves matter
)

// cmpValues straddle big in each half.
var cmpValues = map[string]uint64{
	"eq": big, "lo-1": big - 1, "lo+1": big + 1, "hi-1": 5, "hi+1": 0x2_0000_0005,
	"hi-1,lo+": 0xffff_ffff, "hi+1,lo-": 0x2_0000_0000, "max": ^uint64(0), "zero": 0,
}

func matrixCases() []matrixCase {
	var cmpCalls []probeCall
	opNames := map[string]string{"getuid": "LT", "getgid": "LE", "geteuid": "GT", "getegid": "GE", "getpgrp": "NE", "getppid": "EQ"}
	for _, name := range []string{"getuid", "getgid", "geteuid", "getegid", "getpgrp", "getppid"} {
		for _, v := range sortedKeys(cmpValues) {
			cmpCalls = append(cmpCalls, probeCall{opNames[name] + "(" + v + ")", name, []uint64{cmpValues[v]}})
		}
	}
	for _, v := range []uint64{0x12000000_00000034, 0x12ffffff_00000034, 0x12000000_ffffff34, 0x13000000_00000034, 0x12000000_00000035, 0x34} {
		cmpCalls = append(cmpCalls, probeCall{fmt.Sprintf("MASKED(%x)", v), "sched_yield", []uint64{0, v}})
	}
	cmpCalls = append(cmpCalls,
		probeCall{"AND(1,2)", "munlockall", []uint64{1, 2}},
		probeCall{"AND(1,3)", "munlockall", []uint64{1, 3}},
		probeCall{"AND(0,2)", "munlockall", []uint64{0, 2}},
		probeCall{"OR(1)", "gettid", []uint64{1}},
		probeCall{"OR(2)", "gettid", []uint64{2}},
		probeCall{"OR(3)", "gettid", []uint64{3}},
	)

	return append([]matrixCase{
		{
			name:    "plain names",
			profile: `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["getppid","getuid"],"action":"SCMP_ACT_ALLOW"}]}`,
			calls: []probeCall{
				{"getppid", "getppid", nil}, {"getuid", "getuid", nil}, {"gettid", "gettid", nil},
				{"uname", "uname", []uint64{0}}, {"sched_yield", "sched_yield", nil},
				// Above every number the profile names: runc's ENOSYS.
				{"clone3", "clone3", []uint64{0, 0}}, {"faccessat2", "faccessat2", []uint64{0, 0, 0, 0}},
			},
		},
		{
			name: "errnoRet and defaultErrnoRet",
			profile: `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":116,"syscalls":[
				{"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
				{"names":["gettid"],"action":"SCMP_ACT_ERRNO","errnoRet":0},
				{"names":["getuid"],"action":"SCMP_ACT_ERRNO"},
				{"names":["getgid"],"action":"SCMP_ACT_ALLOW"}]}`,
			calls: []probeCall{
				{"getppid", "getppid", nil}, {"zero:gettid", "gettid", nil}, {"getuid", "getuid", nil},
				{"getgid", "getgid", nil}, {"uname", "uname", []uint64{0}}, {"clone3", "clone3", []uint64{0, 0}},
			},
		},
		{
			name: "defaultErrnoRet ENOSYS: no ENOSYS stub",
			profile: `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[
				{"names":["getppid"],"action":"SCMP_ACT_ALLOW"}]}`,
			calls: []probeCall{{"getppid", "getppid", nil}, {"uname", "uname", []uint64{0}}, {"clone3", "clone3", []uint64{0, 0}}},
		},
		{
			name: "socket only for AF_UNIX",
			profile: `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
				{"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}]}`,
			calls: []probeCall{
				{"socket(AF_UNIX)", "socket", []uint64{afUnix, sockStream, 0}},
				{"socket(AF_INET)", "socket", []uint64{afInet, sockStream, 0}},
				// The kernel reads an int; the filter all 64 bits.
				{"socket(1<<32|AF_UNIX)", "socket", []uint64{1<<32 | afUnix, sockStream, 0}},
			},
		},
		{
			name: "masked clone flags: no CLONE_NEWUSER",
			profile: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
				{"names":["clone"],"action":"SCMP_ACT_ERRNO","errnoRet":1,"args":[{"index":0,"value":268435456,"valueTwo":268435456,"op":"SCMP_CMP_MASKED_EQ"}]}]}`,
			calls: []probeCall{
				{"fork:clone(SIGCHLD)", "clone", []uint64{sigchld}},
				{"fork:clone(CLONE_NEWUSER|SIGCHLD)", "clone", []uint64{cloneNewuser | sigchld}},
			},
		},
		{
			name: "comparisons on both halves",
			profile: `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"syscalls":[
				{"names":["getuid"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":4294967301,"op":"SCMP_CMP_LT"}]},
				{"names":["getgid"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":4294967301,"op":"SCMP_CMP_LE"}]},
				{"names":["geteuid"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":4294967301,"op":"SCMP_CMP_GT"}]},
				{"names":["getegid"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":4294967301,"op":"SCMP_CMP_GE"}]},
				{"names":["getpgrp"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":4294967301,"op":"SCMP_CMP_NE"}]},
				{"names":["getppid"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":4294967301,"op":"SCMP_CMP_EQ"}]},
				{"names":["sched_yield"],"action":"SCMP_ACT_ALLOW","args":[{"index":1,"value":18374686479671623935,"valueTwo":1297036692682702900,"op":"SCMP_CMP_MASKED_EQ"}]},
				{"names":["munlockall"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":2,"op":"SCMP_CMP_EQ"}]},
				{"names":["gettid"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]}]}`,
			calls: cmpCalls,
		},
		{
			name: "rule precedence: unconditional wins",
			profile: `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
				{"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":5,"args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
				{"names":["getppid"],"action":"SCMP_ACT_ALLOW"},
				{"names":["getuid"],"action":"SCMP_ACT_ERRNO","errnoRet":1,"args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
				{"names":["getuid"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}]}`,
			calls: []probeCall{{"getppid(1)", "getppid", []uint64{1}}, {"getppid(0)", "getppid", nil}, {"getuid(1)", "getuid", []uint64{1}}, {"getuid(0)", "getuid", nil}},
		},
		{
			name:    "default log",
			profile: `{"defaultAction":"SCMP_ACT_LOG","syscalls":[{"names":["getuid"],"action":"SCMP_ACT_ERRNO","errnoRet":3}]}`,
			calls:   []probeCall{{"getuid", "getuid", nil}, {"uname", "uname", []uint64{0}}, {"clone3", "clone3", []uint64{0, 0}}},
		},
		{
			name:    "default kill-process",
			profile: `{"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ALLOW"}]}`,
			calls:   []probeCall{{"getppid", "getppid", nil}, {"clone3", "clone3", []uint64{0, 0}}},
			killers: []probeCall{{"uname", "uname", []uint64{0}}},
		},
		{
			name:    "default kill (thread)",
			profile: `{"defaultAction":"SCMP_ACT_KILL","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ALLOW"}]}`,
			killers: []probeCall{{"uname", "uname", []uint64{0}}},
		},
		{
			name:    "default trap, kill-thread rule",
			profile: `{"defaultAction":"SCMP_ACT_TRAP","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ALLOW"},{"names":["getuid"],"action":"SCMP_ACT_KILL_THREAD"}]}`,
			calls:   []probeCall{{"getppid", "getppid", nil}},
			killers: []probeCall{{"uname", "uname", []uint64{0}}, {"getuid", "getuid", nil}},
		},
		{
			name:    "x32 call without SCMP_ARCH_X32: bad arch",
			profile: `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ALLOW"}]}`,
			calls:   []probeCall{{"getppid", "getppid", nil}},
			killers: []probeCall{{"x32:getppid", "x32:getppid", nil}},
		},
		{
			name:    "i386 probe without SCMP_ARCH_X86: bad arch",
			profile: `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ERRNO"}]}`,
			i386:    true,
			killers: []probeCall{{"getppid", "getppid", nil}},
		},
		{
			name: "i386 probe with SCMP_ARCH_X86",
			profile: `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":116,"architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],"syscalls":[
				{"names":["getppid"],"action":"SCMP_ACT_ALLOW"},
				{"names":["getuid32"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
				{"names":["getgid32"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":5,"op":"SCMP_CMP_EQ"}]},
				{"names":["getegid32"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":4294967301,"op":"SCMP_CMP_EQ"}]},
				{"names":["geteuid32"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":4294967301,"op":"SCMP_CMP_LT"}]}]}`,
			i386: true,
			calls: []probeCall{
				{"getppid", "getppid", nil}, {"getuid32", "getuid32", nil}, {"gettid", "gettid", nil},
				{"getgid32(5)", "getgid32", []uint64{5}}, {"getgid32(6)", "getgid32", []uint64{6}},
				// The high half of a value on a 32-bit ABI.
				{"getegid32(5)", "getegid32", []uint64{5}}, {"geteuid32(6)", "geteuid32", []uint64{6}},
				{"clone3", "clone3", []uint64{0, 0}},
			},
		},
	}, recordedShapes()...)
}

// recordedShapes are the rule shapes syscage records, clipped to containerd's
// default, moved onto harmless syscalls (so the probe can call them with any
// arguments): every shape the recorder emits must mean the same to runc with
// libseccomp as to syscage.
func recordedShapes() []matrixCase {
	name, raw, err := profiles.Baseline("containerd")
	if err != nil {
		panic(err)
	}
	base, err := profile.NewBaseline(name, raw)
	if err != nil {
		panic(err)
	}
	onto := map[string]string{"clone": "getppid", "socket": "getuid", "ioctl": "getgid", "personality": "geteuid",
		"mprotect": "getegid", "setsockopt": "getpgrp", "prctl": "gettid"}
	tab, _ := profile.TableFor(specs.ArchX86_64)
	var out []matrixCase
	for i, args := range []map[string]profile.ArgValues{
		{
			"clone":       {Values: []uint64{0, profile.CloneNewNS, profile.CloneNewUser}},
			"socket":      {Values: []uint64{1 | 1<<32, 1 | 2<<32, 2 | 2<<32, 10 | 1<<32, 38 | 5<<32}},
			"ioctl":       {Values: []uint64{0x5401, 0x5413, 0x80045430, 0xffffffff80045430}},
			"personality": {Values: []uint64{0xffffffff, 8, 0x40000}},
			"mprotect":    {Values: []uint64{0, 2, 4}},
			"setsockopt":  {Values: []uint64{1 | 2<<32, 6 | 1<<32}},
			"prctl":       {Values: []uint64{15, 38}},
		},
		{"socket": {Any: true}, "clone": {Any: true}, "ioctl": {Any: true}, "personality": {Any: true}},
	} {
		rec := profile.Recorded{}
		for name := range args {
			nr, _ := tab.Number(name)
			rec[specs.ArchX86_64] = append(rec[specs.ArchX86_64], nr)
		}
		slices.Sort(rec[specs.ArchX86_64])
		built, err := profile.FromRecorded(rec, profile.Options{Args: profile.Args{specs.ArchX86_64: args}, Baseline: base, Strict: true})
		if err != nil {
			panic(err)
		}
		p := built.Profile
		var calls []probeCall
		for j, sc := range p.Syscalls {
			var names []string
			for _, n := range sc.Names {
				if m, ok := onto[n]; ok {
					names = append(names, m)
				}
			}
			p.Syscalls[j].Names = names
			for _, n := range names {
				// The call the rule allows, with every condition met, and the same
				// with each argument moved off it.
				var exact [3]uint64
				for _, a := range sc.Args {
					exact[a.Index] = a.Value
					if a.Op == specs.OpMaskedEqual {
						exact[a.Index] = a.ValueTwo
					}
				}
				calls = append(calls, probeCall{fmt.Sprintf("%s(%x,%x,%x)", n, exact[0], exact[1], exact[2]), n, exact[:]})
				for _, a := range sc.Args {
					off := exact
					off[a.Index] ^= 0x102
					calls = append(calls, probeCall{fmt.Sprintf("%s(%x,%x,%x)", n, off[0], off[1], off[2]), n, off[:]})
				}
				for _, a := range sc.Args {
					for _, v := range []uint64{a.Value, a.Value + 1, a.Value - 1, a.ValueTwo, a.ValueTwo | 1<<32, a.ValueTwo | 0x81, a.Value | a.ValueTwo} {
						var av [2]uint64
						av[a.Index%2] = v
						if a.Index < 2 {
							calls = append(calls, probeCall{fmt.Sprintf("%s(%d:%#x)", n, a.Index, v), n, av[:]})
						} else {
							calls = append(calls, probeCall{fmt.Sprintf("%s(%d:%#x)", n, a.Index, v), n, []uint64{0, 0, v}})
						}
					}
				}
			}
		}
		p.Syscalls = slices.DeleteFunc(p.Syscalls, func(sc specs.LinuxSyscall) bool { return len(sc.Names) == 0 })
		data, err := json.Marshal(p)
		if err != nil {
			panic(err)
		}
		slices.SortFunc(calls, func(a, b probeCall) int { return strings.Compare(a.label, b.label) })
		calls = slices.CompactFunc(calls, func(a, b probeCall) bool { return a.label == b.label })
		out = append(out, matrixCase{name: fmt.Sprintf("recorded shapes %d", i+1), profile: string(data), calls: calls})
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var probes struct {
	once         sync.Once
	dir          string
	path, path32 string
	err          error
}

// buildProbes compiles testdata/probe.c, static, for x86_64 and i386.
func buildProbes(t *testing.T) (string, string) {
	t.Helper()
	cc := testenv.RequireCommand(t, "gcc")
	probes.once.Do(func() {
		probes.dir, probes.err = os.MkdirTemp("", "syscage-probe-")
		if probes.err != nil {
			return
		}
		os.Chmod(probes.dir, 0o755)
		probes.path = filepath.Join(probes.dir, "probe")
		probes.path32 = filepath.Join(probes.dir, "probe32")
		for _, b := range [][]string{{"-o", probes.path}, {"-m32", "-o", probes.path32}} {
			args := append([]string{"-O2", "-static", "testdata/probe.c"}, b...)
			if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
				probes.err = fmt.Errorf("gcc %v: %v\n%s(install gcc and gcc-multilib)", args, err, out)
				return
			}
		}
	})
	if probes.err != nil {
		testenv.Unavailable(t, "building the probe: %v", probes.err)
	}
	return probes.path, probes.path32
}

// withBase returns the profile with probeBase allowed.
func withBase(t *testing.T, src string) *specs.LinuxSeccomp {
	t.Helper()
	var p specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(src), &p); err != nil {
		t.Fatalf("profile: %v", err)
	}
	p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: probeBase, Action: specs.ActAllow})
	// runc 1.1.5 (Debian 12) adds its ENOSYS stub only for the architectures a profile
	// lists; later runc, and syscage, also for the native one when none is. Profiles
	// list theirs here, as recorded and default profiles do.
	if len(p.Architectures) == 0 {
		p.Architectures = []specs.Arch{specs.ArchX86_64}
	}
	return &p
}

// outcomes are how the probe's calls ended: "ok", "errno N", or "0" for a call
// labelled "zero:" that returns 0 only when the filter answers (errnoRet 0). Other
// results are not compared: getppid is 0 for a container's pid 1.
func outcomes(t *testing.T, stdout string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var label string
		var rc int64
		var errno int
		if _, err := fmt.Sscanf(line, "%s %d %d", &label, &rc, &errno); err != nil {
			t.Fatalf("probe output %q: %v", line, err)
		}
		switch {
		case rc < 0:
			out[label] = fmt.Sprintf("errno %d", errno)
		case rc == 0 && strings.HasPrefix(label, "zero:"):
			out[label] = "0"
		default:
			out[label] = "ok"
		}
	}
	return out
}

// status is how a process ended: "exit N" or "signal N" (runc reports a container
// killed by a signal as exit 128+N).
func status(code int, sig syscall.Signal) string {
	if sig != 0 {
		return fmt.Sprintf("signal %d", sig)
	}
	if code > 128 && code < 128+65 {
		return fmt.Sprintf("signal %d", code-128)
	}
	return fmt.Sprintf("exit %d", code)
}

// underExec runs the probe under syscage exec.
func underExec(t *testing.T, profilePath, probe string, args []string) (string, string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"exec", "--profile", profilePath, "--", probe}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("syscage exec: %v", err)
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	var sig syscall.Signal
	if ws.Signaled() {
		sig = ws.Signal()
	}
	if st := status(ws.ExitStatus(), sig); st == "exit 1" && strings.Contains(stderr.String(), "Error:") {
		t.Fatalf("syscage exec refused: %s", stderr.String())
	}
	return stdout.String(), status(ws.ExitStatus(), sig)
}

// underRunc runs the probe in a runc container with the profile.
func underRunc(t *testing.T, p *specs.LinuxSeccomp, probe string, args []string) (string, string) {
	t.Helper()
	dir, spec := rt.Bundle(t, append([]string{"/probe"}, args...), map[string]string{"probe": probe})
	spec.Linux.Seccomp = p
	rt.WriteSpec(t, dir, spec)
	res, err := rt.RuncTry(t, dir)
	if err != nil {
		t.Fatalf("runc could not start the probe under the profile (does runc need another syscall after its filter?): %v", err)
	}
	return res.Stdout, status(res.ExitCode, 0)
}

func TestAgreementMatrix(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "runc")
	probe64, probe32 := buildProbes(t)

	var mu sync.Mutex
	cells, agree := 0, 0
	var table []string
	t.Cleanup(func() {
		t.Logf("agreement matrix: %d of %d cells agree\n%s", agree, cells, strings.Join(table, "\n"))
	})
	for _, tc := range matrixCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := withBase(t, tc.profile)
			data, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "profile.json")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			probe, arch := probe64, specs.ArchX86_64
			if tc.i386 {
				probe, arch = probe32, specs.ArchX86
			}
			compare := func(label, viaExec, viaRunc string) {
				mu.Lock()
				defer mu.Unlock()
				cells++
				mark := "="
				if viaExec == viaRunc {
					agree++
				} else {
					mark = "≠"
					t.Errorf("%s: syscage exec %s, runc %s", label, viaExec, viaRunc)
				}
				table = append(table, fmt.Sprintf("  %-40s %-34s %-10s %s %s", tc.name, label, viaExec, mark, viaRunc))
			}
			if len(tc.calls) > 0 {
				var args []string
				for _, c := range tc.calls {
					args = append(args, c.arg(t, arch))
				}
				outE, stE := underExec(t, path, probe, args)
				outR, stR := underRunc(t, p, probe, args)
				if stE != "exit 0" || stR != "exit 0" {
					t.Fatalf("probe: syscage exec %s (stdout %q), runc %s (stdout %q)", stE, outE, stR, outR)
				}
				e, r := outcomes(t, outE), outcomes(t, outR)
				for _, c := range tc.calls {
					compare(c.label, e[c.label], r[c.label])
				}
			}
			for _, k := range tc.killers {
				var arg string
				if name, ok := strings.CutPrefix(k.name, "x32:"); ok {
					// An x32 call from the x86_64 probe: the number with X32SyscallBit.
					tb, _ := profile.TableFor(arch)
					nr, _ := tb.Number(name)
					arg = fmt.Sprintf("%s=%x", k.label, uint64(nr)|profile.X32SyscallBit)
				} else {
					arg = k.arg(t, arch)
				}
				_, stE := underExec(t, path, probe, []string{arg})
				_, stR := underRunc(t, p, probe, []string{arg})
				if !slices.Contains([]string{"signal 31"}, stE) {
					t.Errorf("%s: syscage exec %s, want SIGSYS (31)", k.label, stE)
				}
				compare(k.label+" (process)", stE, stR)
			}
		})
	}
}
