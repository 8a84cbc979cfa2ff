package tests

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/syscage/syscage/bpf"
	"github.com/syscage/syscage/bpf/cgroups"
	"github.com/syscage/syscage/hooks"
	"github.com/syscage/syscage/hooks/recorder"
	"github.com/syscage/syscage/tests/internal/rt"
	"github.com/syscage/syscage/tests/testenv"
	"github.com/syscage/syscage/tests/workload"
)

// hookEnv is an installed hook: a hooks.d directory whose hook runs the built
// binary with a config of the test's own.
type hookEnv struct {
	profiles, runDir, pinDir, log, config, hooksDir string
}

// newHookEnv installs the hook; tweaks change its config.
func newHookEnv(t testing.TB, tweaks ...func(cfg map[string]any)) *hookEnv {
	t.Helper()
	testenv.RequireRoot(t)
	dir := t.TempDir()
	e := &hookEnv{
		profiles: filepath.Join(dir, "profiles"),
		runDir:   filepath.Join(tmpfsDir(t), "run"),
		log:      filepath.Join(dir, "hook.log"),
		config:   filepath.Join(dir, "hook.json"),
		hooksDir: filepath.Join(dir, "hooks.d"),
		// A pin directory of its own: the recorders of tests running at once must
		// not take over each other's pins.
		pinDir: filepath.Join("/sys/fs/bpf", "syscage-test-"+randomHex()),
	}
	cfg := map[string]any{
		"profilesDir": e.profiles, "compatDirs": []string{e.profiles}, "logFile": e.log,
		"runDir": e.runDir, "pinDir": e.pinDir, "idleExit": "1s", "timeout": "5s",
	}
	for _, tweak := range tweaks {
		tweak(cfg)
	}
	writeJSON(t, e.config, cfg)
	// The shipped hooks.d file, pointed at this build and config.
	var hook map[string]any
	data, err := os.ReadFile("../hooks/syscage.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &hook); err != nil {
		t.Fatal(err)
	}
	hook["hook"] = map[string]any{"path": hookBinary, "args": []string{"syscage-hook", "hook", "--config", e.config}}
	if err := os.MkdirAll(e.hooksDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeJSON(t, filepath.Join(e.hooksDir, "syscage.json"), hook)
	t.Cleanup(func() { e.waitRecorderGone(t) })
	return e
}

// tmpfsDir is a temporary directory on a tmpfs where /dev/shm is one: a run
// directory there is as /run is on a host (the recorder's state files cost
// 1-2 ms each on this machine's ext4, against tens of microseconds on a tmpfs).
func tmpfsDir(t testing.TB) string {
	var st unix.Statfs_t
	if unix.Statfs("/dev/shm", &st) == nil && st.Type == unix.TMPFS_MAGIC {
		if dir, err := os.MkdirTemp("/dev/shm", "syscage-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

func randomHex() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitRecorderGone checks that the recorder exits by itself once idle, and kills it
// (failing the test) if it does not.
func (e *hookEnv) waitRecorderGone(t testing.TB) {
	pid := e.recorderPid()
	deadline := time.Now().Add(10 * time.Second)
	for pid > 0 && syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("recorder %d still running 10s after the test", pid)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A recorder removes its pid file first and its cgroup last: one read
	// without a pid file may be on its way out, or a recorder that lost the
	// lock may still be leaving. What is still there 5 s on is left behind.
	cgroup := ""
	if mnt, err := cgroups.Mount(); err == nil {
		cgroup = filepath.Join(mnt, e.recorderCgroup())
	}
	exists := func(path string) bool {
		_, err := os.Stat(path)
		return path != "" && err == nil
	}
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && (exists(cgroup) || exists(e.runDir) || exists(e.pinDir)); {
		time.Sleep(20 * time.Millisecond)
	}
	if exists(cgroup) {
		procs, _ := os.ReadFile(filepath.Join(cgroup, "cgroup.procs"))
		t.Errorf("the recorder's cgroup is left behind, holding processes %q", procs)
	}
	// Nothing at all is left after the idle exit: no pins, no run directory
	// (socket, lock, pid, state), no program any recorder loaded.
	if _, err := os.Stat(e.pinDir); err == nil {
		t.Errorf("pins left behind in %s", e.pinDir)
		bpf.RemovePins(e.pinDir)
	}
	if entries, err := os.ReadDir(e.runDir); err == nil {
		var names []string
		for _, en := range entries {
			names = append(names, en.Name())
		}
		t.Errorf("%s left behind, holding %v", e.runDir, names)
	}
	if ids := e.programIDs(t); len(ids) > 0 {
		if left := bpf.LoadedPrograms(ids, 5*time.Second); len(left) > 0 {
			t.Errorf("programs %v of the recorders still loaded", left)
		}
	}
	if t.Failed() {
		if log, err := os.ReadFile(e.log); err == nil {
			t.Logf("hook log:\n%s", log)
		}
	}
}

func (e *hookEnv) recorderCgroup() string {
	return (&hooks.Config{RunDir: e.runDir}).RecorderCgroup()
}

// programIDs returns the programs every recorder of the test loaded, from the
// "recorder started" lines of the log.
func (e *hookEnv) programIDs(t testing.TB) []ebpf.ProgramID {
	data, err := os.ReadFile(e.log)
	if err != nil {
		return nil
	}
	var ids []ebpf.ProgramID
	for _, m := range programsRE.FindAllStringSubmatch(string(data), -1) {
		for _, f := range strings.Fields(m[1]) {
			id, err := strconv.ParseUint(f, 10, 32)
			if err != nil {
				t.Fatalf("log: programs %q", m[1])
			}
			ids = append(ids, ebpf.ProgramID(id))
		}
	}
	return ids
}

var programsRE = regexp.MustCompile(`msg="recorder started".* programs="?\[([0-9 ]*)\]`)

func (e *hookEnv) recorderPid() int {
	b, err := os.ReadFile(filepath.Join(e.runDir, "recorder.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func (e *hookEnv) podman(t testing.TB, image string, extra []string, cmd ...string) (rt.Result, error) {
	t.Helper()
	return rt.PodmanTry(t, image, append([]string{"--hooks-dir", e.hooksDir}, extra...), cmd...)
}

func (e *hookEnv) profile(t *testing.T, name string) []string {
	t.Helper()
	return readProfile(t, filepath.Join(e.profiles, name+".json"))
}

func workloadImage(t *testing.T) (string, string) {
	t.Helper()
	wl := workload.Build(t, t.TempDir(), workload.Static)
	return rt.PodmanImage(t, map[string]string{"/bin/workload": wl}), wl
}

func TestHookPodmanProfileWorks(t *testing.T) {
	e := newHookEnv(t)
	image, _ := workloadImage(t)
	res, err := e.podman(t, image, []string{"--annotation", "io.syscage.record=web"}, "/bin/workload", "calls")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("recording run: exit %d, %v\n%s%s", res.ExitCode, err, res.Stdout, res.Stderr)
	}
	// Written by the time podman returns (poststop), not eventually.
	names := e.profile(t, "web")
	wantAll(t, "web", names)
	path := filepath.Join(e.profiles, "web.json")
	res, err = e.podman(t, image, []string{"--security-opt", "seccomp=" + path}, "/bin/workload", "calls")
	if err != nil || res.ExitCode != 0 || !strings.Contains(res.Stdout, "ok") {
		t.Fatalf("workload under its profile: exit %d, %v\n%s%s", res.ExitCode, err, res.Stdout, res.Stderr)
	}
	p, _ := readSpecProfile(t, path)
	strict := writeProfile(t, without(t, p, "getitimer"))
	res, err = e.podman(t, image, []string{"--security-opt", "seccomp=" + strict}, "/bin/workload", "calls")
	if err == nil && res.ExitCode == 0 {
		t.Fatal("workload succeeded under its profile without getitimer")
	}
	if !strings.Contains(res.Stdout, "denied: getitimer") {
		t.Errorf("want getitimer reported denied, got %q %q", res.Stdout, res.Stderr)
	}
	// The runtime's own set-up before the filter is not in the profile.
	for _, setup := range []string{"sched_yield", "pipe2", "setns"} {
		if slices.Contains(names, setup) {
			t.Errorf("runtime set-up call %q recorded", setup)
		}
	}
}

func readSpecProfile(t *testing.T, path string) (*specs.LinuxSeccomp, []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p specs.LinuxSeccomp
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	return &p, data
}

func wantAll(t *testing.T, what string, names []string) {
	t.Helper()
	for part, calls := range workload.Calls {
		for _, c := range calls {
			if !slices.Contains(names, c) {
				t.Errorf("%s: %s call %q missing", what, part, c)
			}
		}
	}
}

// A container that exits at once, run with --rm, still gets its profile; runs of
// the same name merge, and ";replace" starts afresh.
func TestHookTrueRmMergeReplace(t *testing.T) {
	e := newHookEnv(t)
	image, _ := workloadImage(t)
	run := func(ann string, cmd ...string) {
		t.Helper()
		if res, err := e.podman(t, image, []string{"--annotation", "io.syscage.record=" + ann}, cmd...); err != nil || res.ExitCode != 0 {
			t.Fatalf("%v: exit %d, %v\n%s", cmd, res.ExitCode, err, res.Stderr)
		}
	}
	run("app", "true")
	first := e.profile(t, "app")
	if !slices.Contains(first, "execve") {
		t.Errorf("profile of true lacks execve: %v", first)
	}
	run("app", "/bin/workload", "calls")
	merged := e.profile(t, "app")
	wantAll(t, "merged", merged)
	run("app;replace", "true")
	if replaced := e.profile(t, "app"); slices.Contains(replaced, "membarrier") {
		t.Errorf(";replace kept the earlier run: %v", replaced)
	}
}

// Twenty containers at once: one recorder process, twenty separate profiles.
func TestHookTwentyConcurrentContainers(t *testing.T) {
	e := newHookEnv(t)
	image, _ := workloadImage(t)
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	pids := map[int]bool{}
	var mu sync.Mutex
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := []string{"true"}
			if i%2 == 0 {
				cmd = []string{"/bin/workload", "calls"}
			}
			res, err := e.podman(t, image, []string{"--annotation", fmt.Sprintf("io.syscage.record=c%d", i)}, cmd...)
			if err == nil && res.ExitCode != 0 {
				err = fmt.Errorf("exit %d: %s", res.ExitCode, res.Stderr)
			}
			errs[i] = err
			mu.Lock()
			pids[e.recorderPid()] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("container %d: %v", i, err)
		}
	}
	if len(pids) != 1 {
		t.Errorf("want one recorder process, saw pids %v", pids)
	}
	for i := range n {
		names := e.profile(t, fmt.Sprintf("c%d", i))
		if i%2 == 0 {
			wantAll(t, fmt.Sprintf("c%d", i), names)
			continue
		}
		for _, calls := range workload.Calls {
			for _, c := range calls {
				if slices.Contains(names, c) {
					t.Errorf("c%d (true) has the workload's %q: cross-talk", i, c)
				}
			}
		}
	}
}

// The annotation of containers/oci-seccomp-bpf-hook: of: and if:.
func TestHookCompatAnnotation(t *testing.T) {
	e := newHookEnv(t)
	image, _ := workloadImage(t)
	if err := os.MkdirAll(e.profiles, 0o755); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(e.profiles, "in.json")
	writeJSON(t, in, map[string]any{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
		"syscalls": []any{map[string]any{"names": []string{"kexec_load", "sync"}, "action": "SCMP_ACT_ALLOW"}}})
	out := filepath.Join(e.profiles, "out.json")
	res, err := e.podman(t, image, []string{"--annotation", "io.containers.trace-syscall=of:" + out + ";if:" + in}, "/bin/workload", "calls")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	names := readProfile(t, out)
	wantAll(t, "compat", names)
	if !slices.Contains(names, "sync") {
		t.Errorf("if: profile not merged in: %v", names)
	}
	// kexec_load is beyond the baseline (containerd's default): left out, and said.
	if slices.Contains(names, "kexec_load") {
		t.Errorf("kexec_load, which the baseline refuses, is in the profile: %v", names)
	}
	if b, err := os.ReadFile(out + ".dropped"); err != nil || !strings.Contains(string(b), "kexec_load") {
		t.Errorf("%s.dropped does not name kexec_load: %v %s", out, err, b)
	}
}

// Every refusal fails the container's start with one line naming the cause, and
// writes nothing anywhere.
func TestHookRefusals(t *testing.T) {
	e := newHookEnv(t)
	image, _ := workloadImage(t)
	outside := filepath.Join(t.TempDir(), "outside.json")
	if err := os.MkdirAll(e.profiles, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(e.profiles, "link.json")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, key, value, want string
	}{
		{"traversal", "io.syscage.record", "../evil", "a profile name is 1-128 letters"},
		{"slash", "io.syscage.record", "a/b", "a profile name is 1-128 letters"},
		{"unknown option", "io.syscage.record", "web;overwrite", `unknown option "overwrite"`},
		{"symlink out", "io.syscage.record", "link", "is not a regular file (a symbolic link?)"},
		{"compat outside", "io.containers.trace-syscall", "of:" + outside, "is outside the directories the hook config allows"},
		{"compat relative", "io.containers.trace-syscall", "of:out.json", "must be an absolute, clean path"},
		{"compat dotdot", "io.containers.trace-syscall", "of:" + e.profiles + "/../x.json", "must be an absolute, clean path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.podman(t, image, []string{"--annotation", tt.key + "=" + tt.value}, "true")
			if err == nil {
				t.Fatalf("container started (exit %d)", res.ExitCode)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("want %q in podman's error, got: %v", tt.want, err)
			}
		})
	}
	if _, err := os.Stat(outside); err == nil {
		t.Error("a file was written outside the allowed directory")
	}
}

// The same hook from a runc bundle's config.json.
func TestHookRuncBundle(t *testing.T) {
	e := newHookEnv(t)
	wl := workload.Build(t, t.TempDir(), workload.Static)
	files := map[string]string{"/bin/workload": wl}
	dir, spec := rt.Bundle(t, []string{"/bin/workload", "calls"}, files)
	hook := specs.Hook{Path: hookBinary, Args: []string{"syscage-hook", "hook", "--config", e.config}}
	spec.Hooks = &specs.Hooks{Prestart: []specs.Hook{hook}, Poststop: []specs.Hook{hook}}
	spec.Annotations = map[string]string{"io.syscage.record": "bundle"}
	spec.Linux.Seccomp = permissive(t)
	rt.WriteSpec(t, dir, spec)
	if res := rt.RuncRun(t, dir); res.ExitCode != 0 {
		t.Fatalf("exit %d: %s", res.ExitCode, res.Stderr)
	}
	p, _ := readSpecProfile(t, filepath.Join(e.profiles, "bundle.json"))
	res, err := runcWith(t, p, files, "/bin/workload", "calls")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("workload under its hook-recorded profile: exit %d, %v\n%s%s", res.ExitCode, err, res.Stdout, res.Stderr)
	}
}

func denyGetitimer(t *testing.T) string {
	return writeProfile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: permissive(t).Architectures,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getitimer"}, Action: specs.ActErrno}},
	})
}

