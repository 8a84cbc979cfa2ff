// Package registry_test runs syscage push and pull against a real registry
// (distribution v3, started by the test on loopback).
package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/syscage/syscage/profile"
	"github.com/syscage/syscage/tests/internal/registry"
)

var (
	binary string
	// root is the repository's root, found from the working directory (the
	// package's directory under go test): runtime.Caller would give a path
	// -trimpath has cut.
	root string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	root = filepath.Join(wd, "..", "..")
	if mod, err := os.ReadFile(filepath.Join(root, "go.mod")); err != nil || !bytes.HasPrefix(mod, []byte("module github.com/syscage/syscage\n")) {
		fmt.Fprintf(os.Stderr, "%s is not syscage's repository root (run the test from tests/registry): %v\n", root, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "syscage-registry-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "syscage")
	build := exec.Command("go", "build", "-o", binary, "./cmd/syscage")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building syscage:", err)
		return 1
	}
	return m.Run()
}

type result struct {
	code           int
	stdout, stderr string
}

func syscage(t testing.TB, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running syscage %v: %v", args, err)
	}
	return res
}

// mustSyscage runs syscage and fails the test unless it succeeds.
func mustSyscage(t testing.TB, args ...string) string {
	t.Helper()
	res := syscage(t, args...)
	if res.code != 0 {
		t.Fatalf("syscage %s: exit %d\n%s", strings.Join(args, " "), res.code, res.stderr)
	}
	return res.stdout
}

// refused runs syscage, which must fail and say each of want.
func refused(t *testing.T, want []string, args ...string) {
	t.Helper()
	res := syscage(t, args...)
	if res.code == 0 {
		t.Fatalf("syscage %s succeeded, want it refused\n%s", strings.Join(args, " "), res.stdout)
	}
	t.Logf("syscage %s: %s", strings.Join(args, " "), res.stderr)
	for _, w := range want {
		if !strings.Contains(res.stderr, w) {
			t.Errorf("syscage %s: stderr does not say %q:\n%s", strings.Join(args, " "), w, res.stderr)
		}
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// smallProfile is a profile of its own per name: its blobs are shared with no
// other test, so tampering with them touches no other test.
func smallProfile(t *testing.T, name string) string {
	t.Helper()
	data := fmt.Appendf(nil, `{
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 1,
  "architectures": ["SCMP_ARCH_X86_64"],
  "syscalls": [{"names": ["exit_group", "read", "write"], "action": "SCMP_ACT_ALLOW"}, {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": %d}]
}
`, len(name)+1)
	path := filepath.Join(t.TempDir(), name+".json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPushPull(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a registry")
	}
	reg := registry.Start(t)
	containerd := filepath.Join(root, "profiles", "containerd-default-x86_64.json")
	demo := filepath.Join(root, "profiles", "demo-tar.json")
	repo := reg.Addr + "/profiles/web"

	dgst := strings.TrimSpace(mustSyscage(t, "push", containerd, repo+":v1", "--plain-http"))
	if _, err := digest.Parse(dgst); err != nil {
		t.Fatalf("push printed %q, want a digest: %v", dgst, err)
	}
	want := readFile(t, containerd)

	t.Run("by tag", func(t *testing.T) {
		if got := mustSyscage(t, "pull", repo+":v1", "--plain-http"); got != string(want) {
			t.Errorf("pulled by tag: not the pushed profile:\n%s", got)
		}
	})
	t.Run("by digest", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "web.json")
		mustSyscage(t, "pull", repo+"@"+dgst, "--plain-http", "-o", out)
		if got := readFile(t, out); !bytes.Equal(got, want) {
			t.Errorf("pulled by digest: not the pushed profile:\n%s", got)
		}
	})
	t.Run("tag pinned to its digest", func(t *testing.T) {
		if got := mustSyscage(t, "pull", repo+":v1@"+dgst, "--plain-http"); got != string(want) {
			t.Errorf("pulled: not the pushed profile:\n%s", got)
		}
	})
	t.Run("same profile same digest", func(t *testing.T) {
		if again := strings.TrimSpace(mustSyscage(t, "push", containerd, reg.Addr+"/other:latest", "--plain-http")); again != dgst {
			t.Errorf("the same profile pushed twice: %s, then %s", dgst, again)
		}
	})
	t.Run("the KEP-6061 layout", func(t *testing.T) {
		r, err := remote.NewRepository(repo)
		if err != nil {
			t.Fatal(err)
		}
		r.PlainHTTP = true
		_, data, err := oras.FetchBytes(context.Background(), r, dgst, oras.DefaultFetchBytesOptions)
		if err != nil {
			t.Fatal(err)
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if m.Config.MediaType != "application/vnd.cncf.seccomp-profile.config.v1+json" || len(m.Layers) != 1 || m.Layers[0].Digest != digest.FromBytes(want) {
			t.Errorf("manifest %s", data)
		}
	})
	t.Run("pin that does not match", func(t *testing.T) {
		other := strings.TrimSpace(mustSyscage(t, "push", demo, repo+":v2", "--plain-http"))
		refused(t, []string{repo + ":v1@" + other, "tag v1 is " + dgst, "not the pinned " + other}, "pull", repo+":v1@"+other, "--plain-http")
		refused(t, []string{"no artifact has that tag or digest"}, "pull", repo+"@sha256:"+strings.Repeat("0", 64), "--plain-http")
	})
	t.Run("plain HTTP registry without --plain-http", func(t *testing.T) {
		refused(t, []string{"add --plain-http"}, "pull", repo+":v1")
		refused(t, []string{"add --plain-http"}, "push", demo, repo+":v3")
	})
	t.Run("tampered blob", func(t *testing.T) {
		path := smallProfile(t, "tamper")
		data := readFile(t, path)
		ref := reg.Addr + "/profiles/tamper:v1"
		mustSyscage(t, "push", path, ref, "--plain-http")
		blob := reg.BlobPath(digest.FromBytes(data).String())
		// Same size, one syscall renamed: only the digest tells.
		bad := bytes.Replace(data, []byte(`"read"`), []byte(`"mmap"`), 1)
		if err := os.WriteFile(blob, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "tamper.json")
		refused(t, []string{ref, "fetching the profile layer", "does not match its digest"}, "pull", ref, "--plain-http", "-o", out)
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused pull wrote %s", out)
		}
	})
	t.Run("tampered manifest", func(t *testing.T) {
		ref := reg.Addr + "/profiles/tamper-manifest:v1"
		d := strings.TrimSpace(mustSyscage(t, "push", smallProfile(t, "tamper-manifest"), ref, "--plain-http"))
		blob := reg.BlobPath(d)
		m := readFile(t, blob)
		bad := bytes.Replace(m, []byte(`"size":2`), []byte(`"size":3`), 1)
		if bytes.Equal(bad, m) {
			t.Fatalf("manifest has no config of size 2: %s", m)
		}
		if err := os.WriteFile(blob, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		refused(t, []string{ref, "fetching the manifest", "does not match its digest"}, "pull", ref, "--plain-http")
		refused(t, []string{"fetching the manifest"}, "pull", reg.Addr+"/profiles/tamper-manifest@"+d, "--plain-http")
	})
	t.Run("wrong media type", func(t *testing.T) {
		ref := reg.Addr + "/images/app:v1"
		config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
		pushManifest(t, ref, ocispec.MediaTypeImageConfig, "", config, ocispec.MediaTypeImageLayer, "", readFile(t, demo))
		refused(t, []string{ref, "not a seccomp profile", `"application/vnd.oci.image.config.v1+json"`, `"application/vnd.cncf.seccomp-profile.config.v1+json"`},
			"pull", ref, "--plain-http")
	})
	t.Run("security-profiles-operator layout", func(t *testing.T) {
		// What spoc push made before KEP-6061: oras's unknown artifact type, the
		// empty config, a SeccompProfile resource in profile.yaml.
		ref := reg.Addr + "/profiles/spo:v1"
		spo := []byte("apiVersion: security-profiles-operator.x-k8s.io/v1beta1\nkind: SeccompProfile\nmetadata:\n  name: web\nspec:\n  defaultAction: SCMP_ACT_ERRNO\n  architectures: [SCMP_ARCH_X86_64]\n  syscalls:\n  - action: SCMP_ACT_ALLOW\n    names: [exit_group, read, write]\n")
		pushManifest(t, ref, ocispec.MediaTypeEmptyJSON, "application/vnd.unknown.config.v1+json", []byte("{}"), ocispec.MediaTypeImageLayer, "profile.yaml", spo)
		p, err := profile.Parse("pulled", []byte(mustSyscage(t, "pull", ref, "--plain-http")))
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Syscalls) != 1 || !slices.Equal(p.Syscalls[0].Names, []string{"exit_group", "read", "write"}) {
			t.Errorf("pulled %+v", p.Syscalls)
		}
	})
}

