package oci

import (
	"os"
	"path/filepath"
	"testing"
)

func TestBundleHasSeccomp(t *testing.T) {
	for _, tc := range []struct {
		name, config string
		want         bool
	}{
		{"filtered", `{"ociVersion":"1.0.2","linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO"}}}`, true},
		{"no seccomp", `{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"}]}}`, false},
		{"null seccomp", `{"ociVersion":"1.0.2","linux":{"seccomp":null}}`, false},
		{"no linux", `{"ociVersion":"1.0.2"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(tc.config), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := BundleHasSeccomp(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("BundleHasSeccomp = %v, want %v", got, tc.want)
			}
			// The same answer as decoding the whole spec.
			spec, err := LoadSpec(dir)
			if err != nil {
				t.Fatal(err)
			}
			if HasSeccomp(spec) != got {
				t.Errorf("HasSeccomp = %v, BundleHasSeccomp = %v", HasSeccomp(spec), got)
			}
		})
	}
	if _, err := BundleHasSeccomp(t.TempDir()); err == nil {
		t.Error("a bundle without config.json: no error")
	}
}
