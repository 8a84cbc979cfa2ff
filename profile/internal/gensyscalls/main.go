// Command gensyscalls writes profile/zsyscalls.go: for every Linux architecture that
// both golang.org/x/sys and seccomp know, the syscall names indexed by number.
//
// The numbers come from the SYS_* constants in x/sys/unix/zsysnum_linux_<goarch>.go,
// which the Go team generates from the kernel's uapi headers, so we inherit their
// review instead of maintaining tables by hand. x/sys has no x32 file; that table comes
// from the kernel header asm/unistd_x32.h as Debian ships it (linux-libc-dev).
//
// Run it through `go generate ./profile`.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// archInfo ties a Go architecture (the suffix of the x/sys file) to the runtime-spec
// constant naming the same seccomp architecture.
type archInfo struct {
	goarch string // "" for x32, which has no x/sys file
	ident  string // identifier in runtime-spec's specs package
	arch   string // its value, used for ordering
}

// arches lists every architecture we emit. The first five come first in that order
// because they are the ones container hosts actually run; the rest are sorted by value.
var arches = []archInfo{
	{"amd64", "ArchX86_64", "SCMP_ARCH_X86_64"},
	{"386", "ArchX86", "SCMP_ARCH_X86"},
	{"", "ArchX32", "SCMP_ARCH_X32"},
	{"arm64", "ArchAARCH64", "SCMP_ARCH_AARCH64"},
	{"arm", "ArchARM", "SCMP_ARCH_ARM"},
	{"loong64", "ArchLOONGARCH64", "SCMP_ARCH_LOONGARCH64"},
	{"mips", "ArchMIPS", "SCMP_ARCH_MIPS"},
	{"mips64", "ArchMIPS64", "SCMP_ARCH_MIPS64"},
	{"mipsle", "ArchMIPSEL", "SCMP_ARCH_MIPSEL"},
	{"mips64le", "ArchMIPSEL64", "SCMP_ARCH_MIPSEL64"},
	{"ppc", "ArchPPC", "SCMP_ARCH_PPC"},
	{"ppc64", "ArchPPC64", "SCMP_ARCH_PPC64"},
	{"ppc64le", "ArchPPC64LE", "SCMP_ARCH_PPC64LE"},
	{"riscv64", "ArchRISCV64", "SCMP_ARCH_RISCV64"},
	{"s390x", "ArchS390X", "SCMP_ARCH_S390X"},
}

// notSyscalls are SYS_* constants x/sys emits that are not syscalls. arm's
// __NR_SYSCALL_MASK is a mask for the OABI/EABI number space; x/sys gives it the value
// 0, where it would shadow restart_syscall.
var notSyscalls = map[string]bool{"syscall_mask": true}

// x32Bit is __X32_SYSCALL_BIT from asm/unistd.h; the tables store x32 numbers without it.
const x32Bit = 0x40000000

// x32FirstPrivate is where the x32-only syscall numbers (512..547) start. Below it, x32
// shares the x86_64 numbering but lacks the syscalls whose x86_64 ABI is "64".
const x32FirstPrivate = 512

// x32Excluded are syscalls above the newest number the header knows that the kernel's
// syscall_64.tbl marks as "64", not "common", so x32 lacks them. Every other syscall
// added since Linux 5.x went into the common ABI.
var x32Excluded = map[string]bool{
	"map_shadow_stack": true, // 453: shadow stacks are 64-bit only
}

const defaultX32Header = "/usr/include/x86_64-linux-gnu/asm/unistd_x32.h"

type table struct {
	info    archInfo
	byNum   map[int]string
	private map[int]string // numbers far above the dense range (ARM's __ARM_NR_ calls)
}

const defaultARMHeader = "/usr/arm-linux-gnueabihf/include/asm/unistd.h"

// armBase is __ARM_NR_BASE for EABI, where __NR_SYSCALL_BASE is 0: the ARM-specific
// calls (cacheflush, set_tls, …) that x/sys leaves out but seccomp filters on.
const armBase = 0x0f0000

var armDefine = regexp.MustCompile(`^#define __ARM_NR_([a-z0-9_]+) \(__ARM_NR_BASE\+([0-9]+)\)$`)

// parseARMPrivate reads the __ARM_NR_ calls from the kernel's arm uapi header.
func parseARMPrivate(header string) (map[int]string, error) {
	data, err := os.ReadFile(header)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("arm syscall header %s is missing; install it with apt-get install linux-libc-dev-armhf-cross", header)
	}
	if err != nil {
		return nil, err
	}
	out := map[int]string{}
	for _, line := range strings.Split(string(data), "\n") {
		m := armDefine.FindStringSubmatch(strings.Join(strings.Fields(line), " "))
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		out[armBase+n] = m[1]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no __ARM_NR_ calls found", header)
	}
	return out, nil
}

