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
	cc := testenv.RequireCommand(t, "gcc")
	src := filepath.Join(dir, "workload.c")
	if err := os.WriteFile(src, source, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, []string{"workload", "workload-static", "workload32"}[kind])
	args := []string{"-O2", "-pthread", "-o", out, src}
	switch kind {
	case Static:
		args = append(args, "-static")
	case Static32:
		args = append(args, "-static", "-m32")
	}
	if b, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		testenv.Unavailable(t, "compiling the workload (gcc %v): %v\n%s\n(install gcc and gcc-multilib)", args, err, b)
	}
	return out
}
