package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/hooks"
	"github.com/syscage/syscage/tests/internal/rt"
	"github.com/syscage/syscage/tests/testenv"
	"github.com/syscage/syscage/tests/workload"
)

// dockerEnv is a dockerd of the test's own with syscage-runc registered as the
// runtime "syscage" in its daemon.json, recording with the test's hook config.
type dockerEnv struct {
	*hookEnv
	docker *rt.Docker
	image  string
}

func newDockerEnv(t testing.TB, tweaks ...func(cfg map[string]any)) *dockerEnv {
	t.Helper()
	e := newHookEnv(t, tweaks...)
	realRunc := testenv.RequireCommand(t, "runc")
	dir := t.TempDir()
	link := filepath.Join(dir, hooks.RuncName)
	if err := os.Symlink(hookBinary, link); err != nil {
		t.Fatal(err)
	}
	// The containerd shim runs the runtime with containerd's environment; a script
	// gives it this test's hook config.
	runtime := filepath.Join(dir, "runtime")
	script := "#!/bin/sh\nSYSCAGE_HOOK_CONFIG=" + e.config + " SYSCAGE_RUNC=" + realRunc + " exec " + link + ` "$@"` + "\n"
	if err := os.WriteFile(runtime, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	d := rt.StartDocker(t, map[string]string{"syscage": runtime})
	wl := workload.Build(t, t.TempDir(), workload.Static)
	return &dockerEnv{hookEnv: e, docker: d, image: d.Image(t, map[string]string{"/bin/workload": wl})}
}

func (e *dockerEnv) run(t testing.TB, extra []string, cmd ...string) (rt.Result, error) {
	t.Helper()
	return e.docker.Try(t, "", e.image, extra, cmd...)
}

// One dockerd (Debian's engine 20.10, API 1.41, which passes no annotations into
// config.json) serves every case: it takes seconds to start.
func TestDocker(t *testing.T) {
	e := newDockerEnv(t)
	record := func(name string) []string { return []string{"--runtime", "syscage", "-e", "SYSCAGE_RECORD=" + name} }

	t.Run("env selects, profile replays", func(t *testing.T) {
		res, err := e.run(t, record("web"), "/bin/workload", "calls")
		if err != nil || res.ExitCode != 0 || !strings.Contains(res.Stdout, "ok") {
			t.Fatalf("recording run: exit %d, %v\n%s%s", res.ExitCode, err, res.Stdout, res.Stderr)
		}
		// Written by the time docker run returns (poststop), not eventually.
		names := e.profile(t, "web")
		wantAll(t, "web", names)
		// Recorded from the seccomp filter on (Docker's default profile): runc's
		// set-up before it is not in the profile.
		for _, setup := range []string{"sched_yield", "pipe2", "setns", "pivot_root", "mount"} {
			if slices.Contains(names, setup) {
				t.Errorf("runtime set-up call %q recorded", setup)
			}
		}
		path := filepath.Join(e.profiles, "web.json")
		// Docker's default profile answers clone3 with ENOSYS, and glibc's
		// pthread_create then falls back to clone. The profile gives the same
		// answer: with EPERM, the workload's thread would not start under it.
		p, _ := readSpecProfile(t, path)
		if !slices.ContainsFunc(p.Syscalls, func(r specs.LinuxSyscall) bool {
			return slices.Contains(r.Names, "clone3") && r.Action == specs.ActErrno && r.ErrnoRet != nil && *r.ErrnoRet == 38
		}) {
			t.Errorf("want clone3 answered with ENOSYS (38) in the profile, as Docker's default does: %+v", p.Syscalls)
		}
		res, err = e.run(t, []string{"--security-opt", "seccomp=" + path}, "/bin/workload", "calls")
		if err != nil || res.ExitCode != 0 || !strings.Contains(res.Stdout, "ok") {
			t.Fatalf("workload under its profile: exit %d, %v\n%s%s", res.ExitCode, err, res.Stdout, res.Stderr)
		}
		strict := writeProfile(t, without(t, p, "getitimer"))
		res, err = e.run(t, []string{"--security-opt", "seccomp=" + strict}, "/bin/workload", "calls")
		if err != nil || res.ExitCode == 0 || !strings.Contains(res.Stdout, "denied: getitimer") {
			t.Errorf("under the profile without getitimer: exit %d, %v\n%s%s", res.ExitCode, err, res.Stdout, res.Stderr)
		}
	})

	t.Run("unselected containers are left alone", func(t *testing.T) {
		res, err := e.run(t, []string{"--runtime", "syscage", "-e", "OTHER=1"}, "/bin/workload", "calls")
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
		}
		if _, err := os.Stat(filepath.Join(e.profiles, "OTHER.json")); err == nil {
			t.Error("a profile for an unselected container")
		}
	})

	t.Run("annotation", func(t *testing.T) {
		if maj, min := e.docker.APIVersion(t); maj == 1 && min < 43 {
			t.Skipf("docker run --annotation needs engine API 1.43 (Docker 24); this engine speaks %d.%d: containers are selected with -e SYSCAGE_RECORD", maj, min)
		}
		client := e.docker.ClientWith("--annotation")
		if client == "" {
			t.Fatal("the engine speaks API 1.43 or later, but no docker client here has run --annotation")
		}
		res, err := e.docker.Try(t, client, e.image, []string{"--runtime", "syscage", "--annotation", "io.syscage.record=ann"}, "/bin/workload", "calls")
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
		}
		wantAll(t, "ann", e.profile(t, "ann"))
		_, err = e.docker.Try(t, client, e.image, []string{"--runtime", "syscage", "--annotation", "io.syscage.record=ann", "-e", "SYSCAGE_RECORD=other"}, "true")
		if err == nil || !strings.Contains(err.Error(), "disagree") {
			t.Errorf("annotation and variable that disagree: %v", err)
		}
	})

	t.Run("--rm, merge across runs, replace", func(t *testing.T) {
		run := func(name string, cmd ...string) {
			t.Helper()
			if res, err := e.run(t, record(name), cmd...); err != nil || res.ExitCode != 0 {
				t.Fatalf("%v: exit %d, %v\n%s", cmd, res.ExitCode, err, res.Stderr)
			}
		}
		run("app", "true")
		if first := e.profile(t, "app"); !slices.Contains(first, "execve") {
			t.Errorf("profile of true lacks execve: %v", first)
		}
		run("app", "/bin/workload", "calls")
		wantAll(t, "merged", e.profile(t, "app"))
		run("app;replace", "true")
		if replaced := e.profile(t, "app"); slices.Contains(replaced, "membarrier") {
			t.Errorf(";replace kept the earlier run: %v", replaced)
		}
	})

	t.Run("unconfined: from the entrypoint's exec", func(t *testing.T) {
		res, err := e.run(t, append(record("u"), "--security-opt", "seccomp=unconfined"), "/bin/workload", "calls")
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
		}
		names := e.profile(t, "u")
		wantAll(t, "unconfined", names)
		for _, setup := range []string{"pivot_root", "capset", "setgroups", "sethostname"} {
			if slices.Contains(names, setup) {
				t.Errorf("runtime set-up call %q recorded", setup)
			}
		}
	})

	t.Run("refusals reach docker", func(t *testing.T) {
		outside := filepath.Join(t.TempDir(), "outside.json")
		if err := os.MkdirAll(e.profiles, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(e.profiles, "link.json")); err != nil {
			t.Fatal(err)
		}
		tests := []struct{ name, value, want string }{
			{"traversal", "../evil", "a profile name is 1-128 letters"},
			{"slash", "a/b", "a profile name is 1-128 letters"},
			{"empty", "", "a profile name is 1-128 letters"},
			{"unknown option", "web;overwrite", `unknown option "overwrite"`},
			// Refused by the hook at prestart, through runc's log.
			{"symlink out", "link", "is not a regular file (a symbolic link?)"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res, err := e.run(t, record(tt.value), "true")
				if err == nil {
					t.Fatalf("container started (exit %d)", res.ExitCode)
				}
				if !strings.Contains(res.Stderr, "Error response from daemon") || !strings.Contains(res.Stderr, tt.want) {
					t.Errorf("want %q in what docker shows, got: %s", tt.want, res.Stderr)
				}
			})
		}
		if _, err := os.Stat(outside); err == nil {
			t.Error("a file was written outside the allowed directory")
		}
	})

	t.Run("twenty at once", func(t *testing.T) {
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
				res, err := e.run(t, record(fmt.Sprintf("c%d", i)), cmd...)
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
	})
}

