package tests

// Benchmarks for the recorder. These machines are shared and noisy, so each
// benchmark runs its configurations side by side, interleaved in rounds, and
// reports medians and ratios against the baseline of the same run; no test asserts
// a time. Run with `make bench` (-benchtime 1x: each benchmark sizes itself).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
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
	"github.com/syscage/syscage/bpf/record"
	"github.com/syscage/syscage/tests/internal/rt"
	"github.com/syscage/syscage/tests/testenv"
)

const trackedCgroups = 100

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// benchSetup is a loaded recorder and trackedCgroups empty cgroups to track, so
// that every measurement of the recorder is made with many cgroups tracked.
type benchSetup struct {
	r      *bpf.Recorder
	groups []*cgroups.Group
	home   string // this process's own cgroup
}

func newBenchSetup(b *testing.B) *benchSetup {
	testenv.RequireRoot(b)
	r, err := record.OpenWith(bpf.Options{ReportRefused: true})
	if err != nil {
		testenv.Unavailable(b, "%v", err)
	}
	self, err := cgroups.Self()
	if err != nil {
		b.Fatal(err)
	}
	s := &benchSetup{r: r, home: self}
	b.Cleanup(func() {
		r.Close()
		for _, g := range s.groups {
			g.Kill(time.Second)
			g.Remove()
		}
	})
	for range trackedCgroups {
		g, err := cgroups.Create(s.home, "syscage-bench")
		if err != nil {
			b.Fatal(err)
		}
		s.groups = append(s.groups, g)
	}
	return s
}

func (s *benchSetup) trackAll(b *testing.B) { s.trackAllAs(b, bpf.StartNow) }

func (s *benchSetup) trackAllAs(b *testing.B, start bpf.StartAt) {
	for _, g := range s.groups {
		if err := s.r.Track(g.ID, start); err != nil {
			b.Fatal(err)
		}
	}
}