// Through the hook, the refusals of the filter in force are written beside the
// profile, and the report goes away once a run has none.
func TestHookReportsRefusedCalls(t *testing.T) {
	e := newHookEnv(t, func(cfg map[string]any) { cfg["reportRefused"] = true })
	image, _ := workloadImage(t)
	deny := denyGetitimer(t)
	res, err := e.podman(t, image, []string{"--annotation", "io.syscage.record=r", "--security-opt", "seccomp=" + deny}, "/bin/workload", "calls")
	if err != nil || !strings.Contains(res.Stdout, "denied: getitimer") {
		t.Fatalf("want the workload refused getitimer: exit %d, %v\n%s", res.ExitCode, err, res.Stdout)
	}
	report, err := os.ReadFile(filepath.Join(e.profiles, "r.json"+recorder.DeniedSuffix))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Denied []struct {
			Name  string
			Count uint64
		}
	}
	if err := json.Unmarshal(report, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Denied) != 1 || got.Denied[0].Name != "getitimer" || got.Denied[0].Count != 1 {
		t.Errorf("report: %s", report)
	}
	if slices.Contains(e.profile(t, "r"), "getitimer") {
		t.Error("a refused call is in the profile")
	}
	if res, err := e.podman(t, image, []string{"--annotation", "io.syscage.record=r"}, "true"); err != nil || res.ExitCode != 0 {
		t.Fatalf("second run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.profiles, "r.json"+recorder.DeniedSuffix)); err == nil {
		t.Error("the report of an earlier run is left behind")
	}
}

