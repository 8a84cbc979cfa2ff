package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/profile"
	"github.com/syscage/syscage/tests/internal/rt"
	"github.com/syscage/syscage/tests/testenv"
	"github.com/syscage/syscage/tests/workload"
)

// recordProfile records args with the real syscage binary and returns the profile.
func recordProfile(t *testing.T, args ...string) (*specs.LinuxSeccomp, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "profile.json")
	res := syscage(t, append([]string{"record", "-o", out, "--"}, args...)...)
	if res.code != 0 {
		t.Fatalf("syscage record %v: exit %d\n%s", args, res.code, res.stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(out, data)
	if err != nil {
		t.Fatal(err)
	}
	return p, out
}

func allowed(p *specs.LinuxSeccomp) []string {
	var names []string
	for _, r := range p.Syscalls {
		if r.Action == specs.ActAllow {
			names = append(names, r.Names...)
		}
	}
	return names
}

// without returns a copy of p that no longer allows name.
func without(t *testing.T, p *specs.LinuxSeccomp, name string) *specs.LinuxSeccomp {
	t.Helper()
	q := *p
	q.Syscalls = nil
	found := false
	for _, r := range p.Syscalls {
		r.Names = slices.DeleteFunc(slices.Clone(r.Names), func(n string) bool {
			found = found || n == name
			return n == name
		})
		if len(r.Names) > 0 {
			q.Syscalls = append(q.Syscalls, r)
		}
	}
	if !found {
		t.Fatalf("%q is not in the profile", name)
	}
	return &q
}

func writeProfile(t *testing.T, p *specs.LinuxSeccomp) string {
	t.Helper()
	data, err := profile.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRecordedProfileRunsWorkloadInPodman: the profile recorded in a container runs
// the same workload under podman, and without one call it makes, stops it.
func TestRecordedProfileRunsWorkloadInPodman(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "podman")
	wl := workload.Build(t, t.TempDir(), workload.Static)
	image := rt.PodmanImage(t, map[string]string{"/bin/workload": wl})
	p := recordInPodman(t, image, "/bin/workload", "calls")
	path := writeProfile(t, p)

	res, err := rt.PodmanTry(t, image, []string{"--security-opt", "seccomp=" + path, "--security-opt", "no-new-privileges"}, "/bin/workload", "calls")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("workload under its recorded profile in podman: exit %d, err %v\nstdout: %s\nstderr: %s", res.ExitCode, err, res.Stdout, res.Stderr)
	}
	strict := writeProfile(t, without(t, p, "membarrier"))
	res, err = rt.PodmanTry(t, image, []string{"--security-opt", "seccomp=" + strict, "--security-opt", "no-new-privileges"}, "/bin/workload", "calls")
	if err == nil && res.ExitCode == 0 {
		t.Fatal("workload succeeded in podman under the profile without membarrier")
	}
	if !strings.Contains(res.Stdout, "denied: membarrier") {
		t.Errorf("want membarrier reported denied, got stdout %q stderr %q", res.Stdout, res.Stderr)
	}
}

// A 32-bit workload's profile lists the compat architecture and runs it in runc.
func TestRecorded32BitProfileRunsInRunc(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "runc")
	if !strings.Contains(hostArch(t), "x86_64") {
		t.Skip("the 32-bit workload is built for i386")
	}
	wl := workload.Build(t, t.TempDir(), workload.Static32)
	p, _ := recordProfile(t, wl, "calls")
	if !slices.Equal(p.Architectures, []specs.Arch{specs.ArchX86_64, specs.ArchX86}) {
		t.Errorf("architectures: got %v, want [x86_64 x86]", p.Architectures)
	}
	for _, want := range []string{"set_thread_area", "mmap2"} {
		if !slices.Contains(allowed(p), want) {
			t.Errorf("i386 call %q missing: %v", want, allowed(p))
		}
	}
	// In a container the same workload, recorded from its seccomp start, runs
	// under its profile.
	files := map[string]string{"/bin/workload": wl}
	cp := recordInRunc(t, files, "/bin/workload", "calls")
	if !slices.Contains(cp.Architectures, specs.ArchX86) {
		t.Errorf("container recording lacks the compat arch: %v", cp.Architectures)
	}
	if res, err := runcWith(t, cp, files, "/bin/workload", "calls"); err != nil || res.ExitCode != 0 {
		t.Fatalf("32-bit workload under its profile: exit %d, err %v\nstdout: %s\nstderr: %s", res.ExitCode, err, res.Stdout, res.Stderr)
	}
}

func hostArch(t *testing.T) string {
	out, err := exec.Command("uname", "-m").Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