func (s *benchSetup) untrackAll(b *testing.B) {
	for _, g := range s.groups {
		if err := s.r.Untrack(g.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// config is one side of a side-by-side measurement.
type config struct {
	name         string
	enter, leave func()
}

// configs are: nothing attached; the empty program (the floor of any design on
// sys_enter); the recorder attached with many cgroups tracked, measured from
// outside them; and from inside one of them.
func (s *benchSetup) configs(b *testing.B, moveSelf bool, child *childCgroup) []config {
	var floor *bpf.Floor
	return []config{
		{"none", func() {}, func() {}},
		{"floor", func() {
			var err error
			if floor, err = bpf.AttachFloor(); err != nil {
				b.Fatal(err)
			}
		}, func() { floor.Close() }},
		{"untracked", func() { s.trackAll(b) }, func() { s.untrackAll(b) }},
		{"tracked", func() {
			s.trackAll(b)
			if moveSelf {
				moveTo(b, s.groups[0].Path)
			}
			child.dir = s.groups[0]
		}, func() {
			if moveSelf {
				moveTo(b, s.home)
			}
			child.dir = nil
			s.untrackAll(b)
		}},
	}
}

// childCgroup is where a workload child starts: a tracked cgroup, or (nil) ours.
type childCgroup struct{ dir *cgroups.Group }

func moveTo(b *testing.B, dir string) {
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		b.Fatalf("moving into %s: %v", dir, err)
	}
}

// interleave runs every config once per round, rotating the order, and returns
// the median of measure's results per config.
func interleave(rounds int, cfgs []config, measure func(name string) float64) map[string]float64 {
	samples := map[string][]float64{}
	for round := range rounds {
		for i := range cfgs {
			c := cfgs[(i+round)%len(cfgs)]
			c.enter()
			samples[c.name] = append(samples[c.name], measure(c.name))
			c.leave()
		}
	}
	out := map[string]float64{}
	for k, v := range samples {
		out[k] = median(v)
	}
	return out
}

func report(b *testing.B, unit string, med map[string]float64) {
	for _, k := range []string{"none", "floor", "untracked", "tracked"} {
		b.ReportMetric(med[k], unit+"-"+k)
	}
	b.ReportMetric(med["floor"]/med["none"], "x-floor/none")
	b.ReportMetric(med["untracked"]/med["none"], "x-untracked/none")
	b.ReportMetric(med["tracked"]/med["none"], "x-tracked/none")
	b.ReportMetric(med["untracked"]/med["floor"], "x-untracked/floor")
	b.ReportMetric(med["tracked"]/med["floor"], "x-tracked/floor")
}

// BenchmarkSyscallCost: the cost of one getppid, the cheapest syscall, in each
// configuration, and the recorder's cost above the floor in ns.
func BenchmarkSyscallCost(b *testing.B) {
	s := newBenchSetup(b)
	const calls = 300_000
	// As the hook records by default: StartSeccomp cgroups with refusals counted,
	// which attaches sys_exit.
	cfgs := append(s.configs(b, true, &childCgroup{}), config{"untracked-seccomp",
		func() { s.trackAllAs(b, bpf.StartSeccomp) }, func() { s.untrackAll(b) }})
	med := interleave(15, cfgs, func(string) float64 {
		start := time.Now()
		for range calls {
			unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
		}
		return float64(time.Since(start).Nanoseconds()) / calls
	})
	report(b, "ns/call", med)
	b.ReportMetric(med["untracked"]-med["floor"], "ns-above-floor-untracked")
	b.ReportMetric(med["tracked"]-med["floor"], "ns-above-floor-tracked")
	b.ReportMetric(med["untracked-seccomp"]-med["floor"], "ns-above-floor-untracked-with-exit")
}

// BenchmarkArgCost: what recording argument values costs, on the curated
// syscalls whose values are large (kept in the kernel's hash, not the record's
// bits): ioctl(TCGETS) on /dev/null and socket() of a family the kernel refuses
// at once, so that the call itself stays cheap.
func BenchmarkArgCost(b *testing.B) {
	s := newBenchSetup(b)
	const calls = 200_000
	null, err := os.Open(os.DevNull)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	fd := null.Fd()
	for _, c := range []struct {
		name string
		call func()
	}{
		{"getppid", func() { unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0) }},
		{"ioctl", func() { unix.RawSyscall(unix.SYS_IOCTL, fd, unix.TCGETS, 0) }},
		{"socket", func() { unix.RawSyscall(unix.SYS_SOCKET, 1000, unix.SOCK_STREAM, 0) }},
	} {
		med := interleave(11, s.configs(b, true, &childCgroup{}), func(string) float64 {
			start := time.Now()
			for range calls {
				c.call()
			}
			return float64(time.Since(start).Nanoseconds()) / calls
		})
		b.ReportMetric(med["floor"]-med["none"], "ns-floor-"+c.name)
		b.ReportMetric(med["untracked"]-med["floor"], "ns-above-floor-untracked-"+c.name)
		b.ReportMetric(med["tracked"]-med["floor"], "ns-above-floor-tracked-"+c.name)
	}
}

// BenchmarkWorkload: real work dominated by syscalls, in each configuration.
func BenchmarkWorkload(b *testing.B) {
	for _, w := range []struct {
		name string
		args []string
	}{
		{"tar", []string{"tar", "-cf", "-", "-C", "/usr/include", "."}},
		{"find", []string{"find", "/usr", "-xdev"}},
	} {
		b.Run(w.name, func(b *testing.B) {
			s := newBenchSetup(b)
			child := &childCgroup{}
			med := interleave(7, s.configs(b, false, child), func(string) float64 {
				cmd := exec.Command(w.args[0], w.args[1:]...)
				cmd.Stdout = io.Discard
				if child.dir != nil {
					f, err := child.dir.Open()
					if err != nil {
						b.Fatal(err)
					}
					defer f.Close()
					cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
				}
				start := time.Now()
				if err := cmd.Run(); err != nil {
					b.Fatalf("%v: %v", w.args, err)
				}
				return float64(time.Since(start).Microseconds()) / 1000
			})
			report(b, "ms", med)
		})
	}
}

var tookRe = regexp.MustCompile(`took=([0-9.]+[µm]?s).*\n.*armed=([0-9.]+[µm]?s)`)

// BenchmarkStart: from loading the recorder to armed, in a fresh syscage process
// each time (kernel BTF is parsed anew), and adding one more cgroup to a recorder
// that already tracks many.
func BenchmarkStart(b *testing.B) {
	s := newBenchSetup(b)
	var fresh []float64
	for range 15 {
		cmd := exec.Command(binary, "--debug", "record", "-o", filepath.Join(b.TempDir(), "p.json"), "--", "true")
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
		m := tookRe.FindSubmatch(out)
		if m == nil {
			b.Fatalf("no timings in:\n%s", out)
		}
		took, _ := time.ParseDuration(string(m[1]))
		armed, _ := time.ParseDuration(string(m[2]))
		fresh = append(fresh, float64((took+armed).Microseconds())/1000)
	}
	s.trackAll(b)
	defer s.untrackAll(b)
	extra, err := cgroups.Create(s.home, "syscage-bench")
	if err != nil {
		b.Fatal(err)
	}
	defer extra.Remove()
	var add []float64
	for range 200 {
		start := time.Now()
		if err := s.r.Track(extra.ID, bpf.StartNow); err != nil {
			b.Fatal(err)
		}
		add = append(add, float64(time.Since(start).Microseconds())/1000)
		s.r.Untrack(extra.ID)
	}
	b.ReportMetric(median(fresh), "ms-load-to-armed")
	b.ReportMetric(median(add), "ms-add-cgroup")
}

// BenchmarkRSS: peak resident memory (VmHWM) of the syscage process while it
// records, read from /proc during the recording: ru_maxrss would also count the
// forking test process.
func BenchmarkRSS(b *testing.B) {
	testenv.RequireRoot(b)
	var peaks, now []float64
	for range 5 {
		cmd := exec.Command(binary, "record", "-o", filepath.Join(b.TempDir(), "p.json"), "--", "sleep", "0.5")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		if err != nil {
			b.Fatal(err)
		}
		peaks = append(peaks, statusKB(b, status, "VmHWM")/1024)
		now = append(now, statusKB(b, status, "VmRSS")/1024)
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(median(peaks), "MB-peak")
	b.ReportMetric(median(now), "MB-recording")
}

func statusKB(b testing.TB, status []byte, field string) float64 {
	m := regexp.MustCompile(field + `:\s+(\d+) kB`).FindSubmatch(status)
	if m == nil {
		b.Fatalf("no %s in /proc status", field)
	}
	kb, _ := strconv.ParseFloat(string(m[1]), 64)
	return kb
}

// BenchmarkHook: what the hook adds to starting a container, with the recorder
// already running (warm) and with the hook starting it (cold), side by side with
// the same runtime without the hook; what each step of the hook's path takes
// (from the timings the hook and the recorder log at level debug); and the
// recorder's memory after it served twenty containers.
func BenchmarkHook(b *testing.B) {
	testenv.RequireRoot(b)
	// The recorder outlives the waits for it to detach (a second each).
	e := newHookEnv(b, func(cfg map[string]any) { cfg["idleExit"] = "5s" })
	image := rt.PodmanImage(b, nil)
	hookedBundle := func(config string, debug bool) string {
		dir, spec := rt.Bundle(b, []string{"true"}, nil)
		args := []string{"syscage-hook", "hook", "--config", config}
		if debug {
			args = append(args, "--debug")
		}
		h := specs.Hook{Path: hookBinary, Args: args}
		spec.Hooks = &specs.Hooks{Prestart: []specs.Hook{h}, Poststop: []specs.Hook{h}}
		spec.Annotations = map[string]string{"io.syscage.record": "bench"}
		rt.WriteSpec(b, dir, spec)
		return dir
	}
	plainDir, _ := rt.Bundle(b, []string{"true"}, nil)
	hookDir := hookedBundle(e.config, false)
	runc := map[string][]float64{}
	podman := map[string][]float64{}
	// Warm: the first hooked run starts the recorder, the rounds then find it.
	// "none" and "hook" run with nothing attached (the recorder detaches a second
	// after its last container); "hook-next" right after "hook", as containers
	// started one after another are, finds the programs still attached.
	// "true-hook" runs /bin/true as both hooks: what running any two hooks costs
	// the runtime, the floor under syscage's.
	trueDir, trueSpec := rt.Bundle(b, []string{"true"}, nil)
	trueHook := specs.Hook{Path: "/bin/true"}
	trueSpec.Hooks = &specs.Hooks{Prestart: []specs.Hook{trueHook}, Poststop: []specs.Hook{trueHook}}
	rt.WriteSpec(b, trueDir, trueSpec)
	rt.RuncRun(b, hookDir)
	names := []string{"none", "hook", "true-hook"}
	for round := range 15 {
		for i := range names {
			name := names[(i+round)%len(names)]
			e.waitDetached(b)
			switch name {
			case "none":
				runc["none"] = append(runc["none"], timed(func() { rt.RuncRun(b, plainDir) }))
			case "true-hook":
				runc["true-hook"] = append(runc["true-hook"], timed(func() { rt.RuncRun(b, trueDir) }))
			default:
				runc["hook"] = append(runc["hook"], timed(func() { rt.RuncRun(b, hookDir) }))
				runc["hook-next"] = append(runc["hook-next"], timed(func() { rt.RuncRun(b, hookDir) }))
			}
		}
	}
	b.ReportMetric(median(runc["hook-next"]), "ms-runc-hook-next")
	b.ReportMetric(median(runc["hook-next"])-median(runc["none"]), "ms-runc-added-next")
	b.ReportMetric(median(runc["hook-next"])/median(runc["none"]), "x-runc-hook-next/none")
	b.ReportMetric(median(runc["true-hook"])-median(runc["none"]), "ms-runc-added-true-hook")
	b.ReportMetric(median(runc["hook"])-median(runc["true-hook"]), "ms-runc-added-over-true-hook")
	for round := range 6 {
		for i := range 2 {
			name := []string{"none", "hook"}[(i+round)%2]
			e.waitDetached(b)
			ann := map[string][]string{"none": nil, "hook": {"--annotation", "io.syscage.record=bench"}}[name]
			podman[name] = append(podman[name], timed(func() { e.podman(b, image, ann, "true") }))
		}
	}
	for name, m := range map[string]map[string][]float64{"runc": runc, "podman": podman} {
		none, hook := median(m["none"]), median(m["hook"])
		b.ReportMetric(none, "ms-"+name+"-none")
		b.ReportMetric(hook, "ms-"+name+"-hook")
		b.ReportMetric(hook-none, "ms-"+name+"-added")
		b.ReportMetric(hook/none, "x-"+name+"-hook/none")
	}
	// The recorder has served 30 containers by now.
	if pid := e.recorderPid(); pid > 0 {
		if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			b.ReportMetric(statusKB(b, status, "VmHWM")/1024, "MB-recorder-peak")
		}
	}

	// The hook binary alone: exec to exit (--version), and the whole hook for a
	// container it leaves alone (config, state parse, no recorder), beside
	// /bin/true's exec.
	noAnn, err := json.Marshal(specs.State{Version: specs.Version, ID: "bench-none", Status: specs.StateCreated, Pid: os.Getpid(), Bundle: plainDir})
	if err != nil {
		b.Fatal(err)
	}
	execs := map[string][]float64{}
	for round := range 30 {
		for i, c := range []struct {
			name  string
			cmd   []string
			stdin []byte
		}{
			{"true", []string{"/bin/true"}, nil},
			{"version", []string{hookBinary, "--version"}, nil},
			{"noop", []string{hookBinary, "hook", "--config", e.config}, noAnn},
		} {
			_ = i
			cmd := exec.Command(c.cmd[0], c.cmd[1:]...)
			if c.stdin != nil {
				cmd.Stdin = bytes.NewReader(c.stdin)
			}
			ms := timed(func() {
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%v: %v\n%s", c.cmd, err, out)
				}
			})
			if round > 0 {
				execs[c.name] = append(execs[c.name], ms)
			}
		}
	}
	b.ReportMetric(median(execs["true"]), "ms-exec-true")
	b.ReportMetric(median(execs["version"]), "ms-exec-hook")
	b.ReportMetric(median(execs["noop"]), "ms-hook-unannotated")

	// Each step, from the timings logged at level debug by hooks of their own.
	d := newHookEnv(b)
	debugDir := hookedBundle(d.config, true)
	for range 12 {
		rt.RuncRun(b, debugDir)
	}
	steps := logSteps(b, d.log)
	for _, k := range []string{
		"hook steps track config", "hook steps track parse", "hook steps track call",
		"track steps check", "track steps state", "track steps maps", "track steps both",
		"hook steps flush config", "hook steps flush parse", "hook steps flush call",
		"flush steps read", "flush steps build", "flush steps write", "flush steps reports", "untrack steps untrack",
	} {
		if v, ok := steps[k]; ok {
			b.ReportMetric(median(v), "ms-step-"+strings.ReplaceAll(strings.TrimSuffix(strings.Replace(k, " steps ", "-", 1), ""), " ", "-"))
		}
	}

	// Cold: the first container of an idle period, its hook starting the recorder,
	// interleaved with runs without the hook; with programs that stay loaded
	// across the idle exit (keepLoaded) and without.
	coldEnvs := map[string]*hookEnv{}
	coldDirs := map[string]string{}
	for _, keep := range []bool{false, true} {
		name := "cold"
		if keep {
			name = "cold-kept"
		}
		c := newHookEnv(b, func(cfg map[string]any) {
			cfg["idleExit"] = "50ms"
			if keep {
				cfg["keepLoaded"] = true
			}
		})
		if keep {
			b.Cleanup(func() { c.cleanupKept(b) })
		}
		coldEnvs[name], coldDirs[name] = c, hookedBundle(c.config, true)
	}
	coldNone := []float64{}
	cold := map[string][]float64{}
	// The floor again (/bin/true as both hooks), in these rounds too: what the
	// cold path adds over any two hooks is then read beside the same noise.
	var coldFloor []float64
	names = []string{"none", "cold", "cold-kept", "true-hook"}
	for round := range 15 {
		for i := range names {
			name := names[(i+round)%len(names)]
			switch name {
			case "none":
				coldNone = append(coldNone, timed(func() { rt.RuncRun(b, plainDir) }))
				continue
			case "true-hook":
				coldFloor = append(coldFloor, timed(func() { rt.RuncRun(b, trueDir) }))
				continue
			}
			c := coldEnvs[name]
			c.waitIdleExit(b)
			ms := timed(func() { rt.RuncRun(b, coldDirs[name]) })
			if round > 0 || name == "cold" {
				// cold-kept's first run has nothing kept yet.
				cold[name] = append(cold[name], ms)
			}
		}
	}
	// What keepLoaded leaves in the kernel across the idle exit.
	coldEnvs["cold-kept"].waitIdleExit(b)
	b.ReportMetric(pinnedMemlock(b, coldEnvs["cold-kept"].pinDir)/1024, "kB-kept")
	b.ReportMetric(median(coldFloor)-median(coldNone), "ms-runc-added-true-hook-cold-rounds")
	for _, name := range []string{"cold", "cold-kept"} {
		b.ReportMetric(median(cold[name])-median(coldNone), "ms-runc-added-"+name)
		b.ReportMetric(median(cold[name])-median(coldFloor), "ms-runc-added-"+name+"-over-true-hook")
		b.ReportMetric(median(cold[name])/median(coldNone), "x-runc-"+name+"/none")
		steps := logSteps(b, coldEnvs[name].log)
		for _, k := range []string{"recorder steps spawnToMain", "recorder steps locked", "recorder steps open", "recorder steps spec", "recorder steps maps", "recorder steps kernelBTF", "recorder steps programs", "recorder steps pins", "recorder steps openToReady", "hook steps track spawnToReady", "hook steps track spawnToAnswer", "hook steps track call", "hook steps flush call", "track steps state", "track steps maps", "flush steps build", "flush steps write"} {
			if v, ok := steps[k]; ok {
				b.ReportMetric(median(v), "ms-"+name+"-"+strings.ReplaceAll(strings.Replace(k, " steps ", "-", 1), " ", "-"))
			}
		}
	}
}

