package cgroups

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A watched cgroup's emptying is told once, from its cgroup.events; one no
// longer watched is not. (A directory with a cgroup.events file of its own
// stands for the cgroup: inotify reports its change as the kernel's.)
func TestEmptiedAddRemove(t *testing.T) {
	e, err := WatchEmptied()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// Written in place, in one write, as the kernel changes it (a truncation
	// would show an empty file for a moment).
	events := func(dir, populated string) {
		t.Helper()
		f, err := os.OpenFile(filepath.Join(dir, "cgroup.events"), os.O_WRONLY|os.O_CREATE, 0o644)
		if err == nil {
			_, err = f.WriteAt([]byte("populated "+populated+"\nfrozen 0\n"), 0)
			f.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	watched, removed := t.TempDir(), t.TempDir()
	events(watched, "1")
	events(removed, "1")
	ended := make(chan string, 4)
	for _, dir := range []string{watched, removed} {
		if err := e.Add(dir, func() { ended <- dir }); err != nil {
			t.Fatal(err)
		}
	}
	e.Remove(removed)
	events(removed, "0")
	events(watched, "1") // a change that is no emptying
	select {
	case dir := <-ended:
		t.Fatalf("told that %s emptied", dir)
	case <-time.After(100 * time.Millisecond):
	}
	events(watched, "0")
	select {
	case dir := <-ended:
		if dir != watched {
			t.Fatalf("told of %s, want %s", dir, watched)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not told that the watched cgroup emptied")
	}
	events(watched, "1")
	events(watched, "0")
	select {
	case dir := <-ended:
		t.Fatalf("told twice, of %s", dir)
	case <-time.After(100 * time.Millisecond):
	}
}
