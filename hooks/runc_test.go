package hooks

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/oci"
)

func TestRuncBundle(t *testing.T) {
	tests := []struct {
		args   []string
		bundle string
		ok     bool
	}{
		{[]string{"--root", "/run/runc", "--log", "/l", "--log-format", "json", "create", "--bundle", "/b", "--pid-file", "/p", "id"}, "/b", true},
		{[]string{"create", "--bundle=/b", "id"}, "/b", true},
		{[]string{"--systemd-cgroup", "run", "-b", "/b", "id"}, "/b", true},
		{[]string{"create", "id"}, ".", true},
		{[]string{"--root", "create", "start", "id"}, "", false}, // "create" is --root's value
		{[]string{"start", "id"}, "", false},
		{[]string{"delete", "--force", "id"}, "", false},
		{nil, "", false},
	}
	for _, tt := range tests {
		b, ok := runcBundle(tt.args)
		if b != tt.bundle || ok != tt.ok {
			t.Errorf("runcBundle(%q) = %q, %v; want %q, %v", tt.args, b, ok, tt.bundle, tt.ok)
		}
	}
}

func TestInjectHook(t *testing.T) {
	dir := t.TempDir()
	write := func(v any) {
		b, _ := json.Marshal(v)
		os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
	}
	read := func() map[string]any {
		var m map[string]any
		b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
		json.Unmarshal(b, &m)
		return m
	}
	hook := specs.Hook{Path: "/usr/local/bin/syscage", Args: []string{"syscage", "hook"}}

	write(map[string]any{"ociVersion": "1.0.2", "x-unknown": 7, "annotations": map[string]string{"other": "1"}})
	if did, err := oci.InjectHook(dir, hook, WantsRecording); err != nil || did {
		t.Fatalf("container without annotation: %v, %v", did, err)
	}
	write(map[string]any{"ociVersion": "1.0.2", "x-unknown": 7, "annotations": map[string]string{Annotation: "web"},
		"hooks": map[string]any{"prestart": []any{map[string]any{"path": "/other"}}}})
	if did, err := oci.InjectHook(dir, hook, WantsRecording); err != nil || !did {
		t.Fatalf("annotated container: %v, %v", did, err)
	}
	m := read()
	if m["x-unknown"] != float64(7) || m["ociVersion"] != "1.0.2" {
		t.Errorf("other fields changed: %v", m)
	}
	hooks := m["hooks"].(map[string]any)
	if pre := hooks["prestart"].([]any); len(pre) != 2 || pre[1].(map[string]any)["path"] != hook.Path {
		t.Errorf("prestart: %v", pre)
	}
	if post := hooks["poststop"].([]any); len(post) != 1 {
		t.Errorf("poststop: %v", post)
	}
	// Twice (hooks.d added it too, or runc run after create) is once.
	if did, err := oci.InjectHook(dir, hook, WantsRecording); err != nil || did {
		t.Fatalf("second injection: %v, %v", did, err)
	}
}
