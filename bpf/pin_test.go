//go:build linux

package bpf_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/syscage/syscage/bpf"
	"github.com/syscage/syscage/bpf/cgroups"
	"github.com/syscage/syscage/bpf/record"
	"github.com/syscage/syscage/profile"
	"github.com/syscage/syscage/tests/testenv"
	"github.com/syscage/syscage/tests/workload"
	"golang.org/x/sys/unix"
)

// pinRoot is a pin directory of the test's own below /sys/fs/bpf, removed (and
// checked gone) at the end.
func pinRoot(t *testing.T) string {
	t.Helper()
	testenv.RequireRoot(t)
	b := make([]byte, 6)
	rand.Read(b)
	root := filepath.Join("/sys/fs/bpf", "syscage-test-"+hex.EncodeToString(b))
	t.Cleanup(func() {
		if removed, _ := bpf.RemovePins(root); len(removed) > 0 {
			t.Errorf("pins left behind: %v", removed)
		}
		os.Remove(root)
	})
	return root
}

func openPinned(t *testing.T, root string) *bpf.Recorder {
	t.Helper()
	r, err := record.OpenWith(bpf.Options{PinDir: root})
	if errors.Is(err, bpf.ErrNotSupported) || errors.Is(err, bpf.ErrPermission) {
		testenv.Unavailable(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A recorder closed (or killed) while it records leaves its pins, and the kernel
// goes on recording; the next recorder takes over the cgroup with everything it
// made before and after, and removes the pins once it is done.
func TestPinnedRecordingIsTakenOver(t *testing.T) {
	root := pinRoot(t)
	r1 := openPinned(t, root)
	dir := r1.Takeover().Dir
	if filepath.Dir(dir) != root {
		t.Fatalf("pin dir %s is not below %s", dir, root)
	}
	g := newCgroup(t)
	if err := r1.Track(g.ID, bpf.StartExec); err != nil {
		t.Fatal(err)
	}
	runIn(t, g, "/bin/sync")
	ids := r1.ProgramIDs()
	if err := r1.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"maps/tracked", "maps/records", "maps/slot_counters", "links/sys_enter", "links/sched_process_exec"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("not pinned while recording: %v", err)
		}
	}
	// Nobody holds the programs but their pinned links.
	wl := workload.Build(t, t.TempDir(), workload.Dynamic)
	runIn(t, g, wl, "calls")

	start := time.Now()
	r2 := openPinned(t, root)
	took := time.Since(start)
	tk := r2.Takeover()
	if !slices.Equal(tk.Tracked, []uint64{g.ID}) || len(tk.Lost) > 0 {
		t.Fatalf("takeover: %+v, want cgroup %d", tk, g.ID)
	}
	t.Logf("takeover (load over the pins) took %v", took)
	if !r2.Attached() {
		t.Error("not attached after the takeover")
	}
	runIn(t, g, "/bin/sync") // the new recorder's own calls to its links arrive too
	rec, err := r2.Read(g.ID)
	if err != nil {
		t.Fatal(err)
	}
	native, _, _, err := profile.NativeArches(runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := profile.TableFor(native)
	if err != nil {
		t.Fatal(err)
	}
	got := names(t, tab, rec.Syscalls[bpf.Native])
	wantAll(t, "after the takeover", got)
	if !slices.Contains(got, "sync") {
		t.Errorf("the call made before the first recorder closed is missing: %v", got)
	}
	ids = append(ids, r2.ProgramIDs()...)
	if err := r2.Untrack(g.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "links")); err == nil {
		t.Error("links still pinned with nothing tracked")
	}
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root); err == nil {
		t.Errorf("%s left after Close with nothing tracked", root)
	}
	if left := bpf.LoadedPrograms(ids, 5*time.Second); len(left) > 0 {
		t.Errorf("programs %v still loaded", left)
	}
}

