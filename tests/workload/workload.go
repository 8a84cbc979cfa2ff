// Package workload builds the test workload (testdata/workload.c) whose syscalls are known,
// for tests that record it with the real kernel.
package workload

import (
	_ "embed"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/syscage/syscage/tests/testenv"
)

//go:embed testdata/workload.c
var source []byte

//go:embed testdata/args.c
var argsSource []byte

// Attacks are what `args attack NAME` can do, each a call with an argument value
// `args benign` never uses; Refusal is the errno a profile recorded from the benign
// mode answers it with.
var Attacks = []struct {
	Name    string
	Refusal int
}{
	{"clone-newuser", 1}, {"clone3-newuser", 38}, {"unshare-newuser", 1},
	{"af-alg", 1}, {"af-vsock", 1}, {"af-inet6", 1}, {"af-packet", 1}, {"af-netlink", 1}, {"unix-dgram", 1},
	{"per-linux32", 1}, {"tiocsti", 1}, {"tiocsti-high", 1}, {"mprotect-wx", 1},
}

// BuildArgs compiles the argument workload (testdata/args.c), static, into dir.
func BuildArgs(t testing.TB, dir string) string {
	t.Helper()
	return compile(t, dir, "args", argsSource, []string{"-static"})
}

// Calls are the syscalls `workload calls` makes that nothing else in its life makes,
// by the part of the process tree that makes them.
var Calls = map[string][]string{
	"main":       {"syncfs", "ioprio_get"},
	"thread":     {"sched_rr_get_interval", "membarrier"},
	"grandchild": {"getitimer", "personality"},
}

// BusyCall is what `workload busy` loops on.
const BusyCall = "sysinfo"

// Kind is how the workload is built.
type Kind int

const (
	Dynamic  Kind = iota // for the host
	Static               // for a container's root filesystem
	Static32             // i386, static: compat syscalls on x86_64
)

// Build compiles the workload into dir and returns its path. A missing compiler or
// 32-bit libc skips the test, or fails it in CI.
func Build(t testing.TB, dir string, kind Kind) string {
	t.Helper()
	var flags []string
	switch kind {
	case Static:
		flags = []string{"-static"}
	case Static32:
		flags = []string{"-static", "-m32"}
	}
	return compile(t, dir, []string{"workload", "workload-static", "workload32"}[kind], source, flags)
}

func compile(t testing.TB, dir, name string, src []byte, flags []string) string {
	t.Helper()
	cc := testenv.RequireCommand(t, "gcc")
	file := filepath.Join(dir, name+".c")
	if err := os.WriteFile(file, src, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	args := append([]string{"-O2", "-pthread", "-o", out, file}, flags...)
	if b, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		testenv.Unavailable(t, "compiling the workload (gcc %v): %v\n%s\n(install gcc and gcc-multilib)", args, err, b)
	}
	return out
}
