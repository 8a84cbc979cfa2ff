package hooks

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The hook starts syscage-recorder beside it, else the whole CLI's `syscage
// daemon` beside it, else names syscage-recorder as missing.
func TestBesideRecorder(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // nothing on PATH
	dir := t.TempDir()
	hook := filepath.Join(dir, "syscage-hook")
	touch := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	touch("syscage-hook")
	for _, tt := range []struct {
		add  string
		want []string
	}{
		{"", []string{filepath.Join(dir, RecorderName)}},
		{"syscage", []string{filepath.Join(dir, "syscage"), "daemon"}},
		{RecorderName, []string{filepath.Join(dir, RecorderName)}},
	} {
		if tt.add != "" {
			touch(tt.add)
		}
		if got := BesideRecorder(hook); !slices.Equal(got, tt.want) {
			t.Errorf("with %q added: %q, want %q", tt.add, got, tt.want)
		}
	}
	// The CLI as the hook itself (syscage-runc linked to it) is no fallback to itself.
	cli := filepath.Join(t.TempDir(), "syscage")
	if got := BesideRecorder(cli); len(got) != 1 || filepath.Base(got[0]) != RecorderName {
		t.Errorf("the CLI alone: %q", got)
	}
	// Nothing beside it: the recorder, else the CLI, on PATH.
	bin := t.TempDir()
	t.Setenv("PATH", bin)
	lone := filepath.Join(t.TempDir(), "syscage-hook")
	if err := os.WriteFile(filepath.Join(bin, "syscage"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, want := BesideRecorder(lone), []string{filepath.Join(bin, "syscage"), "daemon"}; !slices.Equal(got, want) {
		t.Errorf("the CLI on PATH: %q, want %q", got, want)
	}
	if err := os.WriteFile(filepath.Join(bin, RecorderName), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, want := BesideRecorder(lone), []string{filepath.Join(bin, RecorderName)}; !slices.Equal(got, want) {
		t.Errorf("the recorder on PATH: %q, want %q", got, want)
	}
}
