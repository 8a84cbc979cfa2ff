package profile

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var update = flag.Bool("update", false, "rewrite golden files")

func uintp(v uint) *uint { return &v }

// baselineOn is the part of Baseline that arch has a number for.
func baselineOn(t *testing.T, arch specs.Arch) []string {
	t.Helper()
	tab, err := TableFor(arch)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, name := range AlwaysAllowed {
		if _, ok := tab.Number(name); ok {
			out = append(out, name)
		}
	}
	return out
}

func sortedNames(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestFromRecorded(t *testing.T) {
	x8664Base := baselineOn(t, specs.ArchX86_64)
	x86Base := baselineOn(t, specs.ArchX86)
	allow := func(names ...string) []specs.LinuxSyscall {
		return []specs.LinuxSyscall{{Names: names, Action: specs.ActAllow}}
	}
	tests := []struct {
		name        string
		rec         Recorded
		opts        Options
		want        *specs.LinuxSeccomp
		wantUnnamed []Unnamed
	}{
		{
			name: "x86_64 nr 5 is fstat",
			rec:  Recorded{specs.ArchX86_64: {5}},
			opts: Options{Strict: true},
			want: &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1),
				Architectures: []specs.Arch{specs.ArchX86_64},
				Syscalls:      allow("fstat"),
			},
		},
		{
			name: "x86 compat nr 5 is open",
			rec:  Recorded{specs.ArchX86: {5}},
			opts: Options{Strict: true},
			want: &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1),
				Architectures: []specs.Arch{specs.ArchX86},
				Syscalls:      allow("open"),
			},
		},
		{
			name: "each arch named from its own table",
			rec:  Recorded{specs.ArchX86: {5, 3}, specs.ArchX86_64: {5, 0}},
			opts: Options{Strict: true},
			want: &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1),
				Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
				Syscalls:      allow("fstat", "open", "read"),
			},
		},
		{
			name: "arches in fixed order, empty ones left out",
			rec: Recorded{
				specs.ArchARM: {3}, specs.ArchAARCH64: {63}, specs.ArchX86: {3},
				specs.ArchX86_64: {0}, specs.ArchX32: {}, specs.ArchS390X: nil,
			},
			opts: Options{Strict: true},
			want: &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1),
				Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchAARCH64, specs.ArchARM},
				Syscalls:      allow("read"),
			},
		},
		{
			name: "unnamed numbers returned, not named",
			rec:  Recorded{specs.ArchX86_64: {0, 999, -1}, specs.ArchX86: {5, 100000}},
			opts: Options{Strict: true},
			want: &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1),
				Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
				Syscalls:      allow("open", "read"),
			},
			wantUnnamed: []Unnamed{
				{specs.ArchX86_64, 999}, {specs.ArchX86_64, -1}, {specs.ArchX86, 100000},
			},
		},
		{
			name: "only unnamed numbers still list the arch and its baseline",
			rec:  Recorded{specs.ArchX86_64: {999}},
			want: &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1),
				Architectures: []specs.Arch{specs.ArchX86_64},
				Syscalls:      allow(x8664Base...),
			},
			wantUnnamed: []Unnamed{{specs.ArchX86_64, 999}},
		},
		{
			name: "baseline of native only has no sigreturn",
			rec:  Recorded{specs.ArchX86_64: {0, 1}},
			want: &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1),
				Architectures: []specs.Arch{specs.ArchX86_64},
				Syscalls:      allow(sortedNames(x8664Base, []string{"read", "write"})...),
			},
		},
		{
			name: "baseline with compat has sigreturn",
			rec:  Recorded{specs.ArchX86_64: {0}, specs.ArchX86: {4}},
			want: &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1),
				Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
				Syscalls:      allow(sortedNames(x8664Base, x86Base, []string{"read", "write"})...),
			},
		},
		{
			name: "no baseline",
			rec:  Recorded{specs.ArchX86_64: {0}, specs.ArchX86: {4}},
			opts: Options{Strict: true},
			want: &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1),
				Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
				Syscalls:      allow("read", "write"),
			},
		},
		{
			name: "duplicates named once",
			rec:  Recorded{specs.ArchX86_64: {0, 0, 60}, specs.ArchX86: {1, 3}},
			want: &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1),
				Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
				Syscalls:      allow(sortedNames(x8664Base, x86Base, []string{"read"})...),
			},
		},
		{
			name: "custom errno",
			rec:  Recorded{specs.ArchX86_64: {0}},
			opts: Options{DefaultAction: specs.ActErrno, DefaultErrnoRet: 38, Strict: true},
			want: &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(38),
				Architectures: []specs.Arch{specs.ArchX86_64},
				Syscalls:      allow("read"),
			},
		},
		{
			name: "kill default has no errno",
			rec:  Recorded{specs.ArchX86_64: {0}},
			opts: Options{DefaultAction: specs.ActKillProcess, DefaultErrnoRet: 13, Strict: true},
			want: &specs.LinuxSeccomp{
				DefaultAction: specs.ActKillProcess,
				Architectures: []specs.Arch{specs.ArchX86_64},
				Syscalls:      allow("read"),
			},
		},
		{
			name: "log default has no errno",
			rec:  Recorded{specs.ArchX86_64: {0}},
			opts: Options{DefaultAction: specs.ActLog, Strict: true},
			want: &specs.LinuxSeccomp{
				DefaultAction: specs.ActLog,
				Architectures: []specs.Arch{specs.ArchX86_64},
				Syscalls:      allow("read"),
			},
		},
		{
			name: "empty recording has no syscalls rule",
			rec:  Recorded{},
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1)},
		},
		{
			name: "nil recording has no syscalls rule",
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1)},
		},
		{
			name: "arches with no numbers are not listed",
			rec:  Recorded{specs.ArchX86_64: {}, specs.ArchX86: nil},
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Map order is random: build several times so an order leak shows.
			for range 20 {
				got, unnamed, err := fromRecorded(tt.rec, tt.opts)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Fatalf("profile (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.wantUnnamed, unnamed); diff != "" {
					t.Fatalf("unnamed (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestFromRecordedUnknownArch(t *testing.T) {
	_, _, err := fromRecorded(Recorded{specs.ArchX86_64: {0}, "SCMP_ARCH_PDP11": {1}}, Options{})
	if err == nil {
		t.Fatal("FromRecorded with an unknown arch succeeded")
	}
	if !strings.Contains(err.Error(), "SCMP_ARCH_PDP11") {
		t.Errorf("error %q does not name the arch", err)
	}
}

func TestUnnamedString(t *testing.T) {
	if got, want := (Unnamed{specs.ArchX86, 999}).String(), "SCMP_ARCH_X86:999"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// goldenInput is testdata/<case>.input.json: a recording and the options to build it with.
type goldenInput struct {
	Recorded        Recorded                 `json:"recorded"`
	DefaultAction   specs.LinuxSeccompAction `json:"defaultAction,omitempty"`
	DefaultErrnoRet uint                     `json:"defaultErrnoRet,omitempty"`
	NoBaseline      bool                     `json:"noBaseline,omitempty"`
	// WantUnnamed are the numbers FromRecorded must report as unnamed ("ARCH:nr").
	WantUnnamed []string `json:"wantUnnamed,omitempty"`
}

func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.input.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) < 3 {
		t.Fatalf("found %d golden inputs in testdata, want at least 3", len(inputs))
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".input.json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			var gi goldenInput
			if err := dec.Decode(&gi); err != nil {
				t.Fatalf("%s: %v", in, err)
			}
			p, unnamed, err := fromRecorded(gi.Recorded, Options{
				DefaultAction:   gi.DefaultAction,
				DefaultErrnoRet: gi.DefaultErrnoRet,
				Strict:          gi.NoBaseline,
			})
			if err != nil {
				t.Fatal(err)
			}
			var gotUnnamed []string
			for _, u := range unnamed {
				gotUnnamed = append(gotUnnamed, u.String())
			}
			if diff := cmp.Diff(gi.WantUnnamed, gotUnnamed); diff != "" {
				t.Errorf("unnamed (-want +got):\n%s", diff)
			}
			got, err := Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./profile -run TestGolden -update)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s is stale (-want +got):\n%s", golden, diff)
			}
			checkStable(t, golden, want)
		})
	}
}