// With reportRefused off (the default), nothing is attached to sys_exit and no report is written.
func TestHookReportRefusedOff(t *testing.T) {
	e := newHookEnv(t)
	image, _ := workloadImage(t)
	res, err := e.podman(t, image, []string{"--annotation", "io.syscage.record=r", "--security-opt", "seccomp=" + denyGetitimer(t)}, "/bin/workload", "calls")
	if err != nil || !strings.Contains(res.Stdout, "denied: getitimer") {
		t.Fatalf("want the workload refused getitimer: exit %d, %v\n%s", res.ExitCode, err, res.Stdout)
	}
	if _, err := os.Stat(filepath.Join(e.profiles, "r.json"+recorder.DeniedSuffix)); err == nil {
		t.Error("a refusal report was written with reportRefused off")
	}
	if _, err := os.Stat(filepath.Join(e.profiles, "r.json")); err != nil {
		t.Errorf("no profile: %v", err)
	}
}

// Without a seccomp filter, a container is recorded from its entrypoint's exec.
func TestHookUnconfinedFromExec(t *testing.T) {
	e := newHookEnv(t)
	image, _ := workloadImage(t)
	res, err := e.podman(t, image, []string{"--annotation", "io.syscage.record=u", "--security-opt", "seccomp=unconfined"}, "/bin/workload", "calls")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	names := e.profile(t, "u")
	wantAll(t, "unconfined", names)
	if !slices.Contains(names, "execve") {
		t.Errorf("the entrypoint's execve is missing: %v", names)
	}
	// runc's own work before the exec (capset, setgroups, pivot_root…) is not in it.
	for _, setup := range []string{"pivot_root", "capset", "setgroups", "sethostname"} {
		if slices.Contains(names, setup) {
			t.Errorf("runtime set-up call %q recorded", setup)
		}
	}
}

