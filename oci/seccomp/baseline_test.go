package seccomp

import (
	"math/rand/v2"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/syscage/syscage/profile"
	"github.com/syscage/syscage/profiles"
)

// witnesses are argument values worth trying on a syscall: every value a rule of
// either profile names, its neighbours, with high bits set, and a few random ones.
func witnesses(r *rand.Rand, ps ...*specs.LinuxSeccomp) [6][]uint64 {
	var w [6][]uint64
	for i := range w {
		w[i] = []uint64{0, 1, 0xffffffff, 0x100000000, ^uint64(0)}
	}
	for _, p := range ps {
		for _, sc := range p.Syscalls {
			for _, a := range sc.Args {
				for _, v := range []uint64{a.Value, a.ValueTwo, a.ValueTwo | ^a.Value, a.Value - 1, a.Value + 1, a.Value | 1<<32} {
					w[a.Index] = append(w[a.Index], v)
				}
			}
		}
	}
	for i := range w {
		for range 4 {
			w[i] = append(w[i], r.Uint64(), uint64(r.Uint32()), uint64(r.IntN(64)))
		}
	}
	return w
}

// randomRecording draws what a recorder could see: names, and for the curated
// syscalls, values from the benign, the hostile and the random.
func randomRecording(r *rand.Rand, arches []specs.Arch) (profile.Recorded, profile.Args) {
	hostile := []uint64{0, 1, 2, 8, 10, 16, 17, 38, 40, 0x5401, 0x5412, 0x100005412, 0xffffffff, 0x20008,
		profile.CloneNewUser, profile.CloneNewNS | profile.CloneNewNet, 6, 4, 2, 0x1_0000_0002}
	rec, args := profile.Recorded{}, profile.Args{}
	for _, arch := range arches {
		tab, _ := profile.TableFor(arch)
		names := tab.Names()
		args[arch] = map[string]profile.ArgValues{}
		pick := func(name string) {
			if nr, ok := tab.Number(name); ok {
				rec[arch] = append(rec[arch], nr)
			}
		}
		for range 20 + r.IntN(40) {
			pick(names[r.IntN(len(names))])
		}
		for _, s := range profile.ArgSpecs {
			if r.IntN(3) == 0 {
				continue
			}
			if _, ok := tab.Number(s.Name); !ok {
				continue
			}
			pick(s.Name)
			av := profile.ArgValues{Any: r.IntN(10) == 0}
			for range 1 + r.IntN(4) {
				v := hostile[r.IntN(len(hostile))]
				if r.IntN(4) == 0 {
					v = r.Uint64()
				}
				if s.Kind == profile.ArgPair {
					v = v&0xffffffff | uint64(r.IntN(6))<<32
				}
				av.Values = append(av.Values, v&s.Mask0)
			}
			args[arch][s.Name] = av
		}
		slices.Sort(rec[arch])
		rec[arch] = slices.Compact(rec[arch])
	}
	return rec, args
}

func allowed(ret uint32) bool {
	return ret == unix.SECCOMP_RET_ALLOW || ret == unix.SECCOMP_RET_LOG
}

// A recorded profile never allows what its baseline refuses: over random
// recordings (native and i386, benign, hostile and random values) and random
// calls, evaluated on the filters syscage compiles with runc's semantics.
func TestRecordedNeverWiderThanBaseline(t *testing.T) {
	arches := []specs.Arch{specs.ArchX86_64, specs.ArchX86}
	r := rand.New(rand.NewPCG(1, 2))
	for _, name := range []string{"containerd", "docker"} {
		t.Run(name, func(t *testing.T) {
			baseName, base, err := profiles.BaselineFor(name, "amd64")
			if err != nil {
				t.Fatal(err)
			}
			bf, err := Compile(base, Options{Goarch: "amd64"})
			if err != nil {
				t.Fatal(err)
			}
			prepared, err := profile.NewBaseline(baseName, base)
			if err != nil {
				t.Fatal(err)
			}
			calls, widened := 0, 0
			for i := range 200 {
				rec, args := randomRecording(r, arches)
				built, err := profile.FromRecorded(rec, profile.Options{Args: args, Baseline: prepared})
				if err != nil {
					t.Fatal(err)
				}
				pf, err := Compile(built.Profile, Options{Goarch: "amd64"})
				if err != nil {
					t.Fatalf("recording %d: compiling the recorded profile: %v", i, err)
				}
				w := witnesses(r, base, built.Profile)
				for _, arch := range arches {
					tab, _ := profile.TableFor(arch)
					var names []string
					for _, sc := range built.Profile.Syscalls {
						names = append(names, sc.Names...)
					}
					for _, n := range names {
						if _, ok := tab.Number(n); !ok {
							continue
						}
						for range 30 {
							var a [6]uint64
							for k := range a {
								a[k] = w[k][r.IntN(len(w[k]))]
							}
							got, err1 := pf.Call(arch, n, a[:]...)
							want, err2 := bf.Call(arch, n, a[:]...)
							if err1 != nil || err2 != nil {
								t.Fatal(err1, err2)
							}
							calls++
							if allowed(got) && !allowed(want) {
								widened++
								if widened < 5 {
									t.Errorf("recording %d: %s %s%v allowed by the recorded profile, refused by %s", i, arch, n, a, baseName)
								}
							}
						}
					}
				}
			}
			t.Logf("%d calls, %d allowed beyond %s", calls, widened, baseName)
		})
	}
}