// pushManifest pushes a one-layer manifest as another tool would.
func pushManifest(t *testing.T, ref, configType, artifactType string, config []byte, layerType, title string, layer []byte) {
	t.Helper()
	ctx := context.Background()
	r, err := remote.NewRepository(ref)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	cd, err := oras.PushBytes(ctx, r, configType, config)
	if err != nil {
		t.Fatal(err)
	}
	ld, err := oras.PushBytes(ctx, r, layerType, layer)
	if err != nil {
		t.Fatal(err)
	}
	if title != "" {
		ld.Annotations = map[string]string{ocispec.AnnotationTitle: title}
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: artifactType, Config: cd, Layers: []ocispec.Descriptor{ld}}
	m.SchemaVersion = 2
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oras.TagBytes(ctx, r, m.MediaType, data, r.Reference.Reference); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkPushPull times syscage push and pull (the whole command, process
// start included) against the local registry, for the shipped containerd profile
// (11 KB) and a small recorded one (demo-tar, 0.8 KB), and reports the medians,
// beside the baseline of starting syscage at all (--version).
func BenchmarkPushPull(b *testing.B) {
	reg := registry.Start(b)
	b.Run("baseline/version", func(b *testing.B) {
		median(b, func() { mustSyscage(b, "--version") })
	})
	for _, name := range []string{"containerd-default-x86_64", "demo-tar"} {
		path := filepath.Join(root, "profiles", name+".json")
		ref := reg.Addr + "/bench/" + name + ":v1"
		// A new repository each time: the blobs are uploaded, not found there.
		n := 0
		b.Run("push/"+name, func(b *testing.B) {
			median(b, func() {
				n++
				mustSyscage(b, "push", path, fmt.Sprintf("%s/bench/%s-%d:v1", reg.Addr, name, n), "--plain-http")
			})
		})
		mustSyscage(b, "push", path, ref, "--plain-http")
		b.Run("pull/"+name, func(b *testing.B) {
			median(b, func() { mustSyscage(b, "pull", ref, "--plain-http") })
		})
	}
}

func median(b *testing.B, f func()) {
	var times []time.Duration
	for b.Loop() {
		start := time.Now()
		f()
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
}
