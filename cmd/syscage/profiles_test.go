package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/syscage/syscage/profile"
)

var update = flag.Bool("update", false, "rewrite golden files")

// Every case runs the real command tree; its stdout is testdata/<name>.golden.<ext>.
// Profiles among them are re-read, validated and converted again to the same bytes.
var goldenCases = []goldenCase{
	{"convert-docker-amd64", "json", []string{"convert", "testdata/docker.input.json", "--arch", "amd64", "--kernel", "6.2"}, 0},
	{"convert-docker-arm64", "json", []string{"convert", "testdata/docker.input.json", "--arch", "arm64", "--kernel", "6.2"}, 0},
	{"convert-docker-arm64-caps", "json", []string{"convert", "testdata/docker.input.json", "--arch", "aarch64", "--kernel", "4.4", "--cap", "bpf", "--cap", "CAP_SYS_ADMIN"}, 0},
	{"convert-docker-docker", "json", []string{"convert", "testdata/docker.input.json", "--to", "docker"}, 0},
	{"convert-oci-docker", "json", []string{"convert", "testdata/new.input.json", "--to", "docker"}, 0},
	{"convert-oci-spo", "yaml", []string{"convert", "testdata/app.input.json", "--to", "spo", "--name", "app", "--namespace", "shop"}, 0},
	{"convert-oci-spo-json", "json", []string{"convert", "testdata/new.input.json", "--to", "spo", "--format", "json"}, 0},
	{"convert-spo-oci", "json", []string{"convert", "testdata/spo.input.yaml"}, 0},
	{"convert-spo-spo", "yaml", []string{"convert", "testdata/spo.input.yaml", "--to", "spo"}, 0},
	{"merge", "json", []string{"merge", "--baseline", "none", "testdata/app.input.json", "testdata/new.input.json"}, 0},
	{"merge-base", "json", []string{"merge", "--baseline", "none", "--base", "testdata/app.input.json", "testdata/spo-base.input.yaml"}, 0},
	{"merge-baseline", "json", []string{"merge", "testdata/app.input.json", "testdata/new.input.json"}, 0},
	{"merge-check-missing", "txt", []string{"merge", "--check", "testdata/app.input.json", "testdata/new.input.json"}, 1},
	{"merge-check-covered", "txt", []string{"merge", "--check", "testdata/merge.golden.json", "testdata/app.input.json", "testdata/new.input.json"}, 0},
	{"diff", "txt", []string{"diff", "testdata/app.input.json", "testdata/new.input.json"}, 0},
	{"diff-json", "json", []string{"diff", "--format", "json", "--exit-code", "testdata/app.input.json", "testdata/new.input.json"}, 1},
	{"diff-same", "txt", []string{"diff", "--exit-code", "testdata/docker.input.json", "testdata/convert-docker-amd64.golden.json", "--kernel", "6.2", "--arch", "amd64"}, 0},
	{"check-app", "txt", []string{"check", "testdata/app.input.json"}, 0},
	{"check-bad", "txt", []string{"check", "testdata/bad.input.json"}, 1},
	{"check-new", "json", []string{"check", "--format", "json", "testdata/new.input.json"}, 2},
	{"check-docker", "txt", []string{"check", "testdata/docker.input.json", "--arch", "amd64", "--kernel", "6.2"}, 2},
	{"check-spo", "txt", []string{"check", "testdata/spo.input.yaml"}, 0},
	{"stats", "txt", []string{"stats", "testdata/app.input.json", "testdata/new.input.json"}, 0},
	{"stats-json", "json", []string{"stats", "--format", "json", "testdata/app.input.json"}, 0},
}

func exitCode(err error) int {
	var ec exitCodeError
	if errors.As(err, &ec) {
		return int(ec)
	}
	if err != nil {
		return -1
	}
	return 0
}

// goldenCase is a command whose stdout is testdata/<name>.golden.<ext>.
type goldenCase struct {
	name string
	ext  string // of the golden file
	args []string
	exit int
}

// check runs the command through the real tree, checks its exit status, and
// compares its stdout with the golden file (rewritten with -update; run names
// the test that does). It returns the file and what it holds.
func (tt goldenCase) check(t *testing.T, run string) (string, []byte) {
	t.Helper()
	out, _, err := execute(t, tt.args...)
	if got := exitCode(err); got != tt.exit {
		t.Fatalf("exit %d (%v), want %d; stdout:\n%s", got, err, tt.exit, out)
	}
	golden := filepath.Join("testdata", tt.name+".golden."+tt.ext)
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/syscage -run %s -update)", err, run)
	}
	if diff := cmp.Diff(string(want), out); diff != "" {
		t.Errorf("%s is stale (-want +got):\n%s", golden, diff)
	}
	return golden, want
}

