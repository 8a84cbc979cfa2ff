package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syscage/syscage/oci"
)

func TestApply(t *testing.T) {
	dir := t.TempDir()
	p := writeProfile(t, dir, "p.json", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}`)
	bundle := t.TempDir()
	config := "{\n\t\"ociVersion\": \"1.0.2-dev\",\n\t\"x-keep\": 1.50,\n\t\"linux\": {\n\t\t\"namespaces\": []\n\t}\n}\n"
	writeProfile(t, bundle, "config.json", config)

	out, stderr, err := execute(t, "apply", "--profile", p, "--bundle", bundle, "--print-flag")
	if err != nil {
		t.Fatal(err)
	}
	if out != "--security-opt seccomp="+p+"\n" {
		t.Errorf("stdout %q, want the flag", out)
	}
	if !strings.Contains(stderr, "now enforces") {
		t.Errorf("stderr %q", stderr)
	}
	spec, err := oci.LoadSpec(bundle)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Linux.Seccomp == nil || spec.Linux.Seccomp.DefaultAction != "SCMP_ACT_ERRNO" || len(spec.Linux.Seccomp.Syscalls) != 1 {
		t.Errorf("seccomp %+v", spec.Linux.Seccomp)
	}
	data, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	if !strings.HasPrefix(string(data), "{\n\t\"ociVersion\": \"1.0.2-dev\",\n\t\"x-keep\": 1.50,\n") {
		t.Errorf("fields before linux changed:\n%s", data)
	}
}

func TestApplyRefuses(t *testing.T) {
	dir := t.TempDir()
	bad := writeProfile(t, dir, "bad.json", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["opn"],"action":"SCMP_ACT_ERRNO"}]}`)
	ok := writeProfile(t, dir, "ok.json", `{"defaultAction":"SCMP_ACT_ALLOW"}`)
	bundle := t.TempDir()
	config := `{"ociVersion":"1.0.2"}`
	writeProfile(t, bundle, "config.json", config)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"apply", "--profile", bad, "--bundle", bundle}, `syscalls[0].names[0]: unknown syscall "opn"`},
		{[]string{"apply", "--profile", ok}, "nothing to do: give --bundle DIR, --print-flag, or both"},
		{[]string{"apply", "--profile", ok, "--bundle", dir}, "reading bundle config"},
		{[]string{"apply", "--bundle", bundle}, `required flag(s) "profile" not set`},
	} {
		if _, _, err := execute(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got error %v, want it to contain %q", tc.args, err, tc.want)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(bundle, "config.json")); string(data) != config {
		t.Errorf("a refused profile changed the bundle: %s", data)
	}
}
