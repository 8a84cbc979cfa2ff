package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/hooks/verify"
	"github.com/syscage/syscage/tests/internal/rt"
	"github.com/syscage/syscage/tests/testenv"
	"github.com/syscage/syscage/tests/workload"
)

func verifyJSON(t *testing.T, args ...string) (verify.Report, result) {
	t.Helper()
	res := syscage(t, append([]string{"verify", "--format", "json"}, args...)...)
	var rep verify.Report
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("verify %v: exit %d, no JSON report: %v\nstdout: %s\nstderr: %s", args, res.code, err, res.stdout, res.stderr)
	}
	return rep, res
}

func missingNames(rep verify.Report) []string {
	var names []string
	for _, f := range rep.Missing {
		names = append(names, f.Name)
	}
	return names
}

// withCondition returns p with name allowed only when argument 0 equals v.
func withCondition(t *testing.T, p *specs.LinuxSeccomp, name string, v uint64) *specs.LinuxSeccomp {
	t.Helper()
	q := without(t, p, name)
	q.Syscalls = append(q.Syscalls, specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow,
		Args: []specs.LinuxSeccompArg{{Index: 0, Value: v, Op: specs.OpEqualTo}}})
	return q
}

// checkVerify runs the three cases every workload kind must pass: a profile that
// allows everything verifies clean; one call short is caught in complain mode
// with the workload unharmed, and in enforce mode with the workload refused; a
// call refused for its arguments is caught in enforce mode.
func checkVerify(t *testing.T, p *specs.LinuxSeccomp, target ...string) {
	t.Helper()
	for _, mode := range []string{"complain", "enforce"} {
		rep, res := verifyJSON(t, append([]string{"--profile", writeProfile(t, p), "--mode", mode}, target...)...)
		if res.code != 0 || len(rep.Missing) != 0 || rep.ExitCode != 0 {
			t.Errorf("%s, full profile: exit %d, missing %v, workload exit %d\n%s", mode, res.code, rep.Missing, rep.ExitCode, res.stderr)
		}
	}
	short := writeProfile(t, without(t, p, "getitimer"))
	rep, res := verifyJSON(t, append([]string{"--profile", short, "--mode", "complain"}, target...)...)
	if res.code != 1 || !slices.Equal(missingNames(rep), []string{"getitimer"}) || rep.ExitCode != 0 {
		t.Errorf("complain, without getitimer: exit %d, missing %v, workload exit %d (want 1, [getitimer], 0)", res.code, missingNames(rep), rep.ExitCode)
	} else if f := rep.Missing[0]; f.Count != 1 || f.Comm != "workload" || f.Pid == 0 {
		t.Errorf("complain finding: %+v, want count 1 by workload", f)
	}
	rep, res = verifyJSON(t, append([]string{"--profile", short, "--mode", "enforce"}, target...)...)
	if res.code != 1 || !slices.Equal(missingNames(rep), []string{"getitimer"}) || rep.ExitCode == 0 {
		t.Errorf("enforce, without getitimer: exit %d, missing %v, workload exit %d (want 1, [getitimer], non-zero)\n%s", res.code, missingNames(rep), rep.ExitCode, res.stderr)
	}
	// personality(0xffffffff) under a rule that allows personality(0) only.
	cond := writeProfile(t, withCondition(t, p, "personality", 0))
	rep, res = verifyJSON(t, append([]string{"--profile", cond, "--mode", "enforce"}, target...)...)
	if res.code != 1 || !slices.Equal(missingNames(rep), []string{"personality"}) {
		t.Errorf("enforce, personality(0) only: exit %d, missing %v (want 1, [personality])\n%s", res.code, missingNames(rep), res.stderr)
	}
	// Complain mode judges the values the recorder kept, and names the call.
	rep, res = verifyJSON(t, append([]string{"--profile", cond, "--mode", "complain"}, target...)...)
	if res.code != 1 || len(rep.Missing) != 1 || len(rep.Conditional) != 0 || rep.Missing[0].Name != "personality" ||
		!slices.Equal(rep.Missing[0].Calls, []string{"personality(0xffffffff)"}) {
		t.Errorf("complain, personality(0) only: exit %d, missing %v, conditional %v (want 1, personality(0xffffffff), none)", res.code, rep.Missing, rep.Conditional)
	}
	// A rule on an argument the recorder does not keep stays for enforce mode.
	other := writeProfile(t, withCondition(t, p, "getitimer", 0))
	rep, _ = verifyJSON(t, append([]string{"--profile", other, "--mode", "complain"}, target...)...)
	if len(rep.Missing) != 0 || len(rep.Conditional) != 1 || rep.Conditional[0].Name != "getitimer" {
		t.Errorf("complain, getitimer(0) only: missing %v, conditional %v (want none, [getitimer])", rep.Missing, rep.Conditional)
	}
}

