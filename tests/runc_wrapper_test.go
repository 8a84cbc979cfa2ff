package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syscage/syscage/tests/internal/rt"
	"github.com/syscage/syscage/tests/testenv"
)

// As podman's --runtime (no hooks.d at all), syscage-runc adds the hook to an
// annotated container and leaves the others alone; the profile works.
func TestRuncWrapperPodman(t *testing.T) {
	e := newHookEnv(t)
	podman := testenv.RequireCommand(t, "podman")
	realRunc := testenv.RequireCommand(t, "runc")
	image, _ := workloadImage(t)
	dir := t.TempDir()
	link := filepath.Join(dir, "syscage-runc")
	if err := os.Symlink(hookBinary, link); err != nil {
		t.Fatal(err)
	}
	// The runtime a user names: the link, with this test's hook config.
	runtime := filepath.Join(dir, "runtime")
	script := "#!/bin/sh\nSYSCAGE_HOOK_CONFIG=" + e.config + " SYSCAGE_RUNC=" + realRunc + " exec " + link + ` "$@"` + "\n"
	if err := os.WriteFile(runtime, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(extra ...string) (string, error) {
		args := append([]string{"--runtime", runtime, "run", "--rm", "--pull", "never", "--network", "none"}, rt.Ulimits(t)...)
		args = append(append(args, extra...), image, "/bin/workload", "calls")
		out, err := exec.Command(podman, args...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("--annotation", "io.syscage.record=wrapped"); err != nil || !strings.Contains(out, "ok") {
		t.Fatalf("annotated container: %v\n%s", err, out)
	}
	wantAll(t, "wrapped", e.profile(t, "wrapped"))
	if out, err := run("--security-opt", "seccomp="+filepath.Join(e.profiles, "wrapped.json")); err != nil || !strings.Contains(out, "ok") {
		t.Fatalf("under the profile: %v\n%s", err, out)
	}
	if out, err := run(); err != nil || !strings.Contains(out, "ok") {
		t.Fatalf("container without annotation: %v\n%s", err, out)
	}
	entries, _ := os.ReadDir(e.profiles)
	if len(entries) != 1 {
		t.Errorf("want only wrapped.json, got %v", entries)
	}
	// Refusals still fail the start, through the wrapper too.
	if out, err := run("--annotation", "io.syscage.record=../x"); err == nil || !strings.Contains(out, "a profile name is 1-128 letters") {
		t.Errorf("bad annotation: %v\n%s", err, out)
	}
}
