package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/syscage/syscage/bpf/cgroups"
	"github.com/syscage/syscage/hooks"
	"github.com/syscage/syscage/profile"
	"github.com/syscage/syscage/tests/internal/rt"
	"github.com/syscage/syscage/tests/workload"
)

// crashScript makes a call (sync) before the test kills the recorder, then waits
// for the test, then makes the workload's calls after the kill.
const crashScript = `sync; touch /sync/before; while [ ! -e /sync/go ]; do sleep 0.05; done; /bin/workload calls`

// stepper lets the test act between the two halves of crashScript.
type stepper struct{ dir string }

func newStepper(t testing.TB) *stepper {
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	return &stepper{dir: dir}
}

// waitBefore waits until the container has made its first call.
func (s *stepper) waitBefore(t testing.TB, running <-chan error) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(s.dir, "before")); err == nil {
			return
		}
		select {
		case err := <-running:
			t.Fatalf("the container ended before its first step: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the container did not make its first step within 30s")
		}
	}
}

func (s *stepper) release(t testing.TB) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// killRecorder SIGKILLs the recorder, as the OOM killer would, and waits until it
// is gone. Its pins stay, with the container still tracked in them.
func (e *hookEnv) killRecorder(t testing.TB) {
	t.Helper()
	pid := e.recorderPid()
	if pid <= 0 {
		t.Fatal("no recorder is running")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("recorder %d still running 5s after SIGKILL", pid)
		}
	}
}

// pinnedLinks returns the links pinned below the env's pin directory.
func (e *hookEnv) pinnedLinks(t *testing.T) []string {
	t.Helper()
	links, _ := filepath.Glob(filepath.Join(e.pinDir, "recorder-*", "links", "*"))
	return links
}