// checkStable re-loads a profile we wrote and checks it is valid and byte-stable:
// sorted names, 2-space indent, one trailing newline, and Marshal(Parse(data)) == data.
func checkStable(t *testing.T, name string, data []byte) {
	t.Helper()
	p, err := Parse(name, data)
	if err != nil {
		t.Fatalf("re-loading %s: %v", name, err)
	}
	again, err := Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(data), string(again)); diff != "" {
		t.Errorf("%s: Marshal(Parse(x)) != x (-x +got):\n%s", name, diff)
	}
	if !bytes.HasSuffix(data, []byte("}\n")) || bytes.HasSuffix(data, []byte("\n\n")) {
		t.Errorf("%s: does not end in exactly one newline", name)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, data, "", "  "); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bytes.TrimSpace(indented.Bytes()), bytes.TrimSpace(data)) {
		t.Errorf("%s: not indented with 2 spaces", name)
	}
	for i, sc := range p.Syscalls {
		if !slices.IsSorted(sc.Names) {
			t.Errorf("%s: syscalls[%d].names not sorted: %v", name, i, sc.Names)
		}
	}
	if got := sortArches(slices.Clone(p.Architectures)); !slices.Equal(got, p.Architectures) {
		t.Errorf("%s: architectures %v, want order %v", name, p.Architectures, got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr []string
	}{
		{
			name:    "empty file",
			in:      " \n",
			wantErr: []string{"p.json: empty file: not a seccomp profile"},
		},
		{
			name:    "truncated",
			in:      `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [`,
			wantErr: []string{"p.json: truncated JSON"},
		},
		{
			name:    "invalid JSON",
			in:      `{"defaultAction": }`,
			wantErr: []string{"p.json: invalid JSON at byte 19"},
		},
		{
			name: "docker profile",
			in: `{"defaultAction":"SCMP_ACT_ERRNO",
				"archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]}],
				"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}`,
			wantErr: []string{"p.json: not an OCI seccomp profile", `"archMap"`, "must be converted first"},
		},
		{
			name: "docker includes",
			in: `{"defaultAction":"SCMP_ACT_ERRNO",
				"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}}]}`,
			wantErr: []string{"not an OCI seccomp profile", `"includes"`, "must be converted first"},
		},
		{
			name:    "missing defaultAction",
			in:      `{"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}`,
			wantErr: []string{"p.json: defaultAction is missing"},
		},
		{
			name:    "empty names",
			in:      `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"},{"names":[],"action":"SCMP_ACT_ALLOW"}]}`,
			wantErr: []string{"p.json: syscalls[1].names is empty"},
		},
		{
			name:    "null names",
			in:      `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"action":"SCMP_ACT_ALLOW"}]}`,
			wantErr: []string{"p.json: syscalls[0].names is empty"},
		},
		{
			name:    "missing action",
			in:      `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"]}]}`,
			wantErr: []string{"p.json: syscalls[0].action is missing"},
		},
		{
			name:    "trailing object",
			in:      `{"defaultAction":"SCMP_ACT_ERRNO"} {}`,
			wantErr: []string{"p.json: trailing data after the profile"},
		},
		{
			name:    "trailing brace",
			in:      `{"defaultAction":"SCMP_ACT_ERRNO"}}`,
			wantErr: []string{"p.json: trailing data after the profile"},
		},
		{
			name:    "trailing bracket",
			in:      "{\"defaultAction\":\"SCMP_ACT_ERRNO\"}\n]\n",
			wantErr: []string{"p.json: trailing data after the profile"},
		},
		{
			name:    "wrong type",
			in:      `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":-1}`,
			wantErr: []string{"p.json: ", "defaultErrnoRet"},
		},
		{
			name:    "not an object",
			in:      `["SCMP_ACT_ERRNO"]`,
			wantErr: []string{"p.json: "},
		},
		{
			name:    "truncated",
			in:      `{"defaultAction":`,
			wantErr: []string{"p.json: "},
		},
		{
			name:    "empty",
			in:      ``,
			wantErr: []string{"p.json: "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("p.json", []byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", p)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *specs.LinuxSeccomp
	}{
		{
			name: "minimal",
			in:   `{"defaultAction":"SCMP_ACT_ALLOW"}`,
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow},
		},
		{
			name: "trailing whitespace",
			in:   "{\"defaultAction\":\"SCMP_ACT_ALLOW\"}\n\n \t",
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow},
		},
		{
			name: "every field",
			in: `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,
				"architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
				"flags":["SECCOMP_FILTER_FLAG_LOG"],
				"listenerPath":"/run/seccomp.sock","listenerMetadata":"m",
				"syscalls":[
					{"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
					{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"valueTwo":0,"op":"SCMP_CMP_EQ"}]},
					{"names":["ptrace"],"action":"SCMP_ACT_ERRNO","errnoRet":1}
				]}`,
			want: &specs.LinuxSeccomp{
				DefaultAction:    specs.ActErrno,
				DefaultErrnoRet:  uintp(38),
				Architectures:    []specs.Arch{specs.ArchX86_64, specs.ArchX86},
				Flags:            []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
				ListenerPath:     "/run/seccomp.sock",
				ListenerMetadata: "m",
				Syscalls: []specs.LinuxSyscall{
					{Names: []string{"read", "write"}, Action: specs.ActAllow},
					{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}},
					{Names: []string{"ptrace"}, Action: specs.ActErrno, ErrnoRet: uintp(1)},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("p.json", []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestMarshalRoundTrip checks Marshal(Parse(x)) == x for profiles syscage writes.
func TestMarshalRoundTrip(t *testing.T) {
	rec := Recorded{specs.ArchX86_64: {0, 1, 2, 3, 59, 231}, specs.ArchX86: {1, 3, 4, 5, 11, 252}}
	fresh, _, err := fromRecorded(rec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	kill, _, err := fromRecorded(rec, Options{DefaultAction: specs.ActKillProcess, Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	merged, err := Merge(
		Named{"a", fresh},
		Named{"b", &specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1),
			Architectures: []specs.Arch{specs.ArchAARCH64},
			Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"ptrace"}, Action: specs.ActErrno, ErrnoRet: uintp(1)},
				{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, Op: specs.OpEqualTo}}},
			},
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		p    *specs.LinuxSeccomp
	}{
		{"FromRecorded", fresh},
		{"FromRecorded kill", kill},
		{"Merge", merged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := Marshal(tt.p)
			if err != nil {
				t.Fatal(err)
			}
			checkStable(t, tt.name, data)
		})
	}
}

func TestMarshalNoHTMLEscape(t *testing.T) {
	data, err := Marshal(&specs.LinuxSeccomp{DefaultAction: specs.ActNotify, ListenerMetadata: "a<b>&c"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"a<b>&c"`)) {
		t.Errorf("Marshal escaped HTML characters:\n%s", data)
	}
}

// equateProfiles treats a missing list and an empty one alike: Marshal omits both.
var equateProfiles = cmpopts.EquateEmpty()

func FuzzParse(f *testing.F) {
	seeds := []string{
		`{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]}`,
		`{"defaultAction":"SCMP_ACT_KILL_PROCESS","flags":["SECCOMP_FILTER_FLAG_LOG"],"syscalls":[{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"valueTwo":0,"op":"SCMP_CMP_EQ"}]},{"names":["ptrace"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}`,
		`{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/run/s.sock","listenerMetadata":"x","architectures":[],"syscalls":[]}`,
		`{"defaultAction":"SCMP_ACT_ERRNO","archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}`,
		`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":[],"action":"SCMP_ACT_ALLOW"}]}`,
		`{"defaultAction":"SCMP_ACT_ERRNO"}}`,
		`{"defaultAction": }`,
		`{"syscalls":null}`,
		``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	goldens, _ := filepath.Glob(filepath.Join("testdata", "*.golden.json"))
	for _, g := range goldens {
		if b, err := os.ReadFile(g); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.json", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.json: ") {
				t.Errorf("error %q does not start with the profile's name", err)
			}
			return
		}
		out, err := Marshal(p)
		if err != nil {
			t.Fatalf("Marshal of an accepted profile: %v", err)
		}
		again, err := Parse("again.json", out)
		if err != nil {
			t.Fatalf("re-parsing our own output: %v\n%s", err, out)
		}
		if diff := cmp.Diff(p, again, equateProfiles); diff != "" {
			t.Fatalf("Parse(Marshal(p)) != p (-p +again):\n%s", diff)
		}
		out2, err := Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("Marshal not stable:\n%s\n---\n%s", out, out2)
		}
	})
}

// fromRecorded is FromRecorded as the tests of names alone read it.
func fromRecorded(rec Recorded, opts Options) (*specs.LinuxSeccomp, []Unnamed, error) {
	b, err := FromRecorded(rec, opts)
	if err != nil {
		return nil, nil, err
	}
	return b.Profile, b.Unnamed, nil
}
