package tests

import (
	"fmt"
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

// attackResult reads what `args attack NAME` printed: -1 for "ok", else the errno.
func attackResult(t *testing.T, name, out string) int {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), name+": ")
		if !ok {
			continue
		}
		if rest == "ok" {
			return -1
		}
		var errno int
		if _, err := fmt.Sscanf(rest, "errno %d", &errno); err == nil {
			return errno
		}
	}
	t.Fatalf("attack %s printed no result: %q", name, out)
	return 0
}

// checkAttacks runs every attack through run twice: unconfined, where the answer
// must not be the profile's refusal (so the refusal below is the profile's), and
// under the profile, where it must be.
func checkAttacks(t *testing.T, unconfined, confined func(attack string) string) {
	t.Helper()
	for _, a := range workload.Attacks {
		t.Run(a.Name, func(t *testing.T) {
			if got := attackResult(t, a.Name, unconfined(a.Name)); got == a.Refusal {
				if a.Name != "af-packet" {
					t.Fatalf("unconfined, %s already gets errno %d: the test cannot tell the profile's refusal", a.Name, got)
				}
				// A container without CAP_NET_RAW (runc's and podman's defaults give
				// none) gets EPERM from the kernel for a packet socket.
				t.Logf("unconfined, %s gets errno %d from the kernel (no CAP_NET_RAW)", a.Name, got)
			}
			if got := attackResult(t, a.Name, confined(a.Name)); got != a.Refusal {
				t.Errorf("under the recorded profile %s got %s, want errno %d", a.Name, describeResult(got), a.Refusal)
			}
		})
	}
}

func describeResult(r int) string {
	if r < 0 {
		return "success"
	}
	return fmt.Sprintf("errno %d", r)
}

// showRules logs the profile's conditional rules, to read when a test fails.
func showRules(t *testing.T, p *specs.LinuxSeccomp) {
	t.Helper()
	for _, sc := range p.Syscalls {
		for _, n := range sc.Names {
			if len(sc.Args) > 0 {
				t.Logf("%s %s", profile.DescribeCall(n, sc.Args), sc.Action)
			} else if sc.Action != specs.ActAllow {
				t.Logf("%s %s", n, sc.Action)
			}
		}
	}
}