func (e *hookEnv) logText(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(e.log)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wantBothHalves checks a profile holds the calls made before the recorder was
// killed and after.
func wantBothHalves(t *testing.T, e *hookEnv, name string) {
	t.Helper()
	names := e.profile(t, name)
	if !slices.Contains(names, "sync") {
		t.Errorf("the call made before the recorder was killed (sync) is missing: %v", names)
	}
	wantAll(t, "after the kill", names)
}

// The recorder is killed while a podman container runs; the kernel goes on
// recording into the pins, and the recorder the poststop hook starts takes over:
// the profile holds the calls made before the kill and after.
func TestCrashPodmanRecorderKilled(t *testing.T) {
	e := newHookEnv(t)
	image, _ := workloadImage(t)
	s := newStepper(t)
	running := make(chan error, 1)
	go func() {
		res, err := e.podman(t, image, []string{"--annotation", "io.syscage.record=crash", "-v", s.dir + ":/sync"}, "sh", "-c", crashScript)
		if err == nil && res.ExitCode != 0 {
			err = errors.New(res.Stderr)
		}
		running <- err
	}()
	s.waitBefore(t, running)
	e.killRecorder(t)
	if len(e.pinnedLinks(t)) == 0 {
		t.Fatal("no links pinned while a container is recorded")
	}
	s.release(t)
	if err := <-running; err != nil {
		t.Fatalf("podman: %v", err)
	}
	wantBothHalves(t, e, "crash")
	if log := e.logText(t); !strings.Contains(log, `msg="took over a recording"`) {
		t.Errorf("no takeover logged:\n%s", log)
	}
}

// The same with runc and the hooks in the bundle's config.json; the next hook call
// is the prestart of another container, whose recorder takes the first over.
func TestCrashRuncRecorderKilled(t *testing.T) {
	e := newHookEnv(t)
	wl := workload.Build(t, t.TempDir(), workload.Static)
	s := newStepper(t)
	bundle := func(name string, args ...string) string {
		dir, spec := rt.Bundle(t, args, map[string]string{"/bin/workload": wl})
		hook := specs.Hook{Path: hookBinary, Args: []string{"syscage-hook", "hook", "--config", e.config}}
		spec.Hooks = &specs.Hooks{Prestart: []specs.Hook{hook}, Poststop: []specs.Hook{hook}}
		spec.Annotations = map[string]string{"io.syscage.record": name}
		spec.Linux.Seccomp = permissive(t)
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/sync", Type: "bind", Source: s.dir, Options: []string{"rbind", "rw"}})
		rt.WriteSpec(t, dir, spec)
		return dir
	}
	crash := bundle("crash", "sh", "-c", crashScript)
	other := bundle("other", "true")
	running := make(chan error, 1)
	go func() {
		res, err := rt.RuncTry(t, crash)
		if err == nil && res.ExitCode != 0 {
			err = errors.New(res.Stderr)
		}
		running <- err
	}()
	s.waitBefore(t, running)
	e.killRecorder(t)
	// Another container starts meanwhile: its recorder takes the first over.
	if res, err := rt.RuncTry(t, other); err != nil || res.ExitCode != 0 {
		t.Fatalf("other container: exit %d, %v", res.ExitCode, err)
	}
	s.release(t)
	if err := <-running; err != nil {
		t.Fatalf("runc: %v", err)
	}
	wantBothHalves(t, e, "crash")
	if names := e.profile(t, "other"); slices.Contains(names, "sync") {
		t.Errorf("other has the first container's calls: %v", names)
	}
}

// Pins that a recorder killed while idle left, with nothing tracked, are removed by
// the next recorder, and so is the cgroup it left; then nothing is left.
func TestCrashStalePinsRemoved(t *testing.T) {
	e := newHookEnv(t, func(cfg map[string]any) { cfg["idleExit"] = "30s" })
	image, _ := workloadImage(t)
	if res, err := e.podman(t, image, []string{"--annotation", "io.syscage.record=first"}, "true"); err != nil || res.ExitCode != 0 {
		t.Fatalf("first: %v", err)
	}
	e.killRecorder(t)
	stale, _ := filepath.Glob(filepath.Join(e.pinDir, "recorder-*"))
	if len(stale) == 0 {
		t.Fatal("the recorder pinned nothing")
	}
	mnt, err := cgroups.Mount()
	if err != nil {
		t.Fatal(err)
	}
	e.rewriteConfig(t, func(cfg map[string]any) { cfg["idleExit"] = "1s" })
	if res, err := e.podman(t, image, []string{"--annotation", "io.syscage.record=second"}, "true"); err != nil || res.ExitCode != 0 {
		t.Fatalf("second: %v", err)
	}
	if log := e.logText(t); !strings.Contains(log, `msg="removed stale pins" dir=`+stale[0]) {
		t.Errorf("stale pins %s not reported removed:\n%s", stale[0], log)
	}
	e.waitRecorderGone(t)
	if _, err := os.Stat(filepath.Join(mnt, e.recorderCgroup())); err == nil {
		t.Error("the cgroup of the killed recorder is left")
	}
}

func (e *hookEnv) rewriteConfig(t *testing.T, tweak func(cfg map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	tweak(cfg)
	writeJSON(t, e.config, cfg)
}

// `syscage daemon --cleanup` removes what a killed recorder left (pins, state,
// cgroup), writing first what the pins recorded; the container's poststop hook
// then has nothing to report.
func TestCrashDaemonCleanup(t *testing.T) {
	e := newHookEnv(t)
	image, _ := workloadImage(t)
	s := newStepper(t)
	running := make(chan error, 1)
	go func() {
		res, err := e.podman(t, image, []string{"--annotation", "io.syscage.record=cleaned", "-v", s.dir + ":/sync"}, "sh", "-c", crashScript)
		if err == nil && res.ExitCode != 0 {
			err = errors.New(res.Stderr)
		}
		running <- err
	}()
	s.waitBefore(t, running)
	if res := syscage(t, "daemon", "--cleanup", "--config", e.config); res.code == 0 || !strings.Contains(res.stderr, "a recorder is running (pid ") {
		t.Errorf("cleanup while a recorder runs: exit %d: %s", res.code, res.stderr)
	}
	e.killRecorder(t)
	res := syscage(t, "daemon", "--cleanup", "--config", e.config)
	if res.code != 0 {
		t.Fatalf("cleanup: exit %d: %s", res.code, res.stderr)
	}
	for _, want := range []string{"removed pins " + e.pinDir, "wrote " + filepath.Join(e.profiles, "cleaned.json"), "removed cgroup "} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("cleanup output lacks %q:\n%s", want, res.stdout)
		}
	}
	if links := e.pinnedLinks(t); len(links) > 0 {
		t.Errorf("links left after cleanup: %v", links)
	}
	s.release(t)
	if err := <-running; err != nil {
		t.Fatalf("podman: %v", err)
	}
	if names := e.profile(t, "cleaned"); !slices.Contains(names, "sync") {
		t.Errorf("cleanup did not write what was recorded: %v", names)
	}
	if res := syscage(t, "daemon", "--cleanup", "--config", e.config); res.code != 0 || res.stdout != "" {
		t.Errorf("a second cleanup: exit %d, %q %q", res.code, res.stdout, res.stderr)
	}
}