func main() {
	out := flag.String("o", "", "output file")
	x32Header := flag.String("x32-header", defaultX32Header, "kernel header with the x32 __NR_ numbers")
	armHeader := flag.String("arm-header", defaultARMHeader, "kernel header with the arm __ARM_NR_ numbers")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: gensyscalls -o zsyscalls.go [-x32-header path] [-arm-header path]")
		os.Exit(2)
	}
	if err := run(*out, *x32Header, *armHeader); err != nil {
		fmt.Fprintf(os.Stderr, "gensyscalls: %v\n", err)
		os.Exit(1)
	}
}

func run(out, x32Header, armHeader string) error {
	dir, version, err := xsysModule()
	if err != nil {
		return err
	}
	var tables []table
	var amd64 map[int]string
	for _, a := range arches {
		if a.goarch == "" {
			// x32 follows x86_64 in arches, so amd64 is parsed by now.
			if amd64 == nil {
				return errors.New("x/sys has no amd64 table, which the x32 table is built from")
			}
			x32, err := buildX32(x32Header, amd64)
			if err != nil {
				return err
			}
			tables = append(tables, table{info: a, byNum: x32})
			continue
		}
		file := filepath.Join(dir, "unix", "zsysnum_linux_"+a.goarch+".go")
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(os.Stderr, "gensyscalls: skipping %s: x/sys %s has no %s\n", a.arch, version, filepath.Base(file))
			continue
		}
		byNum, err := parseXSys(file)
		if err != nil {
			return err
		}
		if a.goarch == "amd64" {
			amd64 = byNum
		}
		t := table{info: a, byNum: byNum}
		if a.goarch == "arm" {
			if t.private, err = parseARMPrivate(armHeader); err != nil {
				return err
			}
		}
		tables = append(tables, t)
	}
	src, err := render(tables, version)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, src, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return nil
}

// xsysModule finds golang.org/x/sys as the enclosing module resolves it, so the tables
// follow whatever version go.mod pins.
func xsysModule() (dir, version string, err error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", "", fmt.Errorf("running go env GOMOD: %w", err)
	}
	modFile := strings.TrimSpace(string(gomod))
	if modFile == "" || modFile == os.DevNull {
		return "", "", errors.New("not inside a Go module; run via go generate ./profile")
	}
	root := filepath.Dir(modFile)
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}\t{{.Version}}", "golang.org/x/sys")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("running go list -m golang.org/x/sys: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	dir, version, _ = strings.Cut(strings.TrimSpace(string(b)), "\t")
	if dir == "" {
		return "", "", errors.New("golang.org/x/sys is not in the module cache; run go mod download golang.org/x/sys")
	}
	return dir, version, nil
}

// parseXSys reads the SYS_* constants of one zsysnum file. The numbers are the
// kernel's own, offsets included (mips o32 starts at 4000, n64 at 5000), because that
// is what seccomp_data.nr carries and what libseccomp resolves names to.
func parseXSys(file string) (map[int]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", file, err)
	}
	byNum := map[int]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, id := range vs.Names {
				name, ok := strings.CutPrefix(id.Name, "SYS_")
				if !ok {
					continue
				}
				name = strings.ToLower(name)
				if notSyscalls[name] {
					continue
				}
				if i >= len(vs.Values) {
					return nil, fmt.Errorf("%s: %s has no value", file, id.Name)
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.INT {
					return nil, fmt.Errorf("%s: %s is not an integer literal", file, id.Name)
				}
				nr, err := strconv.ParseInt(lit.Value, 0, 32)
				if err != nil {
					return nil, fmt.Errorf("%s: %s: %w", file, id.Name, err)
				}
				if err := add(byNum, int(nr), name); err != nil {
					return nil, fmt.Errorf("%s: %w", file, err)
				}
			}
		}
	}
	if len(byNum) == 0 {
		return nil, fmt.Errorf("%s: no SYS_ constants", file)
	}
	return byNum, nil
}

// add refuses aliases rather than picking one: a number with two names (or a name with
// two numbers) means the source changed shape and a human should decide.
func add(byNum map[int]string, nr int, name string) error {
	if nr < 0 {
		return fmt.Errorf("%s has negative number %d", name, nr)
	}
	if old, ok := byNum[nr]; ok {
		return fmt.Errorf("%s and %s share number %d", old, name, nr)
	}
	for n, s := range byNum {
		if s == name {
			return fmt.Errorf("%s has two numbers, %d and %d", name, n, nr)
		}
	}
	byNum[nr] = name
	return nil
}

