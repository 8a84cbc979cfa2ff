package profile

import (
	"bytes"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func randomArgsProfile(t testing.TB, r *rand.Rand) *specs.LinuxSeccomp {
	t.Helper()
	tab, _ := TableFor(specs.ArchX86_64)
	rec := Recorded{}
	args := Args{specs.ArchX86_64: {}}
	for _, s := range ArgSpecs {
		if r.IntN(2) == 0 {
			continue
		}
		nr, ok := tab.Number(s.Name)
		if !ok {
			continue
		}
		rec[specs.ArchX86_64] = append(rec[specs.ArchX86_64], nr)
		av := ArgValues{Any: r.IntN(8) == 0}
		for range 1 + r.IntN(3) {
			av.Values = append(av.Values, uint64(r.IntN(5))<<32|uint64(r.IntN(12))&s.Mask0)
		}
		args[specs.ArchX86_64][s.Name] = av
	}
	for _, n := range []string{"read", "write", "openat"} {
		if r.IntN(2) == 0 {
			nr, _ := tab.Number(n)
			rec[specs.ArchX86_64] = append(rec[specs.ArchX86_64], nr)
		}
	}
	b, err := FromRecorded(rec, Options{Args: args})
	if err != nil {
		t.Fatal(err)
	}
	return b.Profile
}

func mergeBytes(t *testing.T, ps ...*specs.LinuxSeccomp) []byte {
	t.Helper()
	var in []Named
	for _, p := range ps {
		in = append(in, Named{Name: "p", Profile: p})
	}
	m, err := Merge(in...)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Merging profiles with argument rules is commutative, associative and
// idempotent, byte for byte: a normal form whatever the order of the runs.
func TestMergeArgsNormalForm(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	parse := func(b []byte) *specs.LinuxSeccomp {
		p, err := Parse("merged", b)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for i := range 300 {
		a, b, c := randomArgsProfile(t, r), randomArgsProfile(t, r), randomArgsProfile(t, r)
		ab, ba := mergeBytes(t, a, b), mergeBytes(t, b, a)
		if !bytes.Equal(ab, ba) {
			t.Fatalf("case %d: merge(a, b) != merge(b, a):\n%s\n%s", i, ab, ba)
		}
		left := mergeBytes(t, parse(ab), c)
		right := mergeBytes(t, a, parse(mergeBytes(t, b, c)))
		if !bytes.Equal(left, right) {
			t.Fatalf("case %d: merge(merge(a, b), c) != merge(a, merge(b, c)):\n%s\n%s", i, left, right)
		}
		if aa := mergeBytes(t, a, a); !bytes.Equal(aa, mergeBytes(t, a)) {
			t.Fatalf("case %d: merge(a, a) != merge(a)", i)
		}
		if again := mergeBytes(t, parse(ab)); !bytes.Equal(again, ab) {
			t.Fatalf("case %d: merging a merged profile changes it", i)
		}
	}
}

func TestClipJoins(t *testing.T) {
	cond := func(idx uint, op specs.LinuxSeccompOperator, v, v2 uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: idx, Op: op, Value: v, ValueTwo: v2}
	}
	base := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{cond(0, specs.OpMaskedEqual, CloneNamespaces, 0)}},
		{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{cond(0, specs.OpLessThan, 3, 0)}},
		{Names: []string{"read"}, Action: specs.ActAllow},
	}}
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"clone", "socket", "read", "mount"}, Action: specs.ActAllow},
	}}
	got, dropped, err := Clip("p", p, "base", base)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Marshal(got)
	want := `{
  "defaultAction": "SCMP_ACT_ERRNO",
  "syscalls": [
    {
      "names": [
        "read"
      ],
      "action": "SCMP_ACT_ALLOW"
    },
    {
      "names": [
        "clone"
      ],
      "action": "SCMP_ACT_ALLOW",
      "args": [
        {
          "index": 0,
          "value": 2114060288,
          "op": "SCMP_CMP_MASKED_EQ"
        }
      ]
    },
    {
      "names": [
        "socket"
      ],
      "action": "SCMP_ACT_ALLOW",
      "args": [
        {
          "index": 0,
          "value": 0,
          "op": "SCMP_CMP_EQ"
        }
      ]
    },
    {
      "names": [
        "socket"
      ],
      "action": "SCMP_ACT_ALLOW",
      "args": [
        {
          "index": 0,
          "value": 1,
          "op": "SCMP_CMP_EQ"
        }
      ]
    },
    {
      "names": [
        "socket"
      ],
      "action": "SCMP_ACT_ALLOW",
      "args": [
        {
          "index": 0,
          "value": 2,
          "op": "SCMP_CMP_EQ"
        }
      ]
    }
  ]
}
`
	if string(b) != want {
		t.Errorf("clipped:\n%s\nwant:\n%s", b, want)
	}
	if len(dropped) != 1 || dropped[0].String() != "mount(any arguments)" {
		t.Errorf("dropped %v, want mount(any arguments)", dropped)
	}
	if _, _, err := Clip("p", p, "base", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}); err == nil {
		t.Error("a baseline that allows by default was taken")
	}
}