// The argument workload recorded on the host, then enforced with syscage exec:
// the benign mode runs (fork, a glibc thread through clone3's ENOSYS, sockets,
// ioctl, personality, mprotect), and every attack is refused.
func TestArgsExec(t *testing.T) {
	testenv.RequireRoot(t)
	bin := workload.BuildArgs(t, t.TempDir())
	out := filepath.Join(t.TempDir(), "args.json")
	if res := syscage(t, "record", "-q", "-o", out, "--", bin, "benign"); res.code != 0 {
		t.Fatalf("record: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	p, _ := readSpecProfile(t, out)
	showRules(t, p)
	if res := syscage(t, "exec", "--profile", out, "--", bin, "benign"); res.code != 0 || !strings.Contains(res.stdout, "ok") {
		t.Fatalf("benign mode under its profile: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	checkAttacks(t,
		func(a string) string { return runOut(t, bin, "attack", a) },
		func(a string) string { return syscage(t, "exec", "--profile", out, "--", bin, "attack", a).stdout })
}

// The same in runc containers: recorded from the container's seccomp start, under
// a filter that refuses nothing the workload does.
func TestArgsRunc(t *testing.T) {
	testenv.RequireRoot(t)
	bin := workload.BuildArgs(t, t.TempDir())
	files := map[string]string{"/bin/args": bin}
	p := recordInRunc(t, files, "/bin/args", "benign")
	showRules(t, p)
	if res, err := runcWith(t, p, files, "/bin/args", "benign"); err != nil || res.ExitCode != 0 {
		t.Fatalf("benign mode under its profile: %v exit %d\n%s%s", err, res.ExitCode, res.Stdout, res.Stderr)
	}
	run := func(p *specs.LinuxSeccomp, a string) string {
		res, err := runcWith(t, p, files, "/bin/args", "attack", a)
		if err != nil {
			t.Fatalf("runc: %v", err)
		}
		return res.Stdout
	}
	checkAttacks(t, func(a string) string { return run(nil, a) }, func(a string) string { return run(p, a) })
}

// The same through the podman hook: recorded under podman's default filter (so
// the recorder never sees clone3, which that filter answers first), replayed with
// --security-opt seccomp=.
func TestArgsPodmanHook(t *testing.T) {
	e := newHookEnv(t)
	bin := workload.BuildArgs(t, t.TempDir())
	image := rt.PodmanImage(t, map[string]string{"/bin/args": bin})
	res, err := e.podman(t, image, []string{"--annotation", "io.syscage.record=args"}, "/bin/args", "benign")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("recording run: exit %d, %v\n%s%s", res.ExitCode, err, res.Stdout, res.Stderr)
	}
	path := filepath.Join(e.profiles, "args.json")
	p, _ := readSpecProfile(t, path)
	showRules(t, p)
	withProfile := []string{"--security-opt", "seccomp=" + path}
	if res, err := e.podman(t, image, withProfile, "/bin/args", "benign"); err != nil || res.ExitCode != 0 {
		t.Fatalf("benign mode under its profile: exit %d, %v\n%s%s", res.ExitCode, err, res.Stdout, res.Stderr)
	}
	run := func(extra []string, a string) string {
		res, err := e.podman(t, image, extra, "/bin/args", "attack", a)
		if err != nil {
			t.Fatalf("podman: %v", err)
		}
		return res.Stdout
	}
	checkAttacks(t,
		func(a string) string { return run([]string{"--security-opt", "seccomp=unconfined"}, a) },
		func(a string) string { return run(withProfile, a) })
}

// runOut runs a command on the host and returns its standard output.
func runOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return string(out)
}

// A JIT keeps its writable-executable memory: grep -P compiles its pattern with
// PCRE2's JIT, which maps W+X; recorded, its profile allows that, and grep runs
// under it. (The attack tests show a profile without it refuses W+X.)
func TestArgsJIT(t *testing.T) {
	testenv.RequireRoot(t)
	grep := testenv.RequireCommand(t, "grep")
	out := filepath.Join(t.TempDir(), "jit.json")
	args := []string{grep, "-cP", "(ro+t)+:", "/etc/passwd"}
	if res := syscage(t, append([]string{"record", "-q", "-o", out, "--"}, args...)...); res.code != 0 {
		t.Fatalf("record: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	p, _ := readSpecProfile(t, out)
	wx := false
	for _, sc := range p.Syscalls {
		for _, a := range sc.Args {
			if slices.Contains(sc.Names, "mmap") && a.Op == specs.OpMaskedEqual && a.Value == 6 && a.ValueTwo == 6 {
				wx = true
			}
		}
	}
	if !wx {
		showRules(t, p)
		t.Fatal("grep -P's profile does not allow mmap(PROT_WRITE|PROT_EXEC): did PCRE2's JIT run?")
	}
	if res := syscage(t, append([]string{"exec", "--profile", out, "--"}, args...)...); res.code != 0 || strings.TrimSpace(res.stdout) == "" {
		t.Fatalf("grep -P under its profile: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

// A recorded call the baseline refuses is reported and left out; --baseline none
// keeps it; --args none gives rules by name only.
func TestArgsBaselineChoice(t *testing.T) {
	testenv.RequireRoot(t)
	bin := workload.BuildArgs(t, t.TempDir())
	dir := t.TempDir()
	clipped, kept, names := filepath.Join(dir, "clipped.json"), filepath.Join(dir, "kept.json"), filepath.Join(dir, "names.json")
	res := syscage(t, "record", "-q", "-o", clipped, "--", bin, "attack", "unshare-newuser")
	if res.code != 0 || !strings.Contains(res.stderr, "refuses 1 recorded call") || !strings.Contains(res.stderr, "unshare(CLONE_NEWUSER)") {
		t.Errorf("record: exit %d, stderr %q: want the dropped unshare(CLONE_NEWUSER) named", res.code, res.stderr)
	}
	if p, _ := readSpecProfile(t, clipped); slices.ContainsFunc(p.Syscalls, func(sc specs.LinuxSyscall) bool { return slices.Contains(sc.Names, "unshare") }) {
		t.Errorf("unshare is in the profile clipped to containerd's default")
	}
	if res := syscage(t, "record", "-q", "--baseline", "none", "-o", kept, "--", bin, "attack", "unshare-newuser"); res.code != 0 || res.stderr != "" {
		t.Errorf("record --baseline none: exit %d, stderr %q", res.code, res.stderr)
	}
	if out := syscage(t, "exec", "--profile", kept, "--", bin, "attack", "unshare-newuser").stdout; attackResult(t, "unshare-newuser", out) == 1 {
		t.Errorf("with --baseline none the recorded unshare(CLONE_NEWUSER) is refused: %q", out)
	}
	if res := syscage(t, "record", "-q", "--args", "none", "--baseline", "none", "-o", names, "--", bin, "benign"); res.code != 0 {
		t.Fatalf("record --args none: exit %d %s", res.code, res.stderr)
	}
	p, _ := readSpecProfile(t, names)
	for _, sc := range p.Syscalls {
		if len(sc.Args) > 0 || sc.Action != specs.ActAllow {
			t.Errorf("--args none --baseline none wrote a rule other than names: %+v", sc)
		}
	}
}
