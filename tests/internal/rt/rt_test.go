package rt

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/tests/testenv"
)

// profile denies mkdir with EPERM and allows everything else.
const profile = `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}`

// mkdirScript prints a marker, so a run that dies before the shell is told apart from
// one where only mkdir fails.
var mkdirScript = []string{"sh", "-c", "echo ok; mkdir /tmp/x"}

func gate(t testing.TB, runtime string) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, runtime)
	testenv.RequireCommand(t, "busybox")
}

func TestRootfs(t *testing.T) {
	testenv.RequireCommand(t, "busybox")
	t.Parallel()
	src := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(src, []byte("#!/bin/sh\n"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(src, 0o750|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	Rootfs(t, dir, map[string]string{"usr/local/bin/probe": src})

	fi, err := os.Stat(filepath.Join(dir, "usr/local/bin/probe"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode(), 0o750|os.ModeSetuid; got != want {
		t.Errorf("extra file mode = %v, want %v", got, want)
	}
	for _, p := range []string{"bin/sh", "bin/mkdir", "bin/httpd", "bin/wget", "bin/nc", "etc/passwd", "etc/group"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("rootfs lacks %s: %v", p, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "tmp")); err != nil || fi.Mode() != os.ModeDir|os.ModeSticky|0o777 {
		t.Errorf("rootfs /tmp: mode %v, %v; want drwxrwxrwt", fi.Mode(), err)
	}
}

func TestRuncRun(t *testing.T) {
	gate(t, "runc")
	t.Parallel()
	dir, _ := Bundle(t, []string{"sh", "-c", "echo hi; exit 3"}, nil)
	res := RuncRun(t, dir)
	if res.ExitCode != 3 || res.Stdout != "hi\n" {
		t.Errorf("runc run = exit %d, stdout %q, stderr %q; want exit 3, stdout \"hi\\n\"", res.ExitCode, res.Stdout, res.Stderr)
	}
}

func TestRuncRunExtraFile(t *testing.T) {
	gate(t, "runc")
	t.Parallel()
	// A script runs only if the copy kept its execute bit.
	src := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho from probe\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir, _ := Bundle(t, []string{"/opt/probe"}, map[string]string{"/opt/probe": src})
	res := RuncRun(t, dir)
	if res.ExitCode != 0 || res.Stdout != "from probe\n" {
		t.Errorf("runc run = exit %d, stdout %q, stderr %q; want exit 0, stdout \"from probe\\n\"", res.ExitCode, res.Stdout, res.Stderr)
	}
}

func TestRuncSeccomp(t *testing.T) {
	gate(t, "runc")
	t.Parallel()
	var seccomp specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(profile), &seccomp); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		seccomp *specs.LinuxSeccomp
	}{{"without profile", nil}, {"with profile", &seccomp}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, spec := Bundle(t, mkdirScript, nil)
			spec.Linux.Seccomp = tc.seccomp
			WriteSpec(t, dir, spec)
			checkMkdir(t, RuncRun(t, dir), tc.seccomp != nil)
		})
	}
}

func TestRuncHook(t *testing.T) {
	gate(t, "runc")
	t.Parallel()
	out := filepath.Join(t.TempDir(), "state.json")
	dir, spec := Bundle(t, []string{"true"}, nil)
	spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{
		Path: testenv.RequireCommand(t, "busybox"),
		Args: []string{"sh", "-c", "cat > " + out},
	}}}
	WriteSpec(t, dir, spec)
	res := RuncRun(t, dir)
	if res.ExitCode != 0 {
		t.Fatalf("runc run = exit %d, stderr %q", res.ExitCode, res.Stderr)
	}
	checkHookState(t, out, res.ID, "")
}

func TestPodmanRun(t *testing.T) {
	gate(t, "podman")
	t.Parallel()
	res := PodmanRun(t, PodmanImage(t, nil), nil, "echo", "hi")
	if res.ExitCode != 0 || res.Stdout != "hi\n" {
		t.Errorf("podman run = exit %d, stdout %q, stderr %q; want exit 0, stdout \"hi\\n\"", res.ExitCode, res.Stdout, res.Stderr)
	}
	res = PodmanRun(t, PodmanImage(t, nil), nil, "sh", "-c", "exit 3")
	if res.ExitCode != 3 {
		t.Errorf("podman run = exit %d, stderr %q; want exit 3", res.ExitCode, res.Stderr)
	}
}

