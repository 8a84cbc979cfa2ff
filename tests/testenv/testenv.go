// Package testenv gates tests on what the machine offers. A test that needs root or
// BPF skips on a developer's laptop, but fails when SYSCAGE_TEST_PRIVILEGED=1 (set by
// .ci/run), so a skip can never hide a broken CI.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Privileged reports whether the environment promises root, BPF and the runtimes.
func Privileged() bool { return os.Getenv("SYSCAGE_TEST_PRIVILEGED") == "1" }

// Unavailable skips t, or fails it when the environment promised the capability.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if Privileged() {
		t.Fatalf("SYSCAGE_TEST_PRIVILEGED=1 but "+format, args...)
	}
	t.Skipf("privileged: "+format, args...)
}

// RequireRoot skips (or fails in CI) unless the test runs as root. -short always skips.
func RequireRoot(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("privileged test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		Unavailable(t, "the test needs root (euid is %d)", os.Geteuid())
	}
}

// RequireCommand skips (or fails in CI) unless name is on PATH, and returns its path.
func RequireCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Unavailable(t, "%s is not installed: %v", name, err)
	}
	return p
}

// SetPopulated writes dir/cgroup.events saying whether the cgroup is
// populated, as the kernel changes it: in place and in one write (a
// truncation would show an empty file for a moment to a reader told of the
// change by inotify). A directory with such a file stands for a cgroup in
// tests of what reads it.
func SetPopulated(t testing.TB, dir string, populated bool) {
	t.Helper()
	v := "0"
	if populated {
		v = "1"
	}
	f, err := os.OpenFile(dir+"/cgroup.events", os.O_WRONLY|os.O_CREATE, 0o644)
	if err == nil {
		_, err = f.WriteAt([]byte("populated "+v+"\nfrozen 0\n"), 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}
