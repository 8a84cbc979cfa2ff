package profile

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// X32SyscallBit is __X32_SYSCALL_BIT: the kernel reports x32 syscalls as
// X32SyscallBit|nr on the x86_64 audit architecture. The X32 table stores nr alone,
// so callers strip the bit before looking a number up and add it back when they
// compare against seccomp_data.nr.
const X32SyscallBit = 0x40000000

// Table maps syscall numbers to names for one seccomp architecture.
//
// Numbers are the kernel's, including per-ABI offsets (mips o32 starts at 4000, n64 at
// 5000) since that is what seccomp sees; x32 numbers exclude X32SyscallBit.
type Table struct {
	arch    specs.Arch
	base    int
	names   []string   // names[nr-base]; "" is a hole
	private []numbered // numbers far above the dense range, sorted (arm's 0x0f0000+)

	// byName is built on first use rather than generated: it costs one sort of a few
	// hundred entries, and most programs only ever map numbers to names.
	once   sync.Once
	byName []uint16 // indices into names, sorted by name
}

// numbered is one syscall kept outside a table's dense range.
type numbered struct {
	nr   int
	name string
}

// at returns the name and number of index entry j: an index into names, or past
// them into private.
func (t *Table) at(j uint16) (string, int) {
	if int(j) < len(t.names) {
		return t.names[j], t.base + int(j)
	}
	p := t.private[int(j)-len(t.names)]
	return p.name, p.nr
}

// TableFor returns the table for arch.
func TableFor(arch specs.Arch) (*Table, error) {
	for i := range tables {
		if tables[i].arch == arch {
			return &tables[i], nil
		}
	}
	known := make([]string, len(tables))
	for i := range tables {
		known[i] = string(tables[i].arch)
	}
	return nil, fmt.Errorf("no syscall table for architecture %q (known: %s)", arch, strings.Join(known, ", "))
}

// Arch returns the seccomp architecture t describes.
func (t *Table) Arch() specs.Arch { return t.arch }

// Name returns the name of syscall nr, and false if the architecture has no such
// syscall.
func (t *Table) Name(nr int) (string, bool) {
	i := nr - t.base
	if i < 0 || i >= len(t.names) || t.names[i] == "" {
		if k, ok := slices.BinarySearchFunc(t.private, nr, func(p numbered, nr int) int { return p.nr - nr }); ok {
			return t.private[k].name, true
		}
		return "", false
	}
	return t.names[i], true
}

// Number returns the number of the syscall called name, and false if the architecture
// has no such syscall.
func (t *Table) Number(name string) (int, bool) {
	idx := t.index()
	i, ok := slices.BinarySearchFunc(idx, name, func(j uint16, name string) int {
		n, _ := t.at(j)
		return strings.Compare(n, name)
	})
	if !ok {
		return 0, false
	}
	_, nr := t.at(idx[i])
	return nr, true
}

// Names returns every syscall name of the architecture, sorted.
func (t *Table) Names() []string {
	idx := t.index()
	names := make([]string, len(idx))
	for i, j := range idx {
		names[i], _ = t.at(j)
	}
	return names
}

// Len returns how many syscalls the architecture has.
func (t *Table) Len() int { return len(t.index()) }

func (t *Table) index() []uint16 {
	t.once.Do(func() {
		idx := make([]uint16, 0, len(t.names)+len(t.private))
		for i, name := range t.names {
			if name != "" {
				idx = append(idx, uint16(i))
			}
		}
		for i := range t.private {
			idx = append(idx, uint16(len(t.names)+i))
		}
		slices.SortFunc(idx, func(a, b uint16) int {
			na, _ := t.at(a)
			nb, _ := t.at(b)
			return strings.Compare(na, nb)
		})
		t.byName = idx
	})
	return t.byName
}

// Arches returns every architecture that has a table: x86_64, x86, x32, aarch64 and arm
// first, as the ones containers run on, then the rest sorted by name. The order is
// fixed so that profiles written from it are stable.
func Arches() []specs.Arch {
	arches := make([]specs.Arch, len(tables))
	for i := range tables {
		arches[i] = tables[i].arch
	}
	return arches
}

// NativeArches returns the ABIs of a Go architecture as the kernel reports them to a
// tracer: the native table, the 32-bit compat table ("" if none) and x32 ("" if none).
// It covers the architectures the recorder runs on.
func NativeArches(goarch string) (native, compat, x32 specs.Arch, err error) {
	switch goarch {
	case "amd64":
		return specs.ArchX86_64, specs.ArchX86, specs.ArchX32, nil
	case "arm64":
		return specs.ArchAARCH64, specs.ArchARM, "", nil
	case "riscv64":
		return specs.ArchRISCV64, "", "", nil
	case "s390x":
		// s390 (31-bit) compat exists in the kernel, but x/sys has no table for it.
		return specs.ArchS390X, "", "", nil
	case "ppc64le":
		return specs.ArchPPC64LE, "", "", nil
	}
	return "", "", "", fmt.Errorf("unsupported architecture %q (supported: amd64, arm64, riscv64, s390x, ppc64le)", goarch)
}

// KnownName returns the architectures, in Arches order, that have a syscall called
// name, so that a profile can say which architectures lack it (open has no aarch64
// number, for one).
func KnownName(name string) []specs.Arch {
	var arches []specs.Arch
	for i := range tables {
		if _, ok := tables[i].Number(name); ok {
			arches = append(arches, tables[i].arch)
		}
	}
	return arches
}
