package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// push and pull through the command tree, with an OCI layout for a registry.
func TestPushPullLayout(t *testing.T) {
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	want, err := os.ReadFile("testdata/app.input.json")
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := execute(t, "push", "testdata/app.input.json", "v1", "--oci-layout", layout)
	if err != nil {
		t.Fatal(err)
	}
	digest := strings.TrimSpace(out)
	if !strings.HasPrefix(digest, "sha256:") || len(digest) != len("sha256:")+64 {
		t.Fatalf("push printed %q, want the digest", out)
	}

	// To stdout, by tag; to a file, by digest.
	out, _, err = execute(t, "pull", "v1", "--oci-layout", layout)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("pulled to stdout:\n%s\nwant:\n%s", out, want)
	}
	file := filepath.Join(dir, "app.json")
	if _, _, err := execute(t, "pull", "v1@"+digest, "--oci-layout", layout, "-o", file); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(file); err != nil || string(got) != string(want) {
		t.Errorf("pulled to -o: %q, %v", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("pull left files behind: %v", entries)
	}
}

func TestPushPullRefuses(t *testing.T) {
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	if _, _, err := execute(t, "push", "testdata/app.input.json", "v1", "--oci-layout", layout); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"docker profile", []string{"push", "testdata/docker.input.json", "v1", "--oci-layout", layout}, "is a docker profile, but an artifact holds runtime-spec JSON: convert it first"},
		{"invalid profile", []string{"push", "testdata/bad.input.json", "v2", "--oci-layout", layout}, "a runtime would refuse or misread this profile"},
		{"missing file", []string{"push", filepath.Join(dir, "nope.json"), "v1", "--oci-layout", layout}, "no such file"},
		{"unknown tag", []string{"pull", "v9", "--oci-layout", layout}, "v9"},
		{"pin mismatch", []string{"pull", "v1@sha256:" + strings.Repeat("0", 64), "--oci-layout", layout}, "not the pinned sha256:0000"},
		{"output is a directory", []string{"pull", "v1", "--oci-layout", layout, "-o", dir}, dir},
		{"no registry", []string{"pull", "web:v1"}, "REGISTRY/REPOSITORY:TAG"},
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

func TestPushPullHelp(t *testing.T) {
	for _, c := range []string{"push", "pull"} {
		out, _, err := execute(t, c, "--help")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"--oci-layout", "--plain-http", "application/vnd.cncf.seccomp-profile.config.v1+json"} {
			if !strings.Contains(out, f) {
				t.Errorf("%s --help lacks %q", c, f)
			}
		}
	}
}