// A recorder killed with no way to take over (its pins were removed, or it
// recorded without: pinDir "") fails the poststop hook; NAME.json.error says why;
// the log says so at level ERROR; the profile of an earlier run is untouched.
func TestCrashNoTakeoverIsNotSilent(t *testing.T) {
	image, _ := workloadImage(t)
	t.Run("pins removed", func(t *testing.T) {
		e := newHookEnv(t)
		noTakeover(t, e, image, func() {
			if err := os.RemoveAll(e.pinDir); err != nil {
				t.Fatal(err)
			}
		}, "its pins in "+e.pinDir)
	})
	t.Run("no pins", func(t *testing.T) {
		e := newHookEnv(t, func(cfg map[string]any) { cfg["pinDir"] = "" })
		noTakeover(t, e, image, func() {}, "it recorded without pins")
	})
}

func noTakeover(t *testing.T, e *hookEnv, image string, afterKill func(), why string) {
	if res, err := e.podman(t, image, []string{"--annotation", "io.syscage.record=lost"}, "true"); err != nil || res.ExitCode != 0 {
		t.Fatalf("first run: %v", err)
	}
	old, err := os.ReadFile(filepath.Join(e.profiles, "lost.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := newStepper(t)
	running := make(chan error, 1)
	go func() {
		_, err := e.podman(t, image, []string{"--annotation", "io.syscage.record=lost", "-v", s.dir + ":/sync"}, "sh", "-c", crashScript)
		running <- err
	}()
	s.waitBefore(t, running)
	e.killRecorder(t)
	afterKill()
	s.release(t)
	if err := <-running; err != nil {
		t.Fatalf("podman: %v", err)
	}
	const cause = "the recording was lost: the recorder that made it"
	wantHookFailed(t, e, cause)
	wantHookFailed(t, e, why)
	wantErrorFile(t, e, "lost", cause)
	if now, _ := os.ReadFile(filepath.Join(e.profiles, "lost.json")); !bytes.Equal(now, old) {
		t.Error("the earlier profile was changed")
	}
	// The next run writes the profile and removes the stale note.
	if res, err := e.podman(t, image, []string{"--annotation", "io.syscage.record=lost"}, "true"); err != nil || res.ExitCode != 0 {
		t.Fatalf("next run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.profiles, "lost.json"+hooks.ErrorSuffix)); err == nil {
		t.Error("the note of the failed run stays after a run that wrote its profile")
	}
}

// wantHookFailed checks the poststop hook failed with cause: the hook logs its
// error at level ERROR, then exits non-zero with it on stderr.
func wantHookFailed(t *testing.T, e *hookEnv, cause string) {
	t.Helper()
	for _, line := range strings.Split(e.logText(t), "\n") {
		if strings.Contains(line, "level=ERROR msg=hook ") && strings.Contains(line, cause) {
			return
		}
	}
	t.Errorf("no hook failed with %q:\n%s", cause, e.logText(t))
}

func wantErrorFile(t *testing.T, e *hookEnv, name, cause string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.profiles, name+".json"+hooks.ErrorSuffix))
	if err != nil {
		t.Fatalf("no note of why the profile was not written: %v", err)
	}
	var note struct{ Container, Profile, Error string }
	if err := json.Unmarshal(data, &note); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	if !strings.Contains(note.Error, cause) || note.Profile != filepath.Join(e.profiles, name+".json") || note.Container == "" {
		t.Errorf("note: %s, want %q", data, cause)
	}
	if log := e.logText(t); !strings.Contains(log, "level=ERROR") || !strings.Contains(log, cause) {
		t.Errorf("not logged at level ERROR:\n%s", log)
	}
}

// A profiles directory that is full: the poststop hook fails with ENOSPC, the old
// profile is untouched, the note is written in the room a small file needs, and the
// next run, with room again, writes the profile and removes the note. For runc
// (config.json) and podman (hooks.d).
func TestCrashDiskFull(t *testing.T) {
	for _, runtime := range []string{"runc", "podman"} {
		t.Run(runtime, func(t *testing.T) { diskFull(t, runtime) })
	}
}

func diskFull(t *testing.T, runtime string) {
	e := newHookEnv(t)
	if err := os.MkdirAll(e.profiles, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", e.profiles, "tmpfs", 0, "size=64k,mode=0755"); err != nil {
		t.Fatalf("mounting a 64 KiB tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(e.profiles, unix.MNT_DETACH) })
	// An earlier profile that allows every call: its merge with the run takes more
	// than the one page left free.
	path := filepath.Join(e.profiles, "full.json")
	old := allCallsProfile(t)
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	if len(old) <= 4096 {
		t.Fatalf("the earlier profile is %d bytes: too small to need two pages", len(old))
	}
	filler := filepath.Join(e.profiles, "filler")
	var st unix.Statfs_t
	if err := unix.Statfs(e.profiles, &st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filler, make([]byte, (int64(st.Bavail)-1)*st.Bsize), 0o644); err != nil {
		t.Fatal(err)
	}

	image, runOnce := "", func() (string, error) { return "", nil }
	switch runtime {
	case "podman":
		image, _ = workloadImage(t)
		runOnce = func() (string, error) {
			res, err := e.podman(t, image, []string{"--annotation", "io.syscage.record=full"}, "true")
			return res.Stderr, err
		}
	case "runc":
		dir, spec := rt.Bundle(t, []string{"true"}, nil)
		hook := specs.Hook{Path: hookBinary, Args: []string{"syscage-hook", "hook", "--config", e.config}}
		spec.Hooks = &specs.Hooks{Prestart: []specs.Hook{hook}, Poststop: []specs.Hook{hook}}
		spec.Annotations = map[string]string{"io.syscage.record": "full"}
		rt.WriteSpec(t, dir, spec)
		runOnce = func() (string, error) {
			res, err := rt.RuncTry(t, dir)
			return res.Stderr, err
		}
	}
	stderr, err := runOnce()
	const cause = "no space left on device"
	switch runtime {
	case "runc":
		// runc fails `runc run` on a poststop hook's failure, with its stderr.
		if err == nil || !strings.Contains(err.Error(), cause) {
			t.Errorf("runc did not report the poststop failure: %v\n%s", err, stderr)
		}
	case "podman":
		// Podman logs a failed poststop hook as a warning, from whichever of its
		// processes cleans the container up, and goes on.
		if err != nil {
			t.Errorf("podman: %v", err)
		}
	}
	wantHookFailed(t, e, cause)
	wantErrorFile(t, e, "full", cause)
	if now, _ := os.ReadFile(path); !bytes.Equal(now, old) {
		t.Error("the earlier profile was changed")
	}
	if tmps, _ := filepath.Glob(filepath.Join(e.profiles, ".*tmp*")); len(tmps) > 0 {
		t.Errorf("temporary files left: %v", tmps)
	}

	os.Remove(filler)
	if stderr, err := runOnce(); err != nil {
		t.Fatalf("with room again: %v\n%s", err, stderr)
	}
	if _, err := os.Stat(path + hooks.ErrorSuffix); err == nil {
		t.Error("the note stays after a run that wrote the profile")
	}
}

// allCallsProfile is a profile allowing every call of this machine's native table.
func allCallsProfile(t *testing.T) []byte {
	t.Helper()
	native, _, _, err := profile.NativeArches(runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := profile.TableFor(native)
	if err != nil {
		t.Fatal(err)
	}
	var nrs []int
	for nr := range 1024 {
		if _, ok := tab.Name(nr); ok {
			nrs = append(nrs, nr)
		}
	}
	built, err := profile.FromRecorded(profile.Recorded{native: nrs}, profile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := profile.Marshal(built.Profile)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// BenchmarkTakeover: the poststop of a container whose recorder was SIGKILLed (the
// recorder the hook starts takes the recording over from the pins, then writes
// the profile), side by side with one whose recorder lives; from the container's
// last step to runc's return.
func BenchmarkTakeover(b *testing.B) {
	e := newHookEnv(b, func(cfg map[string]any) { cfg["idleExit"] = "30s" })
	s := newStepper(b)
	dir, spec := rt.Bundle(b, []string{"sh", "-c", `sync; touch /sync/before; while [ ! -e /sync/go ]; do sleep 0.01; done`}, nil)
	hook := specs.Hook{Path: hookBinary, Args: []string{"syscage-hook", "hook", "--config", e.config}}
	spec.Hooks = &specs.Hooks{Prestart: []specs.Hook{hook}, Poststop: []specs.Hook{hook}}
	spec.Annotations = map[string]string{"io.syscage.record": "takeover"}
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/sync", Type: "bind", Source: s.dir, Options: []string{"rbind", "rw"}})
	rt.WriteSpec(b, dir, spec)
	m := map[string][]float64{}
	for round := range 8 {
		for i := range 2 {
			mode := []string{"live", "killed"}[(i+round)%2]
			os.Remove(filepath.Join(s.dir, "before"))
			os.Remove(filepath.Join(s.dir, "go"))
			running := make(chan error, 1)
			go func() {
				_, err := rt.RuncTry(b, dir)
				running <- err
			}()
			s.waitBefore(b, running)
			if mode == "killed" {
				e.killRecorder(b)
			}
			start := time.Now()
			s.release(b)
			if err := <-running; err != nil {
				b.Fatal(err)
			}
			m[mode] = append(m[mode], float64(time.Since(start).Microseconds())/1000)
		}
	}
	live, killed := median(m["live"]), median(m["killed"])
	b.ReportMetric(live, "ms-poststop-live")
	b.ReportMetric(killed, "ms-poststop-takeover")
	b.ReportMetric(killed-live, "ms-takeover-added")
	// Stopped rather than left to its idle exit: the cleanup checks it is gone.
	if pid := e.recorderPid(); pid > 0 {
		syscall.Kill(pid, syscall.SIGTERM)
	}
}

// A recorder that cannot save a container's state (what lets the next recorder
// finish the recording if this one dies) refuses the container at prestart,
// saying why, and keeps nothing of it tracked: it then leaves nothing once idle
// (newHookEnv's cleanup checks that no pins are left).
func TestCrashStateNotSaved(t *testing.T) {
	e := newHookEnv(t)
	dir, spec := rt.Bundle(t, []string{"true"}, nil)
	hook := specs.Hook{Path: hookBinary, Args: []string{"syscage-hook", "hook", "--config", e.config}}
	spec.Hooks = &specs.Hooks{Prestart: []specs.Hook{hook}, Poststop: []specs.Hook{hook}}
	spec.Annotations = map[string]string{"io.syscage.record": "unsaved"}
	rt.WriteSpec(t, dir, spec)
	// A file where the recorder keeps its containers' states.
	blocker := filepath.Join(e.runDir, "containers")
	if err := os.MkdirAll(e.runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := rt.RuncTry(t, dir)
	if rerr := os.Remove(blocker); rerr != nil {
		t.Error(rerr)
	}
	if err == nil && res.ExitCode == 0 {
		t.Fatal("the container ran, though its recording could not be made safe")
	}
	if msg := fmt.Sprint(err, res.Stderr); !strings.Contains(msg, "saving the state of") {
		t.Errorf("runc's failure does not say the state could not be saved: %s", msg)
	}
	if _, err := os.Stat(filepath.Join(e.profiles, "unsaved.json")); err == nil {
		t.Error("a profile was written for a container that never ran")
	}
	if log := e.logText(t); !strings.Contains(log, "saving the state of") {
		t.Errorf("the hook log does not say the state could not be saved:\n%s", log)
	}
}
