package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/tests/internal/rt"
	"github.com/syscage/syscage/tests/testenv"
)

// BenchmarkFilterVsRunc measures what containerd's default profile (about 370
// names, with conditional rules) costs per syscall when syscage compiles it and
// when runc (libseccomp) does: a static loop runs under `syscage exec` and in a runc
// container with the profile, each beside the same loop without a filter on the
// same side, interleaved in rounds. Two calls: getppid, whose verdict never depends
// on its arguments, so the kernel caches it and runs no filter at all (Linux 5.11's
// action cache), and personality(0xffffffff), which containerd's profile allows by
// argument, so every call runs the whole filter. Reported: medians in ns per call,
// the filters' added cost, and syscage's over runc's.
func BenchmarkFilterVsRunc(b *testing.B) {
	testenv.RequireRoot(b)
	testenv.RequireCommand(b, "runc")
	cc := testenv.RequireCommand(b, "gcc")
	dir := b.TempDir()
	loop := filepath.Join(dir, "loop")
	if out, err := exec.Command(cc, "-O2", "-static", "-o", loop, "testdata/loop.c").CombinedOutput(); err != nil {
		testenv.Unavailable(b, "gcc: %v\n%s", err, out)
	}
	profilePath, err := filepath.Abs("../profiles/containerd-default-x86_64.json")
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(profilePath)
	if err != nil {
		b.Fatal(err)
	}
	var p specs.LinuxSeccomp
	if err := json.Unmarshal(data, &p); err != nil {
		b.Fatal(err)
	}
	type result struct{ ours, theirs, ratio float64 }
	results := map[string]result{}
	// One op is the whole measurement (run with -benchtime 1x); the metrics are the
	// result.
	for b.Loop() {
		for _, call := range []struct{ name, nr, arg string }{
			{"getppid", "110", "0"},
			{"personality(0xffffffff)", "135", "ffffffff"},
		} {
			args := []string{"2000000", call.nr, call.arg}
			plain := bundleWith(b, loop, args, nil)
			filtered := bundleWith(b, loop, args, &p)
			configs := []struct {
				name string
				run  func() string
			}{
				{"host, no filter", func() string { return output(b, exec.Command(loop, args...)) }},
				{"syscage exec", func() string {
					return output(b, exec.Command(binary, append([]string{"exec", "--profile", profilePath, "--", loop}, args...)...))
				}},
				{"runc, no filter", func() string { return rt.RuncRun(b, plain).Stdout }},
				{"runc, libseccomp filter", func() string { return rt.RuncRun(b, filtered).Stdout }},
			}
			ns := make([][]float64, len(configs))
			for range 7 {
				for i, c := range configs {
					v, err := strconv.ParseFloat(strings.TrimSpace(c.run()), 64)
					if err != nil {
						b.Fatalf("%s: %v", c.name, err)
					}
					ns[i] = append(ns[i], v)
				}
			}
			m := make([]float64, len(configs))
			for i := range configs {
				m[i] = median(ns[i])
			}
			ours, theirs := m[1]-m[0], m[3]-m[2]
			short := strings.SplitN(call.name, "(", 2)[0]
			results[short] = result{ours, theirs, m[1] / m[3]}
			b.Logf("%s under containerd's default profile, median of %d rounds:\n  %-26s %8.1f ns\n  %-26s %8.1f ns (+%.1f)\n  %-26s %8.1f ns\n  %-26s %8.1f ns (+%.1f)\n  syscage/runc per call %.2fx, added cost %s",
				call.name, len(ns[0]), configs[0].name, m[0], configs[1].name, m[1], ours, configs[2].name, m[2], configs[3].name, m[3], theirs,
				m[1]/m[3], ratio(ours, theirs))
		}
	}
	for short, r := range results {
		b.ReportMetric(r.ours, "ns-added-syscage/"+short)
		b.ReportMetric(r.theirs, "ns-added-runc/"+short)
		b.ReportMetric(r.ratio, "ratio/"+short)
	}
}

func ratio(a, b float64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func bundleWith(b *testing.B, loop string, args []string, p *specs.LinuxSeccomp) string {
	dir, spec := rt.Bundle(b, append([]string{"/loop"}, args...), map[string]string{"loop": loop})
	spec.Linux.Seccomp = p
	rt.WriteSpec(b, dir, spec)
	return dir
}

func output(b *testing.B, cmd *exec.Cmd) string {
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("%v: %v", cmd.Args, err)
	}
	return string(out)
}

// BenchmarkArgRulesCache: a profile with argument rules costs getppid nothing more
// than one by names only, because every allow that needs no argument stays in the
// kernel's seccomp action cache; personality, whose value is checked, runs the
// filter. Both profiles are recorded from the same loop, and the loop runs under
// each with syscage exec, interleaved.
func BenchmarkArgRulesCache(b *testing.B) {
	testenv.RequireRoot(b)
	cc := testenv.RequireCommand(b, "gcc")
	dir := b.TempDir()
	loop := filepath.Join(dir, "loop")
	if out, err := exec.Command(cc, "-O2", "-static", "-o", loop, "testdata/loop.c").CombinedOutput(); err != nil {
		testenv.Unavailable(b, "gcc: %v\n%s", err, out)
	}
	for b.Loop() {
		for _, call := range []struct{ name, nr, arg string }{
			{"getppid", "110", "0"},
			{"personality", "135", "ffffffff"},
		} {
			args := []string{"2000000", call.nr, call.arg}
			names, withArgs := filepath.Join(dir, call.name+"-names.json"), filepath.Join(dir, call.name+"-args.json")
			for path, flags := range map[string][]string{names: {"--args", "none"}, withArgs: nil} {
				rec := append(append([]string{"record", "-q", "-o", path}, flags...), "--", loop, "1000", call.nr, call.arg)
				if out, err := exec.Command(binary, rec...).CombinedOutput(); err != nil {
					b.Fatalf("record: %v\n%s", err, out)
				}
			}
			var ns [2][]float64
			for range 9 {
				for i, p := range []string{names, withArgs} {
					out := output(b, exec.Command(binary, append([]string{"exec", "--profile", p, "--", loop}, args...)...))
					v, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
					if err != nil {
						b.Fatal(err)
					}
					ns[i] = append(ns[i], v)
				}
			}
			n, a := median(ns[0]), median(ns[1])
			b.Logf("%s: names only %.1f ns, with argument rules %.1f ns (%.2fx)", call.name, n, a, a/n)
			b.ReportMetric(a/n, "x-args/names-"+call.name)
		}
	}
}
