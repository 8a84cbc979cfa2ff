package profile

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestTableNumbers(t *testing.T) {
	tests := []struct {
		arch specs.Arch
		want map[string]int // -1: the arch has no such syscall
	}{
		{specs.ArchX86_64, map[string]int{"read": 0, "open": 2, "execve": 59, "openat": 257, "io_uring_setup": 425, "clone3": 435, "map_shadow_stack": 453, "socketcall": -1}},
		{specs.ArchX86, map[string]int{"open": 5, "execve": 11, "sgetmask": 68, "socketcall": 102, "_llseek": 140, "_newselect": 142, "set_thread_area": 243}},
		// x32 shares x86_64's numbers except where the ABI differs (execve, 512+), and
		// lacks the 64-bit-only syscalls; numbers are stored without X32SyscallBit.
		{specs.ArchX32, map[string]int{"read": 0, "open": 2, "openat": 257, "rt_sigaction": 512, "ioctl": 514, "execve": 520, "cachestat": 451, "uselib": -1, "map_shadow_stack": -1}},
		{specs.ArchAARCH64, map[string]int{"openat": 56, "execve": 221, "io_uring_setup": 425, "open": -1, "fork": -1}},
		{specs.ArchARM, map[string]int{"restart_syscall": 0, "open": 5, "execve": 11, "socketcall": -1}},
		{specs.ArchRISCV64, map[string]int{"openat": 56, "execve": 221, "open": -1}},
		{specs.ArchS390X, map[string]int{"open": 5, "execve": 11, "socketcall": 102}},
		{specs.ArchPPC64LE, map[string]int{"open": 5, "execve": 11, "socketcall": 102}},
		// mips numbers keep the kernel's ABI offset because seccomp sees them that way.
		{specs.ArchMIPS, map[string]int{"syscall": 4000, "read": 4003}},
		{specs.ArchMIPSEL64, map[string]int{"read": 5000}},
	}
	for _, tt := range tests {
		t.Run(string(tt.arch), func(t *testing.T) {
			tab, err := TableFor(tt.arch)
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.want {
				got, ok := tab.Number(name)
				if want < 0 {
					if ok {
						t.Errorf("Number(%q) = %d, want absent", name, got)
					}
					continue
				}
				if !ok || got != want {
					t.Errorf("Number(%q) = %d, %v; want %d", name, got, ok, want)
				}
				if n, ok := tab.Name(want); !ok || n != name {
					t.Errorf("Name(%d) = %q, %v; want %q", want, n, ok, name)
				}
			}
		})
	}
}

func TestX32LacksSixtyFourOnlyNumbers(t *testing.T) {
	x32, err := TableFor(specs.ArchX32)
	if err != nil {
		t.Fatal(err)
	}
	// 59 is execve on x86_64; on x32 execve is 520 and 59 is a hole.
	if n, ok := x32.Name(59); ok {
		t.Errorf("x32 Name(59) = %q, want absent", n)
	}
	if n, ok := x32.Name(X32SyscallBit); ok {
		t.Errorf("x32 Name(X32SyscallBit) = %q, want absent: tables store numbers without the bit", n)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, arch := range Arches() {
		t.Run(string(arch), func(t *testing.T) {
			tab, err := TableFor(arch)
			if err != nil {
				t.Fatal(err)
			}
			if tab.Arch() != arch {
				t.Errorf("Arch() = %s", tab.Arch())
			}
			names := tab.Names()
			if !slices.IsSorted(names) {
				t.Error("Names() is not sorted")
			}
			if len(slices.Compact(slices.Clone(names))) != len(names) {
				t.Error("Names() has duplicates")
			}
			if tab.Len() != len(names) || len(names) < 300 {
				t.Errorf("Len() = %d, len(Names()) = %d", tab.Len(), len(names))
			}
			for _, name := range names {
				if name == "" || name != strings.ToLower(name) {
					t.Errorf("bad name %q", name)
				}
				nr, ok := tab.Number(name)
				if !ok {
					t.Errorf("Number(%q) not found", name)
					continue
				}
				if got, ok := tab.Name(nr); !ok || got != name {
					t.Errorf("Name(Number(%q) = %d) = %q, %v", name, nr, got, ok)
				}
			}
			for _, nr := range []int{-1, 1 << 20} {
				if n, ok := tab.Name(nr); ok {
					t.Errorf("Name(%d) = %q, want absent", nr, n)
				}
			}
			if nr, ok := tab.Number("no_such_syscall"); ok {
				t.Errorf("Number(no_such_syscall) = %d", nr)
			}
		})
	}
}

func TestArches(t *testing.T) {
	got := Arches()
	head := []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64, specs.ArchARM}
	if diff := cmp.Diff(head, got[:len(head)]); diff != "" {
		t.Errorf("Arches() head (-want +got):\n%s", diff)
	}
	if !slices.IsSorted(got[len(head):]) {
		t.Errorf("Arches() tail is not sorted: %v", got[len(head):])
	}
	for _, want := range []specs.Arch{specs.ArchRISCV64, specs.ArchS390X, specs.ArchPPC64LE, specs.ArchLOONGARCH64, specs.ArchMIPSEL64} {
		if !slices.Contains(got, want) {
			t.Errorf("Arches() lacks %s", want)
		}
	}
}