// BenchmarkDocker: `docker run --rm IMAGE true` through syscage-runc recording the
// container, and through it not selecting it, against Docker's own runc, side by
// side in 9 interleaved rounds (the recorder already running: it is warm after
// the first recorded run, which is not counted).
func BenchmarkDocker(b *testing.B) {
	// The recorder stays (idleExit 0s, as a service would), so that each round
	// measures a warm recorder; the benchmark stops it at the end.
	e := newDockerEnv(b, func(cfg map[string]any) { cfg["idleExit"] = "0s" })
	b.Cleanup(func() {
		if pid := e.recorderPid(); pid > 0 {
			syscall.Kill(pid, syscall.SIGTERM)
		}
	})
	cfgs := map[string][]string{
		"none":     nil,
		"wrapper":  {"--runtime", "syscage"},
		"recorded": {"--runtime", "syscage", "-e", "SYSCAGE_RECORD=bench"},
	}
	order := []string{"none", "wrapper", "recorded"}
	e.docker.Run(b, e.image, cfgs["recorded"], "true") // starts the recorder
	samples := map[string][]float64{}
	for round := range 9 {
		for i := range order {
			name := order[(i+round)%len(order)]
			start := time.Now()
			if res := e.docker.Run(b, e.image, cfgs[name], "true"); res.ExitCode != 0 {
				b.Fatalf("%s: exit %d: %s", name, res.ExitCode, res.Stderr)
			}
			samples[name] = append(samples[name], float64(time.Since(start).Microseconds())/1000)
		}
	}
	none := median(samples["none"])
	for _, name := range order {
		b.ReportMetric(median(samples[name]), "ms-"+name)
	}
	b.ReportMetric(median(samples["recorded"])/none, "x-recorded/none")
	b.ReportMetric(median(samples["wrapper"])/none, "x-wrapper/none")
}
