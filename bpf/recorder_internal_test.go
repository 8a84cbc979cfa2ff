//go:build linux

package bpf

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syscage/syscage/bpf/cgroups"
	"github.com/syscage/syscage/tests/testenv"
)

// openPlain opens a recorder that knows no exec numbers, closed at the test's
// end, and returns it with the test's own cgroup's path.
func openPlain(t *testing.T) (*Recorder, string) {
	t.Helper()
	testenv.RequireRoot(t)
	r, err := Open(Options{ExecSyscalls: [NumABIs][2]int32{{-1, -1}, {-1, -1}, {-1, -1}}})
	if err != nil {
		testenv.Unavailable(t, "%v", err)
	}
	t.Cleanup(func() { r.Close() })
	self, err := cgroups.Self()
	if err != nil {
		t.Fatal(err)
	}
	return r, self
}

// A cgroup cached as "not tracked" must be recorded once it is tracked, even when
// the generation's low 16 bits (all L1 keeps) come round to the cached value again.
func TestL1ClearedWhenGenerationWraps(t *testing.T) {
	r, self := openPlain(t)
	other, err := cgroups.Create(self, "syscage-test-other")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Remove()
	g, err := cgroups.Create(self, "syscage-test-wrap")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { g.Kill(time.Second); g.Remove() }()
	run := func() {
		f, err := g.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd := exec.Command("/bin/true")
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
	}

	// Attach (by tracking another cgroup) and let g's syscalls be cached as untracked.
	if err := r.Track(other.ID, StartNow); err != nil {
		t.Fatal(err)
	}
	run()
	// Come round to the generation whose low 16 bits equal those g was cached with,
	// crossing the wrap through bump as 65535 changes to tracked would.
	r.mu.Lock()
	cached := r.gen
	r.gen = 0xffff
	err = r.bump()
	r.gen += cached - 1
	r.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Track(g.ID, StartNow); err != nil {
		t.Fatal(err)
	}
	run()
	rec, err := r.Read(g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Stats.Events == 0 {
		t.Fatal("tracked cgroup recorded nothing after the generation wrapped: stale L1 entry")
	}
}

func TestCheckNamesMissingBTF(t *testing.T) {
	testenv.RequireRoot(t) // a non-root run stops at the privilege check first
	defer func(p string) { btfPath = p }(btfPath)
	btfPath = "/nonexistent/vmlinux"
	err := Check()
	want := "kernel lacks BTF (/nonexistent/vmlinux): rebuild it with CONFIG_DEBUG_INFO_BTF=y"
	if err == nil || !errors.Is(err, ErrNotSupported) || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %v, want %q wrapping ErrNotSupported", err, want)
	}
}

// A slot given out again counts afresh: every CPU finds its counters of the slot
// stamped with the earlier epoch and zeroes them, with nothing written from user
// space, while a neighbour in the same chunk of counters keeps its own.
func TestReusedSlotCountsAfresh(t *testing.T) {
	r, self := openPlain(t)
	group := func(name string) *cgroups.Group {
		g, err := cgroups.Create(self, name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Kill(time.Second); g.Remove() })
		return g
	}
	run := func(g *cgroups.Group, args ...string) {
		f, err := g.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	events := func(g *cgroups.Group) uint64 {
		rec, err := r.Read(g.ID)
		if err != nil {
			t.Fatal(err)
		}
		return rec.Stats.Events
	}
	// 100,000 one-byte reads and writes, on whichever CPUs the scheduler picks.
	busy := []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=1", "count=100000"}

	neighbour, first, second := group("syscage-test-neighbour"), group("syscage-test-first"), group("syscage-test-second")
	if err := r.Track(neighbour.ID, StartNow); err != nil {
		t.Fatal(err)
	}
	if err := r.Track(first.ID, StartNow); err != nil {
		t.Fatal(err)
	}
	run(first, busy...)
	run(neighbour, busy...)
	before := events(neighbour)
	if got := events(first); got < 200000 {
		t.Fatalf("first cgroup: %d events, want at least 200000", got)
	}
	slot := r.slots[first.ID]
	if err := r.Untrack(first.ID); err != nil {
		t.Fatal(err)
	}
	if err := r.Track(second.ID, StartNow); err != nil {
		t.Fatal(err)
	}
	if r.slots[second.ID] != slot {
		t.Fatalf("second cgroup got slot %d, not the first's %d again", r.slots[second.ID], slot)
	}
	if slot/counterChunk != r.slots[neighbour.ID]/counterChunk {
		t.Fatalf("slots %d and %d do not share a chunk of counters", slot, r.slots[neighbour.ID])
	}
	if got := events(second); got != 0 {
		t.Errorf("second cgroup: %d events before it ran anything, want 0", got)
	}
	run(second, "/bin/true")
	if got := events(second); got == 0 || got > 2000 {
		t.Errorf("second cgroup: %d events for /bin/true, want a few hundred at most (the first's were kept?)", got)
	}
	if got := events(neighbour); got < before {
		t.Errorf("neighbour: %d events after the slot beside it was given out again, %d before", got, before)
	}
}

// The object Prepare parses goes to one Open only: each Open changes its spec.
func TestPreparedSpecTakenOnce(t *testing.T) {
	Prepare()
	Prepare() // one parse ahead at most
	first, err := takeSpec()
	if err != nil {
		t.Fatal(err)
	}
	second, err := takeSpec()
	if err != nil {
		t.Fatal(err)
	}
	if first == second {
		t.Fatal("two Opens would share one spec")
	}
	if len(first.Programs) == 0 || len(second.Programs) == 0 {
		t.Fatalf("specs without programs: %d and %d", len(first.Programs), len(second.Programs))
	}
}
