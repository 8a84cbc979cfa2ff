package hooks

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStatePath(t *testing.T) {
	tests := []struct {
		name, id string
		hashed   bool
	}{
		{"podman", strings.Repeat("ab12", 16), false},
		{"runc name", "syscage-rt-0a1b", false},
		{"slash", "a/b", true},
		{"dotdot", "..", true},
		{"empty", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := StatePath("/run/x", tt.id)
			if filepath.Dir(path) != "/run/x/containers" {
				t.Errorf("%q: %s is outside the state directory", tt.id, path)
			}
			if got := strings.HasPrefix(filepath.Base(path), "sha256-"); got != tt.hashed {
				t.Errorf("%q: %s, hashed %v, want %v", tt.id, path, got, tt.hashed)
			}
		})
	}
}

// The lock file goes with the recorder that held it, and one waiting for it locks
// the file then at the path, never the removed one.
// The note of a profile not written is JSON beside it; a symbolic link in its place
// is refused.
func TestErrorFile(t *testing.T) {
	dir := t.TempDir()
	tg := &Target{Dir: dir, File: "web.json"}
	err := NotWritten(tg, "c1", errors.New("disk full"))
	if !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "web.json.error") {
		t.Errorf("error: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "web.json.error"))
	if err != nil {
		t.Fatal(err)
	}
	var note errorReport
	if err := json.Unmarshal(data, &note); err != nil || note.Container != "c1" || note.Error != "disk full" || note.Profile != tg.Path() {
		t.Errorf("note %s: %v", data, err)
	}
	outside := filepath.Join(t.TempDir(), "x")
	os.Symlink(outside, filepath.Join(dir, "db.json.error"))
	err = NotWritten(&Target{Dir: dir, File: "db.json"}, "c2", errors.New("lost"))
	if !strings.Contains(err.Error(), "could not be written either") {
		t.Errorf("through a symbolic link: %v", err)
	}
	if _, err := os.Stat(outside); err == nil {
		t.Error("written through a symbolic link")
	}
}

func TestRecorderCgroupPerRunDir(t *testing.T) {
	def := DefaultConfig()
	if got := def.RecorderCgroup(); got != RecorderCgroup {
		t.Errorf("default run dir: %s", got)
	}
	a, b := &Config{RunDir: "/tmp/a"}, &Config{RunDir: "/tmp/b"}
	if a.RecorderCgroup() == b.RecorderCgroup() || !strings.HasPrefix(a.RecorderCgroup(), RecorderCgroup+"-") {
		t.Errorf("%s, %s", a.RecorderCgroup(), b.RecorderCgroup())
	}
}