var x32Define = regexp.MustCompile(`^#define __NR_([a-z0-9_]+) \(__X32_SYSCALL_BIT \+ ([0-9]+)\)$`)

// buildX32 reads the header's x32 numbers (without __X32_SYSCALL_BIT) and completes
// them from x86_64: Debian's header lags the kernel, and every syscall added since
// the newest number it knows (below 512) got the same number on x32 as on x86_64
// because new syscalls go into the "common" ABI, except those in x32Excluded.
// Taking x/sys as the list of syscalls that exist keeps the output the same whatever
// linux-libc-dev version generated it.
func buildX32(header string, amd64 map[int]string) (map[int]string, error) {
	f, err := os.Open(header)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("x32 syscall header %s is missing; install it with apt-get install linux-libc-dev", header)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", header, err)
	}
	defer f.Close()
	byNum := map[int]string{}
	headerMax := -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "#define __NR_") {
			continue
		}
		m := x32Define.FindStringSubmatch(strings.Join(strings.Fields(line), " "))
		if m == nil {
			return nil, fmt.Errorf("%s: unexpected line %q", header, line)
		}
		nr, err := strconv.Atoi(m[2])
		if err != nil || nr >= x32Bit {
			return nil, fmt.Errorf("%s: bad number in %q", header, line)
		}
		name := m[1]
		if nr < x32FirstPrivate {
			headerMax = max(headerMax, nr)
			switch s, ok := amd64[nr]; {
			case !ok:
				// The header is newer than x/sys; x/sys decides what exists.
				fmt.Fprintf(os.Stderr, "gensyscalls: x32 %s (%d) is not in x/sys amd64; dropped\n", name, nr)
				continue
			case s != name:
				return nil, fmt.Errorf("%s: x32 %s is %d, which x86_64 calls %s", header, name, nr, s)
			}
		}
		if err := add(byNum, nr, name); err != nil {
			return nil, fmt.Errorf("%s: %w", header, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", header, err)
	}
	if headerMax < 0 {
		return nil, fmt.Errorf("%s: no x32 syscalls found", header)
	}
	for nr, name := range amd64 {
		if nr > headerMax && nr < x32FirstPrivate && !x32Excluded[name] {
			if err := add(byNum, nr, name); err != nil {
				return nil, fmt.Errorf("completing x32 from x86_64: %w", err)
			}
		}
	}
	return byNum, nil
}

// perLine keeps the file short while a new syscall still shows as a one-line diff.
const perLine = 8

func render(tables []table, version string) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by gensyscalls; DO NOT EDIT.\n\n")
	fmt.Fprintf(&b, "// Sources: golang.org/x/sys %s unix/zsysnum_linux_*.go; x32 from the kernel's\n", version)
	fmt.Fprintf(&b, "// asm/unistd_x32.h completed from x86_64, arm's __ARM_NR_ calls from its asm/unistd.h\n")
	fmt.Fprintf(&b, "// (see internal/gensyscalls).\n\n")
	fmt.Fprintf(&b, "package profile\n\n")
	fmt.Fprintf(&b, "import specs \"github.com/opencontainers/runtime-spec/specs-go\"\n\n")
	fmt.Fprintf(&b, "// tables is in Arches() order. names[nr-base] is the syscall numbered nr; \"\" is a hole.\n")
	fmt.Fprintf(&b, "var tables = [...]Table{\n")
	for _, t := range tables {
		nums := make([]int, 0, len(t.byNum))
		for nr := range t.byNum {
			nums = append(nums, nr)
		}
		slices.Sort(nums)
		base, last := nums[0], nums[len(nums)-1]
		fmt.Fprintf(&b, "{\narch: specs.%s, // %d syscalls\nbase: %d,\nnames: []string{\n", t.info.ident, len(nums), base)
		for row := base; row <= last; row += perLine {
			fmt.Fprintf(&b, "/* %d */", row)
			for nr := row; nr < row+perLine && nr <= last; nr++ {
				fmt.Fprintf(&b, " %q,", t.byNum[nr])
			}
			b.WriteString("\n")
		}
		b.WriteString("},\n")
		if len(t.private) > 0 {
			b.WriteString("private: []numbered{\n")
			for _, nr := range slices.Sorted(maps.Keys(t.private)) {
				fmt.Fprintf(&b, "{%#x, %q},\n", nr, t.private[nr])
			}
			b.WriteString("},\n")
		}
		b.WriteString("},\n")
	}
	b.WriteString("}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("formatting output: %w", err)
	}
	return src, nil
}