// A recorder stopped with SIGTERM writes what it has recorded before it exits.
func TestHookRecorderStoppedWritesProfiles(t *testing.T) {
	e := newHookEnv(t)
	image, _ := workloadImage(t)
	// The container is still running when the recorder is stopped.
	done := make(chan error, 1)
	go func() {
		_, err := e.podman(t, image, []string{"--annotation", "io.syscage.record=stopped"}, "sh", "-c", "/bin/workload calls; sleep 3")
		done <- err
	}()
	var pid int
	for deadline := time.Now().Add(10 * time.Second); pid == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		pid = e.recorderPid()
	}
	if pid == 0 {
		t.Fatal("no recorder started")
	}
	time.Sleep(1500 * time.Millisecond) // the workload has made its calls
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("recorder still running 5s after SIGTERM")
		}
	}
	wantAll(t, "stopped", e.profile(t, "stopped"))
	// The poststop hook finds no recorder, and starts one, which tells it how the
	// recording ended (the stopped one left that in the run directory).
	if err := <-done; err != nil {
		t.Errorf("poststop: %v", err)
	}
}

// A hook installed without syscage-recorder beside it fails the container's start
// saying what to install, rather than running it unrecorded.
func TestHookWithoutRecorderSaysSo(t *testing.T) {
	e := newHookEnv(t)
	alone := filepath.Join(t.TempDir(), "syscage-hook")
	data, err := os.ReadFile(hookBinary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alone, data, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, spec := rt.Bundle(t, []string{"true"}, nil)
	// Nor on PATH, where the hook looks next.
	hook := specs.Hook{Path: alone, Args: []string{"syscage-hook", "hook", "--config", e.config}, Env: []string{"PATH=" + t.TempDir()}}
	spec.Hooks = &specs.Hooks{Prestart: []specs.Hook{hook}, Poststop: []specs.Hook{hook}}
	spec.Annotations = map[string]string{"io.syscage.record": "alone"}
	rt.WriteSpec(t, dir, spec)
	res, err := rt.RuncTry(t, dir)
	if err == nil && res.ExitCode == 0 {
		t.Fatal("the container ran unrecorded")
	}
	want := filepath.Join(filepath.Dir(alone), "syscage-recorder") + " is not installed: install syscage-recorder beside syscage-hook"
	if msg := fmt.Sprint(err, res.Stderr); !strings.Contains(msg, want) {
		t.Errorf("runc's failure does not say %q:\n%s", want, msg)
	}

	// Installed as before the recorder had an executable of its own, beside the
	// whole CLI, it starts `syscage daemon`.
	cli, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(alone), "syscage"), cli, 0o755); err != nil {
		t.Fatal(err)
	}
	if res := rt.RuncRun(t, dir); res.ExitCode != 0 {
		t.Fatalf("beside the CLI: exit %d: %s", res.ExitCode, res.Stderr)
	}
	if names := e.profile(t, "alone"); !slices.Contains(names, "execve") {
		t.Errorf("the profile recorded beside the CLI lacks execve: %v", names)
	}
}
