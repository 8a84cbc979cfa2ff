package profile_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	cdseccomp "github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/google/go-cmp/cmp"
	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/profile"
)

// The real default profiles of containerd and Docker are the foreign input here:
// containerd's from its Go code, Docker's from moby's default.json, each read
// through the test-only imports above. The shipped profiles/ are what
// internal/gendefault evaluated for every architecture; these tests tie them to
// what containerd and moby compute on this machine.

func hostArchFile(t *testing.T) (specs.Arch, string) {
	t.Helper()
	switch runtime.GOARCH {
	case "amd64":
		return specs.ArchX86_64, "x86_64"
	case "arm64":
		return specs.ArchAARCH64, "aarch64"
	}
	t.Skipf("no shipped default profiles for %s", runtime.GOARCH)
	return "", ""
}

func shipped(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "profiles", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustNormalize(t *testing.T, name string, p *specs.LinuxSeccomp) []byte {
	t.Helper()
	n, err := profile.Normalize(name, p)
	if err != nil {
		t.Fatal(err)
	}
	data, err := profile.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// containerd's default profile, built by containerd for this host, is the shipped
// profile of this host's architecture once normalised, and survives every format.
func TestContainerdDefault(t *testing.T) {
	_, file := hostArchFile(t)
	ctx := namespaces.WithNamespace(context.Background(), "default")
	spec, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(profile.DefaultCaps, sortedCopy(spec.Process.Capabilities.Bounding)); diff != "" {
		t.Errorf("profile.DefaultCaps is not containerd's default set (-ours +containerd):\n%s", diff)
	}
	if !kernelAtLeast48(t) {
		t.Skip("containerd leaves ptrace out before Linux 4.8; the shipped profile assumes 6.2")
	}
	got := mustNormalize(t, "containerd", cdseccomp.DefaultProfile(spec))
	want := shipped(t, "containerd-default-"+file+".json")
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("containerd's DefaultProfile differs from profiles/containerd-default-%s.json: run go generate ./profiles (-shipped +containerd):\n%s", file, diff)
	}
}

// Our Docker resolver gives what moby's own gives, for this host.
func TestDockerResolveMatchesMoby(t *testing.T) {
	arch, file := hostArchFile(t)
	if !kernelAtLeast48(t) {
		t.Skip("moby leaves ptrace out before Linux 4.8")
	}
	raw, err := json.Marshal(mobyseccomp.DefaultProfile())
	if err != nil {
		t.Fatal(err)
	}
	spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: profile.DefaultCaps}}}
	for _, caps := range [][]string{profile.DefaultCaps, append(append([]string{}, profile.DefaultCaps...), "CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_BPF")} {
		spec.Process.Capabilities.Bounding = caps
		want, err := mobyseccomp.LoadProfile(string(raw), spec)
		if err != nil {
			t.Fatal(err)
		}
		d, err := profile.ParseDocker("default.json", raw)
		if err != nil {
			t.Fatal(err)
		}
		got, err := profile.ResolveDocker("default.json", d, profile.Host{Arch: arch, Caps: caps, Kernel: profile.KernelVersion{Major: 6, Minor: 2}})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("caps %v: ResolveDocker differs from moby (-moby +ours):\n%s", caps, diff)
		}
	}
	if got, want := mustNormalize(t, "x", mustResolve(t, raw, arch)), shipped(t, "docker-default-"+file+".json"); string(got) != string(want) {
		t.Errorf("profiles/docker-default-%s.json is stale: run go generate ./profiles", file)
	}
}

func mustResolve(t *testing.T, raw []byte, arch specs.Arch) *specs.LinuxSeccomp {
	t.Helper()
	d, err := profile.ParseDocker("default.json", raw)
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.ResolveDocker("default.json", d, profile.Host{Arch: arch, Caps: profile.DefaultCaps, Kernel: profile.KernelVersion{Major: 6, Minor: 2}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// For both architectures: moby's default.json resolved by syscage is what moby
// computed for that architecture (the shipped profile), and the default profiles
// survive OCI → Docker → OCI and OCI → SPO → OCI as the same profile.
func TestDefaultsRoundTrip(t *testing.T) {
	raw, err := json.Marshal(mobyseccomp.DefaultProfile())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		arch specs.Arch
		file string
	}{{specs.ArchX86_64, "x86_64"}, {specs.ArchAARCH64, "aarch64"}} {
		t.Run(tt.file, func(t *testing.T) {
			if got, want := mustNormalize(t, "x", mustResolve(t, raw, tt.arch)), shipped(t, "docker-default-"+tt.file+".json"); string(got) != string(want) {
				t.Errorf("resolving moby's default.json for %s differs from what moby computes: %s", tt.arch, cmp.Diff(string(want), string(got)))
			}
			for _, name := range []string{"containerd-default-" + tt.file + ".json", "docker-default-" + tt.file + ".json"} {
				data := shipped(t, name)
				p, err := profile.Parse(name, data)
				if err != nil {
					t.Fatal(err)
				}
				// Docker: the same bytes back.
				dj, err := profile.MarshalDocker(profile.DockerFromOCI(p))
				if err != nil {
					t.Fatal(err)
				}
				d, err := profile.ParseDocker(name, dj)
				if err != nil {
					t.Fatal(err)
				}
				back, err := profile.ResolveDocker(name, d, profile.Host{Arch: tt.arch})
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(string(data), string(mustNormalize(t, name, back))); diff != "" {
					t.Errorf("%s: OCI → Docker → OCI changed it:\n%s", name, diff)
				}
				// SPO: the same profile back (it spells out errno 1).
				s, err := profile.SPOFromOCI(p, "default", "")
				if err != nil {
					t.Fatal(err)
				}
				sj, err := profile.MarshalSPO(s)
				if err != nil {
					t.Fatal(err)
				}
				s2, err := profile.ParseSPO(name, sj)
				if err != nil {
					t.Fatal(err)
				}
				p2, err := s2.OCI(name)
				if err != nil {
					t.Fatal(err)
				}
				d2, err := profile.Compare(profile.Named{Name: "a", Profile: p}, profile.Named{Name: "b", Profile: p2})
				if err != nil {
					t.Fatal(err)
				}
				if !d2.Empty() {
					t.Errorf("%s: OCI → SPO → OCI changed it: %+v", name, d2)
				}
				// And the shipped profile is valid.
				for _, f := range profile.Validate(p) {
					if f.Severity == profile.Error {
						t.Errorf("%s: %s", name, f)
					}
				}
			}
		})
	}
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}

func kernelAtLeast48(t *testing.T) bool {
	data, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatal(err)
	}
	k, err := profile.ParseKernelVersion(string(data))
	if err != nil {
		t.Fatal(err)
	}
	return !k.Less(profile.KernelVersion{Major: 4, Minor: 8})
}
