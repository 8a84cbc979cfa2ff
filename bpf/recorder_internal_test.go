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

// A cgroup cached as "not tracked" must be recorded once it is tracked, even when
// the generation's low 16 bits (all L1 keeps) come round to the cached value again.
func TestL1ClearedWhenGenerationWraps(t *testing.T) {
	testenv.RequireRoot(t)
	r, err := Open(Options{ExecSyscalls: [NumABIs][2]int32{{-1, -1}, {-1, -1}, {-1, -1}}})
	if err != nil {
		testenv.Unavailable(t, "%v", err)
	}
	defer r.Close()
	self, err := cgroups.Self()
	if err != nil {
		t.Fatal(err)
	}
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
