package oci

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var testProfile = &specs.LinuxSeccomp{
	DefaultAction: specs.ActErrno,
	Syscalls:      []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActAllow}},
}

func TestSpliceSeccomp(t *testing.T) {
	for _, tc := range []struct {
		name, in string
	}{
		{"runc spec, tabs", "{\n\t\"ociVersion\": \"1.0.2-dev\",\n\t\"x-unknown\": {\"keep\": [1, 2.50, 1e3]},\n\t\"linux\": {\n\t\t\"namespaces\": [\n\t\t\t{\"type\": \"pid\"}\n\t\t],\n\t\t\"maskedPaths\": []\n\t},\n\t\"hostname\": \"h\"\n}\n"},
		{"replace", "{\n  \"ociVersion\": \"1.0.2\",\n  \"linux\": {\n    \"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\"},\n    \"x\": 1\n  }\n}\n"},
		{"compact", `{"ociVersion":"1.0.2","linux":{"x":1},"z":"\"quoted\" key"}`},
		{"no linux", "{\n    \"ociVersion\": \"1.0.2\"\n}"},
		{"empty linux", "{\n\t\"ociVersion\": \"1.0.2\",\n\t\"linux\": {}\n}"},
		{"escaped key", "{\"a\\\"b\": 1, \"linux\": {\"k\\\\\": 2}}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := SpliceSeccomp([]byte(tc.in), testProfile)
			if err != nil {
				t.Fatal(err)
			}
			var got, want map[string]any
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			json.Unmarshal([]byte(tc.in), &want)
			// The profile is in place ...
			var spec specs.Spec
			if err := json.Unmarshal(out, &spec); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(testProfile, spec.Linux.Seccomp); diff != "" {
				t.Errorf("seccomp (-want +got):\n%s", diff)
			}
			// ... and nothing else changed, to the byte: removing the profile from the
			// output gives back the input.
			if l, ok := want["linux"].(map[string]any); ok {
				delete(l, "seccomp")
			}
			if l, ok := got["linux"].(map[string]any); ok {
				delete(l, "seccomp")
				if len(l) == 0 && want["linux"] == nil {
					delete(got, "linux")
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("other fields changed (-want +got):\n%s", diff)
			}
			prefix := tc.in[:strings.Index(tc.in, `"ociVersion"`)+1]
			if tc.name != "compact" && tc.name != "escaped key" && !bytes.HasPrefix(out, []byte(prefix)) {
				t.Errorf("the start of the file changed:\n%s", out)
			}
			t.Logf("\n%s", out)
		})
	}
}

func TestSpliceKeepsBytes(t *testing.T) {
	in := "{\n\t\"ociVersion\": \"1.0.2-dev\",\n\t\"n\": 1.50,\n\t\"linux\": {\n\t\t\"a\": 1,\n\t\t\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\"},\n\t\t\"b\": 2\n\t},\n\t\"z\": 0\n}\n"
	out, err := SpliceSeccomp([]byte(in), testProfile)
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(in, `{"defaultAction"`)
	end := start + len(`{"defaultAction": "SCMP_ACT_ALLOW"}`)
	if !bytes.HasPrefix(out, []byte(in[:start])) || !bytes.HasSuffix(out, []byte(in[end:])) {
		t.Errorf("bytes outside the seccomp value changed:\n%s", out)
	}
	if !bytes.Contains(out, []byte("\"seccomp\": {\n\t\t\t\"defaultAction\": \"SCMP_ACT_ERRNO\",\n")) {
		t.Errorf("profile not indented like its neighbours:\n%s", out)
	}
}

func TestSpliceRefuses(t *testing.T) {
	for _, in := range []string{`[]`, `{"linux": 3}`, `not json`, `{"linux": {"seccomp": 1}}`} {
		if _, err := SpliceSeccomp([]byte(in), testProfile); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}

func TestApplyProfile(t *testing.T) {
	dir := t.TempDir()
	in := "{\n\t\"ociVersion\": \"1.0.2-dev\",\n\t\"linux\": {}\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ApplyProfile(dir, testProfile); err != nil {
		t.Fatal(err)
	}
	spec, err := LoadSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(testProfile, spec.Linux.Seccomp); diff != "" {
		t.Errorf("seccomp (-want +got):\n%s", diff)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("bundle holds %d files after apply, want config.json alone", len(entries))
	}
	if err := ApplyProfile(t.TempDir(), testProfile); err == nil {
		t.Error("no error for a bundle without config.json")
	}
}

func TestSecurityOpt(t *testing.T) {
	got, err := SecurityOpt("/var/lib/p.json")
	if err != nil || got != "--security-opt seccomp=/var/lib/p.json" {
		t.Errorf("got %q, %v", got, err)
	}
	got, _ = SecurityOpt("/tmp/my profile's.json")
	if got != `--security-opt seccomp='/tmp/my profile'\''s.json'` {
		t.Errorf("got %q", got)
	}
	got, _ = SecurityOpt("p.json")
	if !strings.HasPrefix(got, "--security-opt seccomp=/") {
		t.Errorf("relative path not made absolute: %q", got)
	}
}
