// Package workload builds the test workload (testdata/workload.c) whose syscalls are known,
// for tests that record it with the real kernel.
package workload

import (
	_ "embed"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/syscage/syscage/internal/testenv"
)

//go:embed testdata/workload.c
var source []byte

// Calls are the syscalls `workload calls` makes that nothing else in its life makes,
// by the part of the process tree that makes them.
var Calls = map[string][]string{
	"main":       {"syncfs", "ioprio_get"},
	"thread":     {"sched_rr_get_interval", "membarrier"},
	"grandchild": {"getitimer", "personality"},
}

// BusyCall is what `workload busy` loops on.
const BusyCall = "sysinfo"

// Build compiles the workload into dir: natively, or as a static i386 binary when
// m32 is set. A missing compiler skips the test, or fails it in CI.
func Build(t testing.TB, dir string, m32 bool) string {
	t.Helper()
	cc := testenv.RequireCommand(t, "gcc")
	src := filepath.Join(dir, "workload.c")
	if err := os.WriteFile(src, source, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "workload")
	args := []string{"-O2", "-pthread", "-o", out, src}
	if m32 {
		out += "32"
		args = append([]string{"-m32", "-static"}, args...)
		args[len(args)-2] = out
	}
	if b, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		testenv.Unavailable(t, "compiling the workload (gcc %v): %v\n%s\n(install gcc and gcc-multilib)", args, err, b)
	}
	return out
}