func TestTableForUnknown(t *testing.T) {
	_, err := TableFor("SCMP_ARCH_PDP11")
	if err == nil {
		t.Fatal("TableFor(SCMP_ARCH_PDP11) succeeded")
	}
	for _, want := range []string{"SCMP_ARCH_PDP11", "SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestNativeArches(t *testing.T) {
	tests := []struct {
		goarch              string
		native, compat, x32 specs.Arch
		wantErr             bool
	}{
		{goarch: "amd64", native: specs.ArchX86_64, compat: specs.ArchX86, x32: specs.ArchX32},
		{goarch: "arm64", native: specs.ArchAARCH64, compat: specs.ArchARM},
		{goarch: "riscv64", native: specs.ArchRISCV64},
		{goarch: "s390x", native: specs.ArchS390X},
		{goarch: "ppc64le", native: specs.ArchPPC64LE},
		{goarch: "wasm", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.goarch, func(t *testing.T) {
			native, compat, x32, err := NativeArches(tt.goarch)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.goarch) {
					t.Errorf("error %q does not name %s", err, tt.goarch)
				}
				return
			}
			got := []specs.Arch{native, compat, x32}
			if diff := cmp.Diff([]specs.Arch{tt.native, tt.compat, tt.x32}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			for _, a := range got {
				if _, err := TableFor(a); a != "" && err != nil {
					t.Errorf("ABI %s has no table: %v", a, err)
				}
			}
		})
	}
}

func TestKnownName(t *testing.T) {
	tests := []struct {
		name string
		want []specs.Arch
	}{
		{"open", []specs.Arch{
			specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchARM,
			specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPSEL, specs.ArchMIPSEL64,
			specs.ArchPPC, specs.ArchPPC64, specs.ArchPPC64LE, specs.ArchS390X,
		}},
		{"read", Arches()},
		{"no_such_syscall", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, KnownName(tt.name)); diff != "" {
				t.Errorf("KnownName(%q) (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

// TestGenerated catches a zsyscalls.go that was edited by hand or not regenerated after
// golang.org/x/sys moved.
func TestGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator; skipped in -short mode")
	}
	tmp := filepath.Join(t.TempDir(), "zsyscalls.go")
	cmd := exec.Command("go", "run", "./internal/gensyscalls", "-o", tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./internal/gensyscalls: %v\n%s", err, out)
	}
	got, err := os.ReadFile(tmp)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("zsyscalls.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("zsyscalls.go is stale; run go generate ./profile\n%s", cmp.Diff(string(want), string(got)))
	}
}

// ARM's private calls live at __ARM_NR_BASE (0x0f0000), far above the dense table.
func TestARMPrivateCalls(t *testing.T) {
	tab, err := TableFor(specs.ArchARM)
	if err != nil {
		t.Fatal(err)
	}
	for name, nr := range map[string]int{"breakpoint": 0x0f0001, "cacheflush": 0x0f0002, "set_tls": 0x0f0005, "get_tls": 0x0f0006} {
		if got, ok := tab.Number(name); !ok || got != nr {
			t.Errorf("arm %s = %#x, %v; want %#x", name, got, ok, nr)
		}
		if got, ok := tab.Name(nr); !ok || got != name {
			t.Errorf("arm %#x = %q, %v; want %q", nr, got, ok, name)
		}
	}
	if !slices.Contains(tab.Names(), "set_tls") || !slices.IsSorted(tab.Names()) {
		t.Error("Names() lacks set_tls or is unsorted")
	}
	if _, ok := tab.Name(0x0f0007); ok {
		t.Error("0x0f0007 has a name")
	}
	if got := KnownName("cacheflush"); !slices.Contains(got, specs.ArchARM) {
		t.Errorf("KnownName(cacheflush) = %v, lacks arm", got)
	}
}
