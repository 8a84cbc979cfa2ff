//go:build linux

package bpf

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/syscage/syscage/tests/testenv"
)

// fixups relocates every CO-RE relocation of the object's programs against
// target, as cilium/ebpf does when it loads them, and says what each became.
func fixups(t *testing.T, spec *ebpf.CollectionSpec, target *btf.Spec) []string {
	t.Helper()
	var out []string
	names := make([]string, 0, len(spec.Programs))
	for name := range spec.Programs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		var relos []*btf.CORERelocation
		iter := spec.Programs[name].Instructions.Iterate()
		for iter.Next() {
			if r := btf.CORERelocationMetadata(iter.Ins); r != nil {
				relos = append(relos, r)
			}
		}
		var b btf.Builder
		fs, err := btf.CORERelocate(relos, []*btf.Spec{target}, binary.LittleEndian, b.Add)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i, f := range fs {
			out = append(out, name+": "+relos[i].String()+" → "+f.String())
		}
	}
	if len(out) == 0 {
		t.Fatal("the object has no CO-RE relocation to compare")
	}
	return out
}

// TestKernelTypesRelocateAsKernel: against the running kernel, the trimmed types
// relocate every field the programs read exactly as the kernel's whole BTF does.
func TestKernelTypesRelocateAsKernel(t *testing.T) {
	if _, err := os.Stat(btfPath); err != nil {
		testenv.Unavailable(t, "no kernel BTF: %v", err)
	}
	spec, err := loadRecorder()
	if err != nil {
		t.Fatal(err)
	}
	trimmed, err := kernelTypes(btfPath, spec.Types)
	if err != nil {
		t.Fatal(err)
	}
	full, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatal(err)
	}
	got, want := fixups(t, spec, trimmed), fixups(t, spec, full)
	if !slices.Equal(got, want) {
		t.Fatalf("trimmed types relocate otherwise:\n%s\nthe kernel's BTF:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, f := range got {
		if strings.Contains(f, "poison") {
			t.Errorf("a field is missing from this kernel: %s", f)
		}
	}
	t.Logf("%d relocations agree", len(got))

	// The read stops at the first struct of each name: the kernel has no second.
	data, err := os.ReadFile(btfPath)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := parseRawBTF(data, coreStructs)
	if err != nil {
		t.Fatal(err)
	}
	indexed := len(raw.offsets)
	if err := raw.indexTo(math.MaxUint32); err != nil {
		t.Fatal(err)
	}
	for _, name := range coreStructs {
		if n := len(raw.structs[name]); n != 1 {
			t.Errorf("the kernel's BTF has %d structs %s, want 1: read them all", n, name)
		}
	}
	t.Logf("found the structs among the first %d types of %d", indexed, len(raw.offsets))
}

