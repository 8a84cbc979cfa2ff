//go:build linux

package bpf_test

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/syscage/syscage/bpf"
	"github.com/syscage/syscage/bpf/cgroups"
	"github.com/syscage/syscage/bpf/record"
	"github.com/syscage/syscage/profile"
	"github.com/syscage/syscage/tests/testenv"
	"github.com/syscage/syscage/tests/workload"
)

func openRecorder(t *testing.T) (*bpf.Recorder, [bpf.NumABIs]*profile.Table) {
	t.Helper()
	testenv.RequireRoot(t)
	// As syscage opens it: this machine's exec numbers and argument specs.
	var tables [bpf.NumABIs]*profile.Table
	arches, err := record.Arches()
	if err != nil {
		t.Fatal(err)
	}
	for abi, arch := range arches {
		if arch == "" {
			continue
		}
		if tables[abi], err = profile.TableFor(arch); err != nil {
			t.Fatal(err)
		}
	}
	r, err := record.OpenWith(bpf.Options{})
	if errors.Is(err, bpf.ErrNotSupported) || errors.Is(err, bpf.ErrPermission) {
		testenv.Unavailable(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	ids := r.ProgramIDs()
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
		if left := bpf.LoadedPrograms(ids, 5*time.Second); len(left) > 0 {
			t.Errorf("programs %v still loaded 5s after Close", left)
		}
	})
	return r, tables
}

func newCgroup(t *testing.T) *cgroups.Group {
	t.Helper()
	self, err := cgroups.Self()
	if err != nil {
		t.Fatal(err)
	}
	g, err := cgroups.Create(self, "syscage-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.Kill(5 * time.Second)
		if err := g.Remove(); err != nil {
			t.Error(err)
		}
	})
	return g
}

// runIn starts path with args directly inside g, so not one syscall is missed.
func runIn(t *testing.T, g *cgroups.Group, path string, args ...string) {
	t.Helper()
	f, err := g.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", path, args, err, out)
	}
}

func names(t *testing.T, tab *profile.Table, nrs []int) []string {
	t.Helper()
	var out []string
	for _, nr := range nrs {
		name, ok := tab.Name(nr)
		if !ok {
			t.Errorf("%s: number %d has no name", tab.Arch(), nr)
			continue
		}
		out = append(out, name)
	}
	return out
}

func wantAll(t *testing.T, what string, got []string) {
	t.Helper()
	for part, calls := range workload.Calls {
		for _, c := range calls {
			if !slices.Contains(got, c) {
				t.Errorf("%s: %s call %q missing from %v", what, part, c, got)
			}
		}
	}
}

func TestRecordsEveryThreadAndDescendant(t *testing.T) {
	r, tables := openRecorder(t)
	dir := t.TempDir()
	wl := workload.Build(t, dir, workload.Dynamic)

	// Noise outside the cgroup, running all along.
	busy := exec.Command(wl, "busy")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Process.Kill(); busy.Wait() })

	g := newCgroup(t)
	if r.Attached() {
		t.Fatal("attached before any cgroup is tracked")
	}
	if err := r.Track(g.ID, bpf.StartExec); err != nil {
		t.Fatal(err)
	}
	if !r.Attached() {
		t.Fatal("not attached while a cgroup is tracked")
	}
	runIn(t, g, wl, "calls")

	rec, err := r.Read(g.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := names(t, tables[bpf.Native], rec.Syscalls[bpf.Native])
	wantAll(t, "native", got)
	for _, want := range []string{"execve", "clone3", "exit_group"} {
		if !slices.Contains(got, want) {
			t.Errorf("native: %q missing from %v", want, got)
		}
	}
	if slices.Contains(got, workload.BusyCall) {
		t.Errorf("native: %q of a process outside the cgroup was recorded", workload.BusyCall)
	}
	if len(rec.Syscalls[bpf.Compat]) != 0 || len(rec.Syscalls[bpf.X32]) != 0 {
		t.Errorf("compat/x32 calls recorded from a native workload: %v", rec.Syscalls)
	}
	if rec.Stats.Events == 0 || rec.Stats.BeforeStart == 0 {
		t.Errorf("counters not kept: %+v", rec.Stats)
	}
	if rec.Stats.OutOfRange != 0 {
		t.Errorf("out of range numbers: %+v", rec.Stats)
	}
	t.Logf("native %d syscalls, stats %+v", len(got), rec.Stats)

	if err := r.Untrack(g.ID); err != nil {
		t.Fatal(err)
	}
	if r.Attached() {
		t.Fatal("still attached after the last cgroup was untracked")
	}
}