// Pins with nothing tracked, and pins of another build, are removed by the next
// recorder; the latter's recordings are reported lost.
func TestStalePinsRemoved(t *testing.T) {
	root := pinRoot(t)
	r1 := openPinned(t, root)
	dir := r1.Takeover().Dir
	g := newCgroup(t)
	if err := r1.Track(g.ID, bpf.StartNow); err != nil {
		t.Fatal(err)
	}
	r1.Close() // pins stay: g is tracked
	// Another build's pins, with a cgroup tracked in them.
	other := filepath.Join(root, "recorder-0123456789abcdef")
	if err := os.MkdirAll(filepath.Join(other, "maps"), 0o700); err != nil {
		t.Fatal(err)
	}
	foreign, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Close()
	if err := foreign.Put(uint64(1), uint32(0)); err != nil {
		t.Fatal(err)
	}
	if err := foreign.Pin(filepath.Join(other, "maps", "tracked")); err != nil {
		t.Fatal(err)
	}
	tracked, err := ebpf.LoadPinnedMap(filepath.Join(dir, "maps", "tracked"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// And this build's pins with nothing tracked: their recorder died idle.
	if err := tracked.Delete(g.ID); err != nil {
		t.Fatal(err)
	}
	tracked.Close()

	r2 := openPinned(t, root)
	tk := r2.Takeover()
	if len(tk.Tracked) != 0 || !slices.Contains(tk.Stale, dir) || len(tk.Lost) != 1 {
		t.Errorf("takeover: %+v: want %s stale and %s lost", tk, dir, other)
	}
	if _, err := os.Stat(other); err == nil {
		t.Errorf("%s of another build left", other)
	}
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
}

// A pin directory that is on no bpf filesystem gets one mounted there.
func TestPinDirMounted(t *testing.T) {
	testenv.RequireRoot(t)
	root := filepath.Join(t.TempDir(), "pins")
	t.Cleanup(func() { unix.Unmount(root, unix.MNT_DETACH) })
	r := openPinned(t, root)
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil || st.Type != unix.BPF_FS_MAGIC {
		t.Errorf("%s is not a bpf filesystem (%x, %v)", root, st.Type, err)
	}
	if _, err := os.Stat(filepath.Join(r.Takeover().Dir, "maps", "tracked")); err != nil {
		t.Errorf("not pinned: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if e.Name() != "maps.debug" && e.Name() != "progs.debug" { // the bpffs's own
			t.Errorf("left in %s: %s", root, e.Name())
		}
	}
}

// BenchmarkPinning: what pinning costs the recorder, side by side with the same
// steps unpinned. Open is load to ready (with pins: and every map pinned);
// track+untrack is a container's attach and detach when it is the only one (with
// pins: and the links pinned and unpinned); takeover is Open over the pins of a
// recorder that is gone, with one cgroup tracked.
func BenchmarkPinning(b *testing.B) {
	testenv.RequireRoot(b)
	root := filepath.Join("/sys/fs/bpf", "syscage-bench-"+time.Now().Format("150405.000000"))
	root = strings.ReplaceAll(root, ".", "-")
	defer bpf.RemovePins(root)
	self, err := cgroups.Self()
	if err != nil {
		b.Fatal(err)
	}
	g, err := cgroups.Create(self, "syscage-bench")
	if err != nil {
		b.Fatal(err)
	}
	defer g.Remove()
	open := func(pinDir string) *bpf.Recorder {
		r, err := record.OpenWith(bpf.Options{PinDir: pinDir})
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	ms := func(start time.Time) float64 { return float64(time.Since(start).Microseconds()) / 1000 }
	m := map[string][]float64{}
	for round := range 20 {
		for i := range 2 {
			pinDir, name := "", "none"
			if (i+round)%2 == 1 {
				pinDir, name = root, "pinned"
			}
			start := time.Now()
			r := open(pinDir)
			m["open-"+name] = append(m["open-"+name], ms(start))
			start = time.Now()
			if err := r.Track(g.ID, bpf.StartNow); err != nil {
				b.Fatal(err)
			}
			if err := r.Untrack(g.ID); err != nil {
				b.Fatal(err)
			}
			m["track-"+name] = append(m["track-"+name], ms(start))
			r.Close()
		}
		r := open(root)
		if err := r.Track(g.ID, bpf.StartNow); err != nil {
			b.Fatal(err)
		}
		r.Close()
		start := time.Now()
		r = open(root)
		m["takeover"] = append(m["takeover"], ms(start))
		if len(r.Takeover().Tracked) != 1 {
			b.Fatalf("takeover: %+v", r.Takeover())
		}
		r.Untrack(g.ID)
		r.Close()
	}
	for name, xs := range m {
		slices.Sort(xs)
		b.ReportMetric(xs[len(xs)/2], "ms-"+name)
	}
}

// With KeepLoaded, a recorder closed with nothing tracked leaves its programs
// and maps pinned and attached to nothing; the next one loads nothing, records
// with them, and a recorder without KeepLoaded frees them.
func TestKeptProgramsReused(t *testing.T) {
	root := pinRoot(t)
	open := func(keep bool) *bpf.Recorder {
		t.Helper()
		r, err := record.OpenWith(bpf.Options{PinDir: root, KeepLoaded: keep, ReportRefused: true})
		if errors.Is(err, bpf.ErrNotSupported) || errors.Is(err, bpf.ErrPermission) {
			testenv.Unavailable(t, "%v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	g := newCgroup(t)
	r1 := open(true)
	dir := r1.Takeover().Dir
	if r1.Reused() {
		t.Error("the first recorder reused programs: none were kept")
	}
	// Exact refusals load sys_exit, which is kept too.
	if err := r1.TrackWith(g.ID, bpf.TrackOptions{Start: bpf.StartNow, ExactRefusals: true}); err != nil {
		t.Fatal(err)
	}
	if err := r1.Untrack(g.ID); err != nil {
		t.Fatal(err)
	}
	ids := r1.ProgramIDs()
	if err := r1.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"progs/sys_enter", "progs/sched_process_exec", "progs/sys_exit", "progs/rodata", "maps/tracked", "maps/records"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("not kept: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "links")); err == nil {
		t.Error("links pinned with nothing tracked: the kept programs are attached")
	}

	r2 := open(true)
	if !r2.Reused() {
		t.Fatal("the second recorder loaded the programs again")
	}
	if r2.Attached() {
		t.Error("attached with nothing tracked")
	}
	if got := r2.ProgramIDs(); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(ids))) {
		t.Errorf("programs %v, want the kept %v", got, ids)
	}
	// It records with them, twice (the generation goes on from the first's).
	for range 2 {
		if err := r2.Track(g.ID, bpf.StartExec); err != nil {
			t.Fatal(err)
		}
		runIn(t, g, "/bin/sync")
		rec, err := r2.Read(g.ID)
		if err != nil {
			t.Fatal(err)
		}
		native, _, _, err := profile.NativeArches(runtime.GOARCH)
		if err != nil {
			t.Fatal(err)
		}
		tab, err := profile.TableFor(native)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(t, tab, rec.Syscalls[bpf.Native]); !slices.Contains(got, "sync") || !slices.Contains(got, "execve") {
			t.Errorf("recorded with the kept programs: %v, want execve and sync", got)
		}
		if err := r2.Untrack(g.ID); err != nil {
			t.Fatal(err)
		}
	}
	// Closed (or dead) while it records: the next takes the recording over, with
	// the same kept programs.
	if err := r2.Track(g.ID, bpf.StartNow); err != nil {
		t.Fatal(err)
	}
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	r2 = open(true)
	if tk := r2.Takeover(); !r2.Reused() || !slices.Equal(tk.Tracked, []uint64{g.ID}) || !r2.Attached() {
		t.Errorf("takeover over kept programs: reused %v, attached %v, %+v", r2.Reused(), r2.Attached(), tk)
	}
	if err := r2.Untrack(g.ID); err != nil {
		t.Fatal(err)
	}
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}

	// Without KeepLoaded the kept programs go, and the rest with Close.
	r3 := open(false)
	if r3.Reused() {
		t.Error("reused kept programs without KeepLoaded")
	}
	if _, err := os.Stat(filepath.Join(dir, "progs")); err == nil {
		t.Error("kept programs still pinned under a recorder without KeepLoaded")
	}
	ids = append(ids, r3.ProgramIDs()...)
	if err := r3.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root); err == nil {
		t.Errorf("%s left after Close with nothing tracked", root)
	}
	if left := bpf.LoadedPrograms(ids, 5*time.Second); len(left) > 0 {
		t.Errorf("programs %v still loaded", left)
	}
}

// With DetachAfter, the programs stay attached that long after the last cgroup
// goes, for the next one to be tracked without attaching again, and are then
// detached, their link pins removed.
func TestDetachAfter(t *testing.T) {
	root := pinRoot(t)
	r, err := record.OpenWith(bpf.Options{PinDir: root, DetachAfter: 300 * time.Millisecond})
	if errors.Is(err, bpf.ErrNotSupported) || errors.Is(err, bpf.ErrPermission) {
		testenv.Unavailable(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dir := r.Takeover().Dir
	g := newCgroup(t)
	for range 2 {
		if err := r.Track(g.ID, bpf.StartNow); err != nil {
			t.Fatal(err)
		}
		if err := r.Untrack(g.ID); err != nil {
			t.Fatal(err)
		}
		if !r.Attached() {
			t.Fatal("detached at once")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.Attached() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if r.Attached() {
		t.Fatal("still attached 5s after the last cgroup went")
	}
	if _, err := os.Stat(filepath.Join(dir, "links")); err == nil {
		t.Error("links still pinned once detached")
	}
}
