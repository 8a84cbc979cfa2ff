package profile

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// recordedRun builds a profile as a recording does: the names, and the socket
// families and kinds it saw.
func recordedRun(t *testing.T, names []string, sockets ...uint64) *specs.LinuxSeccomp {
	t.Helper()
	tab, _ := TableFor(specs.ArchX86_64)
	var nrs []int
	for _, n := range names {
		nr, ok := tab.Number(n)
		if !ok {
			t.Fatalf("no number for %s", n)
		}
		nrs = append(nrs, nr)
	}
	var args Args
	if len(sockets) > 0 {
		args = Args{specs.ArchX86_64: {"socket": {Values: sockets}}}
	}
	b, err := FromRecorded(Recorded{specs.ArchX86_64: nrs}, Options{Strict: true, Args: args})
	if err != nil {
		t.Fatal(err)
	}
	return b.Profile
}

func TestCoverageCalls(t *testing.T) {
	inet := uint64(2) | uint64(1)<<32 // AF_INET, SOCK_STREAM
	p := recordedRun(t, []string{"read", "socket"}, inet)
	want := []string{"read", "socket", "socket(AF_INET, SOCK_STREAM)"}
	if diff := cmp.Diff(want, CoverageCalls(p)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

// Ten runs: every one reads, three open, one made an AF_ALG socket as well as
// the AF_INET one all sockets were; a result that already merged two runs
// brings its own counts.
func TestTally(t *testing.T) {
	inet := uint64(2) | uint64(1)<<32
	alg := uint64(38) | uint64(5)<<32
	var tl Tally
	for i := range 7 {
		names := []string{"read", "socket"}
		if i < 2 {
			names = append(names, "openat")
		}
		tl.Add(recordedRun(t, names, inet), 1, nil)
	}
	tl.Add(recordedRun(t, []string{"read", "socket", "openat"}, inet, alg), 1, nil)
	// Two runs merged already: one of them opened.
	tl.Add(recordedRun(t, []string{"read", "openat", "socket"}, inet), 2, map[string]int{"openat": 1, "gone": 1})
	if tl.Runs() != 10 {
		t.Fatalf("runs %d, want 10", tl.Runs())
	}
	c := tl.Coverage()
	want := &Coverage{Runs: 10, Calls: map[string]int{"openat": 4, "socket(AF_ALG, SOCK_SEQPACKET)": 1}}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("coverage (-want +got):\n%s", diff)
	}
	if c.Made("read") != 10 || c.Made("openat") != 4 {
		t.Errorf("made read %d, openat %d", c.Made("read"), c.Made("openat"))
	}
	if diff := cmp.Diff([]CallCount{{"socket(AF_ALG, SOCK_SEQPACKET)", 1}}, c.Rare()); diff != "" {
		t.Errorf("rare (-want +got):\n%s", diff)
	}
	// The file: byte-stable, and read back the same.
	data, err := MarshalCoverage(c)
	if err != nil {
		t.Fatal(err)
	}
	wantFile := `{
  "runs": 10,
  "calls": {
    "openat": 4,
    "socket(AF_ALG, SOCK_SEQPACKET)": 1
  }
}
`
	if string(data) != wantFile {
		t.Errorf("file:\n%s\nwant\n%s", data, wantFile)
	}
	back, err := ParseCoverage("c.json.coverage", data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, back); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
	// A profile edited since keeps the counts of the calls it still has.
	edited := recordedRun(t, []string{"read", "openat", "socket"}, inet)
	if diff := cmp.Diff(&Coverage{Runs: 10, Calls: map[string]int{"openat": 4}}, c.For(edited)); diff != "" {
		t.Errorf("for the edited profile (-want +got):\n%s", diff)
	}
	// Runs that all did the same: nothing listed.
	var same Tally
	same.Add(recordedRun(t, []string{"read"}), 3, nil)
	if got := same.Coverage(); got.Runs != 3 || got.Calls != nil {
		t.Errorf("alike runs: %+v", got)
	}
	var none Tally
	if none.Coverage() != nil {
		t.Error("coverage of nothing")
	}
}

func TestRare(t *testing.T) {
	tests := []struct {
		name string
		c    Coverage
		want []CallCount
	}{
		{"one of two is not rare", Coverage{Runs: 2, Calls: map[string]int{"a": 1}}, nil},
		{"one of three", Coverage{Runs: 3, Calls: map[string]int{"a": 1, "b": 2}}, []CallCount{{"a", 1}}},
		{"two of twenty", Coverage{Runs: 20, Calls: map[string]int{"b": 2, "a": 3, "c": 1}}, []CallCount{{"c", 1}, {"b", 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.c.Rare()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseCoverageErrors(t *testing.T) {
	tests := []struct{ data, want string }{
		{`{"runs": 0}`, "runs is 0"},
		{`{"runs": 3, "calls": {"read": 3}}`, `calls["read"] is 3: give a count from 1 to 2`},
		{`{"runs": 3, "calls": {"read": 0}}`, `calls["read"] is 0`},
		{`[`, "reading coverage"},
	}
	for _, tt := range tests {
		_, err := ParseCoverage("x.coverage", []byte(tt.data))
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "x.coverage: ") {
			t.Errorf("%s: error %v, want one with %q", tt.data, err, tt.want)
		}
	}
}

// A coverage file comes from anyone's disk: reading it never panics, and what
// it accepts writes back to what reads the same.
func FuzzParseCoverage(f *testing.F) {
	f.Add([]byte(`{"runs": 10, "calls": {"openat": 4, "socket(AF_ALG, SOCK_SEQPACKET)": 1}}`))
	f.Add([]byte(`{"runs": 1}`))
	f.Add([]byte(`{"runs": -1, "calls": {"": 0}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCoverage("f", data)
		if err != nil {
			return
		}
		out, err := MarshalCoverage(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseCoverage("f", out)
		if err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if again, _ := MarshalCoverage(back); string(again) != string(out) {
			t.Errorf("not stable:\n%s\n%s", out, again)
		}
	})
}

// benchRuns are n recorded profiles of about 80 calls each, with socket and
// ioctl values, no two alike.
func benchRuns(b *testing.B, n int) []Named {
	tab, _ := TableFor(specs.ArchX86_64)
	var out []Named
	for i := range n {
		var nrs []int
		for nr := 0; len(nrs) < 80; nr++ {
			if _, ok := tab.Name(nr); ok && (nr+i)%5 != 0 {
				nrs = append(nrs, nr)
			}
		}
		sock, _ := tab.Number("socket")
		ioctl, _ := tab.Number("ioctl")
		nrs = append(nrs, sock, ioctl)
		args := Args{specs.ArchX86_64: {
			"socket": {Values: []uint64{2 | 1<<32, 10 | 1<<32, uint64(i%7) | 2<<32}},
			"ioctl":  {Values: []uint64{0x5401, 0x5413, uint64(0x5400 + i%16)}},
		}}
		p, err := FromRecorded(Recorded{specs.ArchX86_64: nrs}, Options{Strict: true, Args: args})
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, Named{Name: "run", Profile: p.Profile})
	}
	return out
}

// What coverage adds to a merge: compare with BenchmarkMergeRuns.
func BenchmarkTallyRuns(b *testing.B) {
	in := benchRuns(b, 1000)
	b.ResetTimer()
	for b.Loop() {
		var t Tally
		for _, n := range in {
			t.Add(n.Profile, 1, nil)
		}
		t.Coverage()
	}
}

func BenchmarkMergeRuns(b *testing.B) {
	in := benchRuns(b, 1000)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Merge(in...); err != nil {
			b.Fatal(err)
		}
	}
}
