//go:build linux

package bpf_test

import (
	"slices"
	"testing"

	"github.com/syscage/syscage/bpf"
	"github.com/syscage/syscage/profile"
	"github.com/syscage/syscage/tests/workload"
)

func specIndex(t *testing.T, name string) int {
	t.Helper()
	i := slices.IndexFunc(profile.ArgSpecs, func(s profile.ArgSpec) bool { return s.Name == name })
	if i < 0 {
		t.Fatalf("no argument spec for %s", name)
	}
	return i
}

func argValues(t *testing.T, r *bpf.Recorder, id uint64, name string) bpf.ArgValues {
	t.Helper()
	rec, err := r.Read(id)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Args[bpf.Native][specIndex(t, name)]
}

// The values each spec keeps, as the kernel saw them: socket's kind without its
// flags, ioctl's request with its high bits apart, clone3's flags read from user
// memory, small values as bits.
func TestArgumentValuesRecorded(t *testing.T) {
	r, _ := openRecorder(t)
	bin := workload.BuildArgs(t, t.TempDir())
	g := newCgroup(t)
	if err := r.Track(g.ID, bpf.StartNow); err != nil {
		t.Fatal(err)
	}
	runIn(t, g, bin, "benign")
	for _, a := range []string{"unix-dgram", "tiocsti-high", "tiocsti", "clone3-newuser", "per-linux32", "mprotect-wx"} {
		runIn(t, g, bin, "attack", a)
	}
	const newUser = 0x10000000
	for _, c := range []struct {
		name string
		want []uint64
	}{
		// SOCK_STREAM|SOCK_CLOEXEC is kept as SOCK_STREAM.
		{"socket", []uint64{1 | 1<<32, 2 | 2<<32, 1 | 2<<32}},
		{"ioctl", []uint64{0x5401, 0x5412, 0x100005412}},
		{"clone3", []uint64{newUser}},
		{"personality", []uint64{8, 0xffffffff}},
		{"mprotect", []uint64{2, 6}},
	} {
		got := argValues(t, r, g.ID, c.name)
		for _, v := range c.want {
			if !slices.Contains(got.Values, v) {
				t.Errorf("%s: value %#x not recorded: %#x", c.name, v, got.Values)
			}
		}
		if got.Any {
			t.Errorf("%s: recorded as any value", c.name)
		}
	}
	if got := argValues(t, r, g.ID, "clone"); !slices.Contains(got.Values, 0) || slices.Contains(got.Values, newUser) {
		t.Errorf("clone: %#x, want 0 (fork and thread) and not CLONE_NEWUSER (that went to clone3)", got.Values)
	}
}

// More distinct values than ArgCap: the spec is recorded as any value, and the
// values of one cgroup never show in another's, nor in a slot used again.
func TestArgumentCapAndSlots(t *testing.T) {
	r, _ := openRecorder(t)
	bin := workload.BuildArgs(t, t.TempDir())
	many, few := newCgroup(t), newCgroup(t)
	for _, g := range []uint64{many.ID, few.ID} {
		if err := r.Track(g, bpf.StartNow); err != nil {
			t.Fatal(err)
		}
	}
	runIn(t, many, bin, "ioctls", "100")
	runIn(t, few, bin, "ioctls", "3")
	if got := argValues(t, r, many.ID, "ioctl"); !got.Any || len(got.Values) > bpf.ArgCap {
		t.Errorf("100 requests: any %v, %d values kept (cap %d)", got.Any, len(got.Values), bpf.ArgCap)
	}
	got := argValues(t, r, few.ID, "ioctl")
	if got.Any || !slices.Equal(got.Values, []uint64{0x10000, 0x10001, 0x10002}) {
		t.Errorf("3 requests: any %v, values %#x", got.Any, got.Values)
	}
	// The slot the first cgroup had goes to the next one, empty.
	if err := r.Untrack(many.ID); err != nil {
		t.Fatal(err)
	}
	next := newCgroup(t)
	if err := r.Track(next.ID, bpf.StartNow); err != nil {
		t.Fatal(err)
	}
	if got := argValues(t, r, next.ID, "ioctl"); got.Any || len(got.Values) > 0 {
		t.Errorf("a reused slot starts with values: any %v %#x", got.Any, got.Values)
	}
}
