package recorder

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

	"github.com/syscage/syscage/hooks"
)

// States survive the process: what one recorder saves, the next loads; leftovers
// of a write it died in, and files that are not states, are removed.
func TestStatesRoundTrip(t *testing.T) {
	run := t.TempDir()
	want := []saved{
		{Container: "c1", CgroupID: 7, CgroupDir: "/sys/fs/cgroup/c1", Target: hooks.Target{Dir: "/p", File: "web.json", Merge: true, From: "io.syscage.record=web"}, Start: 2, Recorder: 10, Pins: "/sys/fs/bpf/syscage/recorder-1"},
		{Container: "c2", CgroupID: 8, Target: hooks.Target{Dir: "/p", File: "db.json"}, Recorder: 10, Done: true, Error: "no space left on device", Ended: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
	}
	for _, s := range want {
		if err := saveState(run, s); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(run, hooks.StateDir)
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
	if _, err := os.Lstat(hooks.StatePath(run, "c1")); err != nil {
		t.Errorf("c1's state: %v", err)
	}
}

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

// BenchmarkSaveState: what saving a container's state adds to its track and its
// finish (in the run directory, a tmpfs on a host).
func BenchmarkSaveState(b *testing.B) {
	run := b.TempDir()
	if _, err := os.Stat("/dev/shm"); err == nil {
		run, _ = os.MkdirTemp("/dev/shm", "syscage-bench-")
		defer os.RemoveAll(run)
	}
	s := saved{Container: strings.Repeat("ab12", 16), CgroupID: 7, CgroupDir: "/sys/fs/cgroup/x", Target: hooks.Target{Dir: "/p", File: "web.json"}, Recorder: 1}
	for b.Loop() {
		if err := saveState(run, s); err != nil {
			b.Fatal(err)
		}
	}
}
