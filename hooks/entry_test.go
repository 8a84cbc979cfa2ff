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
}