// shippedBaselines are the x86_64 defaults syscage ships, by file name.
func shippedBaselines(t testing.TB) map[string]*specs.LinuxSeccomp {
	t.Helper()
	out := map[string]*specs.LinuxSeccomp{}
	for _, file := range []string{"containerd-default-x86_64.json", "docker-default-x86_64.json"} {
		data, err := os.ReadFile(filepath.Join("..", "profiles", file))
		if err != nil {
			t.Fatal(err)
		}
		if out[file], err = Parse(file, data); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// Clipping a clipped profile changes nothing: the hook clips a recording once,
// and again only when it merges it with an earlier profile.
func TestClipIdempotent(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	bases := shippedBaselines(t)
	for _, file := range slices.Sorted(maps.Keys(bases)) {
		base := bases[file]
		for i := range 200 {
			once, _, err := Clip("p", randomArgsProfile(t, r), file, base)
			if err != nil {
				t.Fatal(err)
			}
			twice, dropped, err := Clip("p", once, file, base)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := Marshal(once)
			b, _ := Marshal(twice)
			if !bytes.Equal(a, b) || len(dropped) > 0 {
				t.Fatalf("case %d, %s: clipping again changed the profile (dropped %v):\n%s\n%s", i, file, dropped, a, b)
			}
		}
	}
}

// A baseline prepared once clips every profile as a fresh Clip does, however many
// it has clipped before: clipping reads its index, never changes it.
func TestPreparedBaselineClipsAsClip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	bases := shippedBaselines(t)
	for _, file := range slices.Sorted(maps.Keys(bases)) {
		base := bases[file]
		prepared, err := NewBaseline(file, base)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 200 {
			p := randomArgsProfile(t, r)
			want, wantDropped, err := Clip("p", p, file, base)
			if err != nil {
				t.Fatal(err)
			}
			got, gotDropped, err := prepared.Clip("p", p)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := Marshal(want)
			b, _ := Marshal(got)
			if !bytes.Equal(a, b) || len(wantDropped) != len(gotDropped) {
				t.Fatalf("case %d, %s: the prepared baseline clipped otherwise (dropped %v, %v):\n%s\n%s", i, file, wantDropped, gotDropped, a, b)
			}
		}
	}
	if _, err := NewBaseline("open", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}); err == nil {
		t.Error("a baseline that allows by default was prepared")
	}
}

// BenchmarkClip: clipping a recorded profile to containerd's default, indexing
// the baseline each time (Clip) and once (a prepared Baseline, as the agent does).
func BenchmarkClip(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("..", "profiles", "containerd-default-x86_64.json"))
	if err != nil {
		b.Fatal(err)
	}
	base, err := Parse("containerd", data)
	if err != nil {
		b.Fatal(err)
	}
	p := randomArgsProfile(b, rand.New(rand.NewPCG(1, 2)))
	prepared, err := NewBaseline("containerd", base)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fresh", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := Clip("p", p, "containerd", base); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("prepared", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := prepared.Clip("p", p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