// StartExec must leave out what the starting process did before its exec: the
// recording of a command that only execs /bin/true is small and known.
func TestStartExecLeavesOutTheLauncher(t *testing.T) {
	r, tables := openRecorder(t)
	g := newCgroup(t)
	if err := r.Track(g.ID, bpf.StartExec); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	wl := workload.Build(t, dir, workload.Dynamic)
	runIn(t, g, wl, "print")
	rec, err := r.Read(g.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := names(t, tables[bpf.Native], rec.Syscalls[bpf.Native])
	// Go's child sets up its file descriptors with dup3 before exec; a dynamic C
	// program never calls it.
	if slices.Contains(got, "dup3") {
		t.Errorf("launcher syscalls recorded before exec: %v", got)
	}
	if !slices.Contains(got, "execve") {
		t.Errorf("the exec that started the workload is missing: %v", got)
	}
}

func TestNestedCgroupCounts(t *testing.T) {
	r, tables := openRecorder(t)
	g := newCgroup(t)
	if err := r.Track(g.ID, bpf.StartNow); err != nil {
		t.Fatal(err)
	}
	// A cgroup made inside the tracked one after tracking began, as a container
	// engine inside the workload would.
	inner, err := cgroups.Create(g.Path, "inner")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	wl := workload.Build(t, dir, workload.Dynamic)
	runIn(t, inner, wl, "calls")
	rec, err := r.Read(g.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantAll(t, "nested", names(t, tables[bpf.Native], rec.Syscalls[bpf.Native]))
}

func TestCompatCallsNamedFromTheirOwnTable(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the 32-bit workload is built for i386")
	}
	r, tables := openRecorder(t)
	dir := t.TempDir()
	wl32 := workload.Build(t, dir, workload.Static32)
	g := newCgroup(t)
	if err := r.Track(g.ID, bpf.StartExec); err != nil {
		t.Fatal(err)
	}
	runIn(t, g, wl32, "calls")
	rec, err := r.Read(g.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The exec into the 32-bit program is the only native call.
	if got := names(t, tables[bpf.Native], rec.Syscalls[bpf.Native]); !slices.Equal(got, []string{"execve"}) {
		t.Errorf("native calls of a 32-bit workload: got %v, want [execve]", got)
	}
	compat := names(t, tables[bpf.Compat], rec.Syscalls[bpf.Compat])
	wantAll(t, "compat", compat)
	if !slices.Contains(compat, "set_thread_area") {
		t.Errorf("i386 start-up call set_thread_area missing: %v", compat)
	}
	t.Logf("compat: %v", compat)
}

func TestManyCgroupsKeptApart(t *testing.T) {
	r, tables := openRecorder(t)
	dir := t.TempDir()
	wl := workload.Build(t, dir, workload.Dynamic)
	a, b := newCgroup(t), newCgroup(t)
	for _, g := range []*cgroups.Group{a, b} {
		if err := r.Track(g.ID, bpf.StartExec); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Track(a.ID, bpf.StartExec); err == nil {
		t.Error("tracking the same cgroup twice succeeded")
	}
	runIn(t, a, wl, "calls")
	runIn(t, b, "/bin/true")
	ra, err := r.Read(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := r.Read(b.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantAll(t, "a", names(t, tables[bpf.Native], ra.Syscalls[bpf.Native]))
	gotB := names(t, tables[bpf.Native], rb.Syscalls[bpf.Native])
	for _, calls := range workload.Calls {
		for _, c := range calls {
			if slices.Contains(gotB, c) {
				t.Errorf("b recorded a's call %q", c)
			}
		}
	}
}

// x32 numbers (the x32 bit set on a number that is not negative) are recorded
// in the x32 ABI with the bit cleared, whatever the kernel then makes of the
// call; a negative number is out of range, not x32, though its bit 30 is set.
func TestX32AndNegativeNumbers(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("x32 is an x86_64 ABI")
	}
	if os.Getenv("SYSCAGE_TEST_RAW_SYSCALLS") == "1" {
		const x32Bit, getppid = 0x40000000, 110
		syscall.RawSyscall(x32Bit|getppid, 0, 0, 0)
		syscall.RawSyscall(^uintptr(0), 0, 0, 0) // -1
		return
	}
	r, _ := openRecorder(t)
	g := newCgroup(t)
	if err := r.Track(g.ID, bpf.StartNow); err != nil {
		t.Fatal(err)
	}
	f, err := g.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestX32AndNegativeNumbers$")
	cmd.Env = append(os.Environ(), "SYSCAGE_TEST_RAW_SYSCALLS=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	rec, err := r.Read(g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.Syscalls[bpf.X32], []int{110}) {
		t.Errorf("x32 calls: got %v, want [110] (getppid)", rec.Syscalls[bpf.X32])
	}
	if len(rec.Syscalls[bpf.Compat]) != 0 {
		t.Errorf("compat calls from a 64-bit process: %v", rec.Syscalls[bpf.Compat])
	}
	if rec.Stats.OutOfRange != 1 || rec.Stats.LastOutOfRange != -1 {
		t.Errorf("out of range: got %d, last %d; want 1, last -1", rec.Stats.OutOfRange, rec.Stats.LastOutOfRange)
	}
}