func TestPodmanSeccomp(t *testing.T) {
	gate(t, "podman")
	t.Parallel()
	image := PodmanImage(t, nil)
	path := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(path, []byte(profile), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		extra []string
	}{{"without profile", nil}, {"with profile", []string{"--security-opt", "seccomp=" + path}}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkMkdir(t, PodmanRun(t, image, tc.extra, mkdirScript...), tc.extra != nil)
		})
	}
}

func TestPodmanHook(t *testing.T) {
	gate(t, "podman")
	t.Parallel()
	// The hooks directory must hold only hook files: podman parses every file in it.
	hooks := t.TempDir()
	out := filepath.Join(t.TempDir(), "state.json")
	hook := map[string]any{
		"version": "1.0.0",
		"hook":    map[string]any{"path": testenv.RequireCommand(t, "busybox"), "args": []string{"sh", "-c", "cat > " + out}},
		"when":    map[string]any{"annotations": map[string]string{`^io\.syscage\.rt$`: "^on$"}},
		"stages":  []string{"prestart"},
	}
	data, err := json.Marshal(hook)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hooks, "rt.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	image := PodmanImage(t, nil)

	res := PodmanRun(t, image, []string{"--hooks-dir", hooks}, "true")
	if res.ExitCode != 0 {
		t.Fatalf("podman run = exit %d, stderr %q", res.ExitCode, res.Stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatalf("hook ran without its annotation")
	}
	res = PodmanRun(t, image, []string{"--hooks-dir", hooks, "--annotation", "io.syscage.rt=on"}, "true")
	if res.ExitCode != 0 {
		t.Fatalf("podman run = exit %d, stderr %q", res.ExitCode, res.Stderr)
	}
	checkHookState(t, out, "", "io.syscage.rt")
}

// checkMkdir checks a run of mkdirScript: the shell always runs, and mkdir fails with
// EPERM exactly when the profile is applied.
func checkMkdir(t *testing.T, res Result, denied bool) {
	t.Helper()
	if res.Stdout != "ok\n" {
		t.Fatalf("stdout = %q, stderr %q; want \"ok\\n\"", res.Stdout, res.Stderr)
	}
	switch {
	case denied && (res.ExitCode == 0 || !strings.Contains(res.Stderr, "Operation not permitted")):
		t.Errorf("mkdir under the profile: exit %d, stderr %q; want failure with EPERM", res.ExitCode, res.Stderr)
	case !denied && res.ExitCode != 0:
		t.Errorf("mkdir without a profile: exit %d, stderr %q; want success", res.ExitCode, res.Stderr)
	}
}

// checkHookState checks that a hook received the container state on stdin.
func checkHookState(t *testing.T, path, id, annotation string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("hook did not run: %v", err)
	}
	var state specs.State
	if err := json.Unmarshal(data, &state); err != nil {
		t.Fatalf("hook state %q: %v", data, err)
	}
	if state.Pid <= 0 || (id != "" && state.ID != id) {
		t.Errorf("hook state = id %q pid %d; want id %q and a pid", state.ID, state.Pid, id)
	}
	if _, ok := state.Annotations[annotation]; annotation != "" && !ok {
		t.Errorf("hook state annotations %v lack %s", state.Annotations, annotation)
	}
}

func BenchmarkRuncRunTrue(b *testing.B) {
	gate(b, "runc")
	dir, _ := Bundle(b, []string{"true"}, nil)
	for b.Loop() {
		if res := RuncRun(b, dir); res.ExitCode != 0 {
			b.Fatalf("exit %d: %s", res.ExitCode, res.Stderr)
		}
	}
}

func BenchmarkPodmanRunTrue(b *testing.B) {
	gate(b, "podman")
	image := PodmanImage(b, nil)
	for b.Loop() {
		if res := PodmanRun(b, image, nil, "true"); res.ExitCode != 0 {
			b.Fatalf("exit %d: %s", res.ExitCode, res.Stderr)
		}
	}
}

func TestPodmanFailed(t *testing.T) {
	for _, tc := range []struct {
		res  Result
		want bool
	}{
		{Result{ExitCode: 125, Stderr: "Error: opening seccomp profile failed\n"}, true},
		{Result{ExitCode: 127, Stderr: "Error: runc: runc create failed: exec: \"x\": executable file not found in $PATH\n"}, true},
		{Result{ExitCode: 127, Stderr: "sh: x: not found\n"}, false},
		{Result{ExitCode: 1, Stderr: "Error: from the container\n"}, false},
		{Result{ExitCode: 126}, false},
	} {
		if got := podmanFailed(tc.res); got != tc.want {
			t.Errorf("podmanFailed(%+v) = %v, want %v", tc.res, got, tc.want)
		}
	}
}