// What a recording saw, the profile allows, where the baseline does too.
func TestRecordedValuesAllowed(t *testing.T) {
	_, base, err := profiles.BaselineFor("containerd", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	rec := profile.Recorded{specs.ArchX86_64: {}}
	tab, _ := profile.TableFor(specs.ArchX86_64)
	for _, n := range []string{"clone", "socket", "ioctl", "personality", "mprotect", "unshare"} {
		nr, _ := tab.Number(n)
		rec[specs.ArchX86_64] = append(rec[specs.ArchX86_64], nr)
	}
	args := profile.Args{specs.ArchX86_64: {
		"clone":       {Values: []uint64{0, profile.CloneNewUser}},
		"socket":      {Values: []uint64{1 | 1<<32, 2 | 2<<32, 38 | 5<<32}},
		"ioctl":       {Values: []uint64{0x5401}},
		"personality": {Values: []uint64{0xffffffff, 0x40000}},
		"mprotect":    {Values: []uint64{0, 2}},
		"unshare":     {Values: []uint64{0x400}},
	}}
	prepared, err := profile.NewBaseline("containerd", base)
	if err != nil {
		t.Fatal(err)
	}
	built, err := profile.FromRecorded(rec, profile.Options{Args: args, Baseline: prepared})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Compile(built.Profile, Options{Goarch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		args  []uint64
		allow bool
	}{
		{"clone", []uint64{0x3d0f00}, true}, // a thread
		{"clone", []uint64{unix.CLONE_NEWUSER | 17}, false},
		{"socket", []uint64{1, 1 | unix.SOCK_CLOEXEC}, true},
		{"socket", []uint64{1, 2}, false},
		{"socket", []uint64{2, 2 | unix.SOCK_NONBLOCK}, true},
		{"socket", []uint64{38, 5}, false}, // AF_ALG: recorded, refused by the baseline
		{"socket", []uint64{10, 1}, false},
		{"ioctl", []uint64{0, 0x5401}, true},
		{"ioctl", []uint64{0, 0x5412}, false},
		{"ioctl", []uint64{0, 0x100005401}, false},
		{"personality", []uint64{0xffffffff}, true},
		{"personality", []uint64{0x40000}, false}, // recorded, refused by the baseline
		{"personality", []uint64{8}, false},
		{"mprotect", []uint64{0, 0, 1}, true},
		{"mprotect", []uint64{0, 0, 3}, true},
		{"mprotect", []uint64{0, 0, 7}, false},
		{"mprotect", []uint64{0, 0, 5}, false},
		{"unshare", []uint64{0x400}, false}, // the baseline refuses unshare
		{"clone3", nil, false},
	} {
		ret, err := f.Call(specs.ArchX86_64, c.name, c.args...)
		if err != nil {
			t.Fatal(err)
		}
		if allowed(ret) != c.allow {
			t.Errorf("%s%v: %s, want allowed=%v", c.name, c.args, Action(ret), c.allow)
		}
	}
	if ret, _ := f.Call(specs.ArchX86_64, "clone3"); ret != unix.SECCOMP_RET_ERRNO|38 {
		t.Errorf("clone3: %s, want errno 38 (ENOSYS), so that libc falls back to clone", Action(ret))
	}
	var dropped []string
	for _, d := range built.Dropped {
		dropped = append(dropped, d.String())
	}
	want := []string{"clone(CLONE_NEWUSER)", "personality(0x40000)", "socket(AF_ALG, SOCK_SEQPACKET)", "unshare(0x400)"}
	if !slices.Equal(dropped, want) {
		t.Errorf("dropped %q, want %q", dropped, want)
	}
}