func timed(f func()) float64 {
	start := time.Now()
	f()
	return float64(time.Since(start).Microseconds()) / 1000
}

var (
	stepLineRE = regexp.MustCompile(`msg="([a-z]+ steps)"(.*)`)
	stepRE     = regexp.MustCompile(`([a-zA-Z]+)=([0-9.]+(?:ns|µs|ms|s))\b`)
	stepOpRE   = regexp.MustCompile(` op=([a-z]+)`)
)

// logSteps reads the step timings of a hook log: "MSG [OP] FIELD" → ms.
func logSteps(b *testing.B, path string) map[string][]float64 {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	out := map[string][]float64{}
	for _, m := range stepLineRE.FindAllStringSubmatch(string(data), -1) {
		prefix := m[1]
		if op := stepOpRE.FindStringSubmatch(m[2]); op != nil {
			prefix += " " + op[1]
		}
		for _, f := range stepRE.FindAllStringSubmatch(m[2], -1) {
			d, err := time.ParseDuration(f[2])
			if err != nil {
				b.Fatalf("log: %s: %v", f[0], err)
			}
			out[prefix+" "+f[1]] = append(out[prefix+" "+f[1]], float64(d.Microseconds())/1000)
		}
	}
	return out
}

// waitDetached waits for the env's recorder to detach its programs (it unpins
// their links then), so that a run measures nothing attached beforehand.
func (e *hookEnv) waitDetached(b testing.TB) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		links, _ := filepath.Glob(filepath.Join(e.pinDir, "recorder-*", "links", "*"))
		if len(links) == 0 {
			// And past the kernel's grace period for the detach, as a container
			// started a while after the last would be.
			time.Sleep(100 * time.Millisecond)
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("links %v still pinned 10s on", links)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitIdleExit waits for the env's recorder, if any, to exit by itself.
func (e *hookEnv) waitIdleExit(b testing.TB) {
	deadline := time.Now().Add(10 * time.Second)
	for pid := e.recorderPid(); pid > 0 && syscall.Kill(pid, 0) == nil; pid = e.recorderPid() {
		if time.Now().After(deadline) {
			b.Fatalf("recorder %d did not exit when idle", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The lock goes last, once the recorder has let go of everything.
	for _, err := os.Stat(filepath.Join(e.runDir, "recorder.lock")); err == nil; _, err = os.Stat(filepath.Join(e.runDir, "recorder.lock")) {
		if time.Now().After(deadline) {
			b.Fatalf("the recorder's lock is still there")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// cleanupKept removes what a recorder with keepLoaded keeps across its idle exit,
// as an administrator would: syscage-hook daemon --cleanup (which runs syscage-recorder --cleanup).
func (e *hookEnv) cleanupKept(b testing.TB) {
	e.waitIdleExit(b)
	if out, err := exec.Command(hookBinary, "daemon", "--cleanup", "--config", e.config).CombinedOutput(); err != nil {
		b.Errorf("cleanup: %v\n%s", err, out)
	}
}

// pinnedMemlock sums the kernel memory (memlock in fdinfo) of the programs and
// maps pinned below dir.
func pinnedMemlock(b *testing.B, dir string) float64 {
	total := 0.0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		var fd int
		if p, err := ebpf.LoadPinnedProgram(path, nil); err == nil {
			defer p.Close()
			fd = p.FD()
		} else if m, err := ebpf.LoadPinnedMap(path, nil); err == nil {
			defer m.Close()
			fd = m.FD()
		} else {
			return nil // a link
		}
		info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
		if err != nil {
			return err
		}
		if m := regexp.MustCompile(`memlock:\s+(\d+)`).FindSubmatch(info); m != nil {
			n, _ := strconv.ParseFloat(string(m[1]), 64)
			total += n
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return total
}

// BenchmarkHookColdTogether: containers started at once after an idle period,
// each hook starting a recorder; one takes the lock and loads the programs, the
// others' recorders wait for the lock (in case its holder is on its way out)
// and give up. What the slowest of four adds, beside one container's run
// without the hook.
func BenchmarkHookColdTogether(b *testing.B) {
	testenv.RequireRoot(b)
	e := newHookEnv(b, func(cfg map[string]any) { cfg["idleExit"] = "50ms" })
	plainDir, _ := rt.Bundle(b, []string{"true"}, nil)
	var dirs []string
	for range 4 {
		dir, spec := rt.Bundle(b, []string{"true"}, nil)
		h := specs.Hook{Path: hookBinary, Args: []string{"syscage-hook", "hook", "--config", e.config}}
		spec.Hooks = &specs.Hooks{Prestart: []specs.Hook{h}, Poststop: []specs.Hook{h}}
		spec.Annotations = map[string]string{"io.syscage.record": "bench"}
		rt.WriteSpec(b, dir, spec)
		dirs = append(dirs, dir)
	}
	var none, slowest, fastest []float64
	for range 6 {
		none = append(none, timed(func() { rt.RuncRun(b, plainDir) }))
		e.waitIdleExit(b)
		times := make([]float64, len(dirs))
		errs := make([]error, len(dirs))
		var wg sync.WaitGroup
		for i, dir := range dirs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				times[i] = timed(func() { _, errs[i] = rt.RuncTry(b, dir) })
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		slowest, fastest = append(slowest, slices.Max(times)), append(fastest, slices.Min(times))
	}
	b.ReportMetric(median(slowest)-median(none), "ms-runc-added-slowest-of-4")
	b.ReportMetric(median(fastest)-median(none), "ms-runc-added-fastest-of-4")
	b.ReportMetric(median(slowest)/median(none), "x-slowest-of-4/none")
}
