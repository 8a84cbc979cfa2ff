package profile

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func formatSeeds(f *testing.F, glob string) {
	files, _ := filepath.Glob(filepath.Join("testdata", glob))
	files = append(files, "../profiles/docker-default-x86_64.json")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
}

// Whatever a Docker profile holds, reading it back from our own output gives the
// same bytes, and resolving it never panics.
func FuzzParseDocker(f *testing.F) {
	for _, s := range []string{
		`{"defaultAction":"SCMP_ACT_ERRNO","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]}],"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"},{"name":"bpf","action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_BPF"],"minKernel":"5.8"},"excludes":{"arches":["s390x"]},"comment":"x"}]}`,
		`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"archMap":[],"syscalls":null}`,
		`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}`,
		`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["a"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"4"}}]}`,
	} {
		f.Add([]byte(s))
	}
	formatSeeds(f, "docker-*.input.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDocker("fuzz.json", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.json: ") {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		out, err := MarshalDocker(d)
		if err != nil {
			t.Fatal(err)
		}
		d2, err := ParseDocker("again.json", out)
		if err != nil {
			t.Fatalf("re-reading our output: %v\n%s", err, out)
		}
		out2, _ := MarshalDocker(d2)
		if !bytes.Equal(out, out2) {
			t.Fatalf("not stable:\n%s\n---\n%s", out, out2)
		}
		for _, arch := range []specs.Arch{specs.ArchX86_64, specs.ArchAARCH64} {
			ResolveDocker("fuzz.json", d, Host{Arch: arch, Caps: DefaultCaps, Kernel: KernelVersion{6, 2}})
		}
	})
}

// A SeccompProfile read and written gives the same bytes, and its OCI profile
// goes back to the same resource.
func FuzzParseSPO(f *testing.F) {
	for _, s := range []string{
		`{"apiVersion":"security-profiles-operator.x-k8s.io/v1beta1","kind":"SeccompProfile","metadata":{"name":"a","namespace":"n","uid":"x"},"spec":{"baseProfileName":"runc-v1.2.0","defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"},{"names":["ptrace"],"action":"SCMP_ACT_ERRNO","errnoRet":38,"args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}]},"status":{"status":"Installed"}}`,
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"defaultAction":"SCMP_ACT_ERRNO"}}`,
		`{"apiVersion":"security-profiles-operator.x-k8s.io/v1beta1","kind":"SeccompProfile","metadata":{"name":"a"},"spec":{"defaultAction":"SCMP_ACT_LOG","disabled":true,"flags":["SECCOMP_FILTER_FLAG_LOG"]}}`,
	} {
		f.Add([]byte(s))
	}
	formatSeeds(f, "spo-*.input.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSPO("fuzz.json", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.json: ") {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		out, err := MarshalSPO(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := ParseSPO("again.json", out)
		if err != nil {
			t.Fatalf("re-reading our output: %v\n%s", err, out)
		}
		if out2, _ := MarshalSPO(s2); !bytes.Equal(out, out2) {
			t.Fatalf("not stable:\n%s\n---\n%s", out, out2)
		}
		if s.Spec.BaseProfileName != "" {
			return
		}
		p, err := s.OCI("fuzz.json")
		if err != nil {
			t.Fatal(err)
		}
		back, err := SPOFromOCI(p, s.Metadata.Name, s.Metadata.Namespace)
		if err != nil {
			return // a value the OCI side holds and SPO does not
		}
		if diff := cmp.Diff(s.Spec.Syscalls, back.Spec.Syscalls, equateProfiles); diff != "" {
			t.Fatalf("SPO → OCI → SPO changed the rules:\n%s", diff)
		}
	})
}

// DetectFormat never panics, and every format's own output is detected as it.
func FuzzDetectFormat(f *testing.F) {
	formatSeeds(f, "*.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		switch DetectFormat(data) {
		case FormatOCI:
			if p, err := Parse("x", data); err == nil {
				out, _ := Marshal(p)
				if DetectFormat(out) != FormatOCI {
					t.Fatalf("our OCI output is not detected as OCI:\n%s", out)
				}
			}
		case FormatDocker:
			if d, err := ParseDocker("x", data); err == nil && len(d.ArchMap) > 0 {
				out, _ := MarshalDocker(d)
				if DetectFormat(out) != FormatDocker {
					t.Fatalf("our Docker output is not detected as Docker:\n%s", out)
				}
			}
		}
	})
}

// merge --check agrees with merge: A passes against B exactly when every syscall,
// on every architecture, gets from Merge(A, B) what it gets from A, and Merge(A, B)
// always passes against B.
func TestMissingAgreesWithMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	iterations := 2000
	if testing.Short() {
		iterations = 300
	}
	pool := append(append([]string{}, mergePoolNames...), "exit_group", "openat")
	passed := 0
	for range iterations {
		a, b := randomProfile(r), randomProfile(r)
		if r.IntN(3) == 0 {
			b = mustMerge(t, a, b) // often A covers B only through a merge
			a, b = b, a
		}
		merged, err := Merge(Named{"a", a}, Named{"b", b})
		if err != nil {
			continue
		}
		missing, err := Missing([]specs.Arch{specs.ArchX86_64}, Named{"a", a}, Named{"b", b})
		if err != nil {
			t.Fatal(err)
		}
		na, _ := Normalize("a", a)
		va, vm := verdictsOf(na), verdictsOf(merged)
		same := sortArchesEqual(na.Architectures, merged.Architectures) && sortFlagsEqual(na.Flags, merged.Flags) &&
			na.ListenerPath == merged.ListenerPath && len(conditionalRules(na)) == len(conditionalRules(merged))
		for _, name := range pool {
			if va.of(name) != vm.of(name) {
				same = false
			}
		}
		if same != missing.Empty() {
			t.Fatalf("merge --check says covered=%v, merge says %v\na = %s\nb = %s\nmissing = %+v",
				missing.Empty(), same, mustMarshal(t, a), mustMarshal(t, b), missing)
		}
		if same {
			passed++
		}
		again, err := Missing([]specs.Arch{specs.ArchX86_64}, Named{"merged", merged}, Named{"b", b})
		if err != nil || !again.Empty() {
			t.Fatalf("Merge(a, b) does not cover b: %+v, %v", again, err)
		}
	}
	if passed == 0 || passed == iterations {
		t.Errorf("%d of %d cases covered: the generator does not exercise both answers", passed, iterations)
	}
}

func sortArchesEqual(a, b []specs.Arch) bool { return cmp.Equal(a, b, equateProfiles) }

func sortFlagsEqual(a, b []specs.LinuxSeccompFlag) bool { return cmp.Equal(a, b, equateProfiles) }
