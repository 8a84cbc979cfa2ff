package cgroups

import (
	"testing"
	"time"

	"github.com/syscage/syscage/tests/testenv"
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
	events := func(dir, populated string) { testenv.SetPopulated(t, dir, populated == "1") }
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