// TestKernelTypesBothArchitectures: each committed object relocates against the
// trimmed types of a kernel BTF laid out like its architecture's (arm64's
// registers sit in an anonymous struct within an anonymous union), as against the
// whole of that BTF. Members the programs never read are dropped; a bitfield
// and a typedef on the way are kept as CO-RE sees them.
func TestKernelTypesBothArchitectures(t *testing.T) {
	u64 := &btf.Int{Name: "long long unsigned int", Size: 8}
	u32 := &btf.Int{Name: "unsigned int", Size: 4}
	s32 := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	ulong := &btf.Typedef{Name: "ulong", Type: &btf.Int{Name: "long unsigned int", Size: 8}}
	arr := func(n uint32) *btf.Array { return &btf.Array{Index: u32, Type: u64, Nelems: n} }
	m := func(name string, off btf.Bits, typ btf.Type) btf.Member {
		return btf.Member{Name: name, Offset: off * 8, Type: typ}
	}
	thread := &btf.Struct{Name: "thread_info", Size: 24, Members: []btf.Member{
		m("flags", 0, ulong), m("syscall_work", 8, ulong), m("status", 16, u32), m("cpu", 20, u32)}}
	seccomp := &btf.Struct{Name: "seccomp", Size: 16, Members: []btf.Member{
		m("mode", 0, s32), m("filter_count", 4, &btf.Volatile{Type: s32}), m("filter", 8, &btf.Pointer{Target: &btf.Void{}})}}
	task := &btf.Struct{Name: "task_struct", Size: 4096, Members: []btf.Member{
		m("thread_info", 0, thread), m("__state", 24, u32),
		{Name: "in_execve", Offset: 28 * 8, BitfieldSize: 1, Type: u32},
		m("parent", 32, &btf.Pointer{Target: &btf.Void{}}), m("seccomp", 2048, seccomp)}}
	userRegs := &btf.Struct{Name: "user_pt_regs", Size: 272, Members: []btf.Member{
		m("regs", 0, arr(31)), m("sp", 248, u64), m("pc", 256, u64), m("pstate", 264, u64)}}
	inner := &btf.Struct{Size: 272, Members: []btf.Member{
		m("regs", 0, arr(31)), m("sp", 248, u64), m("pc", 256, u64), m("pstate", 264, u64)}}
	arm64 := &btf.Struct{Name: "pt_regs", Size: 336, Members: []btf.Member{
		m("", 0, &btf.Union{Size: 272, Members: []btf.Member{m("user_regs", 0, userRegs), m("", 0, inner)}}),
		m("orig_x0", 272, u64), m("syscallno", 280, s32), m("unused2", 284, u32)}}
	var x86Members []btf.Member
	for i, n := range []string{"r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx", "dx", "si", "di", "orig_ax", "ip"} {
		x86Members = append(x86Members, m(n, btf.Bits(8*i), ulong))
	}
	x86 := &btf.Struct{Name: "pt_regs", Size: 168, Members: x86Members}

	for _, c := range []struct {
		object string
		regs   *btf.Struct
	}{{"recorder_arm64_bpfel.o", arm64}, {"recorder_x86_bpfel.o", x86}} {
		t.Run(c.object, func(t *testing.T) {
			var b btf.Builder
			for _, typ := range []btf.Type{task, c.regs} {
				if _, err := b.Add(typ); err != nil {
					t.Fatal(err)
				}
			}
			raw, err := b.Marshal(nil, &btf.MarshalOptions{Order: binary.NativeEndian})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "vmlinux")
			if err := os.WriteFile(path, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			full, err := btf.LoadSpec(path)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := ebpf.LoadCollectionSpec(c.object)
			if err != nil {
				t.Fatal(err)
			}
			trimmed, err := kernelTypes(path, spec.Types)
			if err != nil {
				t.Fatal(err)
			}
			got, want := fixups(t, spec, trimmed), fixups(t, spec, full)
			if !slices.Equal(got, want) {
				t.Fatalf("trimmed types relocate otherwise:\n%s\nthe whole BTF:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			var kept *btf.Struct
			if err := trimmed.TypeByName("task_struct", &kept); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, m := range kept.Members {
				names = append(names, m.Name)
			}
			if !slices.Equal(names, []string{"thread_info", "seccomp"}) {
				t.Errorf("task_struct kept %v, want [thread_info seccomp]", names)
			}
		})
	}
}

// TestKernelTypesRefusesBadBTF: what is not BTF, or is cut short, is refused
// with the file named, and Open then reads the kernel's whole BTF instead.
func TestKernelTypesRefusesBadBTF(t *testing.T) {
	spec, err := loadRecorder()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"empty":     nil,
		"not-btf":   []byte(strings.Repeat("x", 64)),
		"truncated": {0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 100, 0, 0, 0, 1, 0, 0, 0},
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := kernelTypes(path, spec.Types); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: got %v, want an error naming %s", name, err, path)
		}
	}

	// BTF that loops, on a member the programs read, is refused, not followed.
	loop := &btf.Typedef{Name: "loop"}
	loop.Type = loop
	var b btf.Builder
	for _, typ := range []btf.Type{
		&btf.Struct{Name: "task_struct", Size: 64, Members: []btf.Member{{Name: "thread_info", Type: loop}}},
		&btf.Struct{Name: "pt_regs", Size: 8},
	} {
		if _, err := b.Add(typ); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := b.Marshal(nil, &btf.MarshalOptions{Order: binary.NativeEndian})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "loop")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := kernelTypes(path, spec.Types); err == nil || !strings.Contains(err.Error(), "deep") {
		t.Errorf("a typedef to itself: got %v, want it refused as too deep", err)
	}
}

// BenchmarkKernelTypes: reading the trimmed types, against what cilium/ebpf does
// without them (index the kernel's BTF, then decode task_struct), side by side.
func BenchmarkKernelTypes(b *testing.B) {
	if _, err := os.Stat(btfPath); err != nil {
		testenv.Unavailable(b, "no kernel BTF: %v", err)
	}
	spec, err := loadRecorder()
	if err != nil {
		b.Fatal(err)
	}
	var trimmed, whole []float64
	for range 20 {
		began := time.Now()
		if _, err := kernelTypes(btfPath, spec.Types); err != nil {
			b.Fatal(err)
		}
		trimmed = append(trimmed, float64(time.Since(began).Microseconds()))
		began = time.Now()
		full, err := btf.LoadKernelSpec()
		if err != nil {
			b.Fatal(err)
		}
		var task *btf.Struct
		if err := full.TypeByName("task_struct", &task); err != nil {
			b.Fatal(err)
		}
		whole = append(whole, float64(time.Since(began).Microseconds()))
	}
	slices.Sort(trimmed)
	slices.Sort(whole)
	b.ReportMetric(trimmed[len(trimmed)/2], "µs-trimmed")
	b.ReportMetric(whole[len(whole)/2], "µs-whole")
	b.ReportMetric(whole[len(whole)/2]/trimmed[len(trimmed)/2], "x-whole/trimmed")
}

// TestOpenWithWholeBTF: where the kernel's structs cannot be read alone, Open
// relocates the programs against the kernel's whole BTF, says why, and records.
func TestOpenWithWholeBTF(t *testing.T) {
	testenv.RequireRoot(t)
	defer func(p string) { btfPath = p }(btfPath)
	btfPath = filepath.Join(t.TempDir(), "vmlinux")
	if err := os.WriteFile(btfPath, []byte("not BTF"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(Options{ExecSyscalls: [NumABIs][2]int32{{-1, -1}, {-1, -1}, {-1, -1}}, ReportRefused: true})
	if err != nil {
		testenv.Unavailable(t, "%v", err)
	}
	defer r.Close()
	if st := r.OpenSteps(); st.FullBTF == nil || !strings.Contains(st.FullBTF.Error(), btfPath) {
		t.Fatalf("FullBTF = %v, want why %s could not be read", st.FullBTF, btfPath)
	}
	if r.sysExit == nil || r.objs.SysEnter == nil || r.objs.SchedProcessExec == nil {
		t.Fatal("a program was not loaded")
	}
}