func TestVerifyRuncBundle(t *testing.T) {
	testenv.RequireRoot(t)
	wl := workload.Build(t, t.TempDir(), workload.Static)
	files := map[string]string{"/bin/workload": wl}
	p := recordInRunc(t, files, "/bin/workload", "calls")
	dir, spec := rt.Bundle(t, []string{"/bin/workload", "calls"}, files)
	rt.WriteSpec(t, dir, spec)
	checkVerify(t, p, "--bundle", dir)
}

func TestVerifyPodman(t *testing.T) {
	e := newHookEnv(t)
	image, _ := workloadImage(t)
	res, err := e.podman(t, image, []string{"--annotation", "io.syscage.record=v"}, "/bin/workload", "calls")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("recording: %v", err)
	}
	p, _ := readSpecProfile(t, filepath.Join(e.profiles, "v.json"))
	checkVerify(t, p, append([]string{"--podman", "--"}, append(rt.Ulimits(t), image, "/bin/workload", "calls")...)...)
}

// A host command: the three cases in both modes (enforce runs it through
// syscage exec), then calls made only sometimes.
func TestVerifyHost(t *testing.T) {
	testenv.RequireRoot(t)
	wl := workload.Build(t, t.TempDir(), workload.Dynamic)
	p, _ := recordProfile(t, wl, "calls")
	checkVerify(t, p, "--", wl, "calls")
	rep, res := verifyJSON(t, "--profile", writeProfile(t, p), "--", wl, "calls")
	if res.code != 0 || len(rep.Missing) != 0 {
		t.Errorf("full profile: exit %d, missing %v", res.code, rep.Missing)
	}
	for part, calls := range workload.Calls {
		name := calls[0]
		rep, res := verifyJSON(t, "--profile", writeProfile(t, without(t, p, name)), "--", wl, "calls")
		if res.code != 1 || !slices.Equal(missingNames(rep), []string{name}) || rep.ExitCode != 0 {
			t.Errorf("without %s's %s: exit %d, missing %v, workload exit %d", part, name, res.code, missingNames(rep), rep.ExitCode)
		}
	}
	// Calls made only sometimes are caught when they are made: the profile of the
	// workload's quiet mode verifies that mode clean, and not the other.
	quiet, _ := recordProfile(t, wl, "print")
	if rep, res := verifyJSON(t, "--profile", writeProfile(t, quiet), "--", wl, "print"); res.code != 0 || len(rep.Missing) != 0 {
		t.Errorf("quiet mode under its own profile: exit %d, missing %v", res.code, rep.Missing)
	}
	rep, res = verifyJSON(t, "--profile", writeProfile(t, quiet), "--", wl, "calls")
	for _, calls := range workload.Calls {
		for _, c := range calls {
			if !slices.Contains(missingNames(rep), c) {
				t.Errorf("the sometimes-call %q was not caught: exit %d, missing %v", c, res.code, missingNames(rep))
			}
		}
	}
	text := syscage(t, "verify", "--profile", writeProfile(t, without(t, p, "syncfs")), "--", wl, "calls")
	if text.code != 1 || !strings.Contains(text.stdout, "does not allow 1 syscall the workload made") || !strings.Contains(text.stdout, "syncfs") {
		t.Errorf("text report: exit %d\n%s", text.code, text.stdout)
	}
}

// The shipped profiles of the demo workloads (make demo-profiles) let those
// workloads run: they verify clean against them, in enforce mode too.
func TestShippedDemoProfilesVerify(t *testing.T) {
	testenv.RequireRoot(t)
	tree := filepath.Join(t.TempDir(), "tree")
	for _, d := range []string{tree, filepath.Join(tree, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(tree, "a.txt"), []byte("a\n"), 0o644)
	os.WriteFile(filepath.Join(tree, "sub", "b.txt"), []byte("b\n"), 0o644)
	os.Symlink("a.txt", filepath.Join(tree, "link"))
	for profile, cmd := range map[string][]string{
		"demo-tar.json": {"tar", "-cf", "/dev/null", "-C", tree, "."},
		"demo-sh.json":  {"sh", "-c", "ls -la " + tree + " >/dev/null; cat " + tree + "/a.txt >/dev/null"},
	} {
		for _, mode := range []string{"complain", "enforce"} {
			if mode == "enforce" && !hasExec(t) {
				continue
			}
			// In the environment they were recorded in: with the caller's locale,
			// glibc's start-up makes other calls (a futex, seen here).
			c := exec.Command(binary, append([]string{"verify", "--format", "json", "--profile", "../profiles/" + profile, "--mode", mode, "--"}, cmd...)...)
			c.Env = []string{"PATH=/usr/bin:/bin", "LANG=C"}
			out, err := c.Output()
			var rep verify.Report
			if jerr := json.Unmarshal(out, &rep); err != nil || jerr != nil || len(rep.Missing) != 0 {
				t.Errorf("%s (%s): %v, missing %v\n%s", profile, mode, err, rep.Missing, out)
			}
		}
	}
}

// hasExec reports whether this build has `syscage exec` (enforce mode for host
// commands runs through it).
func hasExec(t *testing.T) bool {
	return syscage(t, "exec", "--help").code == 0
}