func TestProfileCommandsGolden(t *testing.T) {
	for _, tt := range goldenCases {
		t.Run(tt.name, func(t *testing.T) {
			golden, _ := tt.check(t, "Golden")
			if tt.args[0] == "convert" || tt.args[0] == "merge" && tt.ext == "json" {
				checkGoldenProfile(t, golden, tt.args)
			}
		})
	}
}

// checkGoldenProfile re-reads a profile syscage wrote: it is valid, and converting
// it to its own format gives the same bytes.
func checkGoldenProfile(t *testing.T, golden string, args []string) {
	t.Helper()
	in, err := readInput(golden)
	if err != nil {
		t.Fatalf("re-reading %s: %v", golden, err)
	}
	to := "oci"
	var again []string
	switch in.format {
	case profile.FormatDocker:
		to = "docker"
	case profile.FormatSPO:
		to = "spo"
		if strings.HasSuffix(golden, ".json") {
			again = append(again, "--format", "json")
		}
	}
	if in.format == profile.FormatOCI {
		for _, f := range profile.Validate(in.oci) {
			if f.Severity == profile.Error {
				t.Errorf("%s: %s", golden, f)
			}
		}
	}
	out, _, err := execute(t, append([]string{"convert", golden, "--to", to}, again...)...)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(golden)
	if diff := cmp.Diff(string(want), out); diff != "" {
		t.Errorf("converting %s again changed it (-first +again):\n%s", golden, diff)
	}
}

func TestProfileCommandErrors(t *testing.T) {
	dir := t.TempDir()
	killRead := filepath.Join(dir, "kill-read.json")
	if err := os.WriteFile(killRead, []byte(`{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"syscalls":[{"names":["read"],"action":"SCMP_ACT_KILL"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"spo base without --base", []string{"convert", "testdata/spo-base.input.yaml"}, `spec.baseProfileName "runc-v1.2.0": the base profile is in the cluster: pass it as a file with --base`},
		{"yaml for oci", []string{"convert", "testdata/app.input.json", "--format", "yaml"}, "--format yaml: runtimes read oci profiles as JSON only"},
		{"unknown target", []string{"convert", "testdata/app.input.json", "--to", "lxc"}, `--to "lxc": use oci, docker, spo or localhost`},
		{"unknown arch", []string{"convert", "testdata/docker.input.json", "--arch", "vax"}, `--arch "vax": unknown architecture`},
		{"localhost outside the kubelet dir", []string{"convert", "testdata/app.input.json", "--to", "localhost", "-o", filepath.Join(dir, "app.json")}, "is not under the kubelet's seccomp directory /var/lib/kubelet/seccomp"},
		{"merge conflict names both files", []string{"merge", "testdata/spo.input.yaml", "testdata/app.input.json", killRead}, ` and ` + killRead + ` give "read" different actions (SCMP_ACT_ALLOW vs SCMP_ACT_KILL)`},
		{"check with -o", []string{"merge", "--check", "-o", filepath.Join(dir, "x.json"), "testdata/app.input.json", "testdata/new.input.json"}, "--check writes nothing: drop -o"},
		{"missing file", []string{"check", filepath.Join(dir, "nope.json")}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := execute(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// --to localhost writes the OCI profile under the kubelet's directory and prints
// the securityContext that names it.
func TestConvertLocalhost(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "profiles"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "profiles", "app.json")
	out, _, err := execute(t, "convert", "testdata/app.input.json", "--to", "localhost", "--kubelet-dir", dir, "-o", file)
	if err != nil {
		t.Fatal(err)
	}
	want := "securityContext:\n  seccompProfile:\n    localhostProfile: profiles/app.json\n    type: Localhost\n"
	if out != want {
		t.Errorf("snippet:\n%s\nwant:\n%s", out, want)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := profile.Parse(file, data); err != nil {
		t.Fatal(err)
	}
}

func TestProfileCommandsHelp(t *testing.T) {
	for _, c := range []struct {
		cmd   string
		flags []string
	}{
		{"convert", []string{"--to", "--format", "--arch", "--cap", "--kernel", "--kubelet-dir", "--output"}},
		{"merge", []string{"--check", "--base", "--output", "--format", "github"}},
		{"diff", []string{"--format", "--color", "--exit-code", "sarif"}},
		{"check", []string{"--format", "Exit status: 0 clean", "sarif"}},
		{"stats", []string{"--format"}},
	} {
		out, _, err := execute(t, c.cmd, "--help")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range c.flags {
			if !strings.Contains(out, f) {
				t.Errorf("%s --help lacks %q", c.cmd, f)
			}
		}
	}
}
