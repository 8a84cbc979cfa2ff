package hooks

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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
			path := statePath("/run/x", tt.id)
			if filepath.Dir(path) != "/run/x/containers" {
				t.Errorf("%q: %s is outside the state directory", tt.id, path)
			}
			if got := strings.HasPrefix(filepath.Base(path), "sha256-"); got != tt.hashed {
				t.Errorf("%q: %s, hashed %v, want %v", tt.id, path, got, tt.hashed)
			}
		})
	}
}

// States survive the process: what one recorder saves, the next loads; leftovers
// of a write it died in, and files that are not states, are removed.
func TestStatesRoundTrip(t *testing.T) {
	run := t.TempDir()
	want := []saved{
		{Container: "c1", CgroupID: 7, CgroupDir: "/sys/fs/cgroup/c1", Target: Target{Dir: "/p", File: "web.json", Merge: true, From: "io.syscage.record=web"}, Start: 2, Recorder: 10, Pins: "/sys/fs/bpf/syscage/recorder-1"},
		{Container: "c2", CgroupID: 8, Target: Target{Dir: "/p", File: "db.json"}, Recorder: 10, Done: true, Error: "no space left on device", Ended: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
	}
	for _, s := range want {
		if err := saveState(run, s); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(run, stateDir)
	os.WriteFile(filepath.Join(dir, "c3.json.tmp-abc"), []byte("{"), 0o600)
	os.WriteFile(filepath.Join(dir, "c4.json"), []byte("{not json"), 0o600)
	wrong, _ := json.Marshal(saved{Container: "other"})
	os.WriteFile(filepath.Join(dir, "c5.json"), wrong, 0o600)

	got, errs := loadStates(run)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	if len(errs) != 2 {
		t.Errorf("want the two bad files reported, got %v", errs)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("bad files left: %v", entries)
	}
	if !hasState(run, "c1") || hasState(run, "c9") {
		t.Error("hasState")
	}
}

// The lock file goes with the recorder that held it, and one waiting for it locks
// the file then at the path, never the removed one.
func TestLockRemovedOnUnlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "recorder.lock")
	first, err := lockFile(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockFile(path, 20*time.Millisecond); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("a second lock while held: %v", err)
	}
	got := make(chan *os.File)
	go func() {
		f, err := lockFile(path, 5*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- f
	}()
	time.Sleep(50 * time.Millisecond) // the waiter has opened the file first locked
	unlock(first, path)
	second := <-got
	if second == nil {
		return
	}
	fi, _ := second.Stat()
	pi, err := os.Stat(path)
	if err != nil || !os.SameFile(fi, pi) {
		t.Errorf("the waiter locked a file no longer at %s (%v)", path, err)
	}
	unlock(second, path)
	if _, err := os.Stat(path); err == nil {
		t.Error("lock file left after unlock")
	}
}

// The note of a profile not written is JSON beside it; a symbolic link in its place
// is refused.
func TestErrorFile(t *testing.T) {
	dir := t.TempDir()
	tg := &Target{Dir: dir, File: "web.json"}
	err := notWritten(tg, "c1", errors.New("disk full"))
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
	err = notWritten(&Target{Dir: dir, File: "db.json"}, "c2", errors.New("lost"))
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

// BenchmarkSaveState: what saving a container's state adds to its track and its
// finish (in the run directory, a tmpfs on a host).
func BenchmarkSaveState(b *testing.B) {
	run := b.TempDir()
	if _, err := os.Stat("/dev/shm"); err == nil {
		run, _ = os.MkdirTemp("/dev/shm", "syscage-bench-")
		defer os.RemoveAll(run)
	}
	s := saved{Container: strings.Repeat("ab12", 16), CgroupID: 7, CgroupDir: "/sys/fs/cgroup/x", Target: Target{Dir: "/p", File: "web.json"}, Recorder: 1}
	for b.Loop() {
		if err := saveState(run, s); err != nil {
			b.Fatal(err)
		}
	}
}
