// Command gendefault writes the default seccomp profiles of containerd and Docker
// as OCI JSON, once per architecture.
//
// Both build their default profile in Go, choosing rules by runtime.GOARCH, and
// consult the running kernel's version. To get the aarch64 profile on an x86_64
// machine, without emulation, gendefault compiles their source again with
// runtime.GOARCH replaced by a variable and the kernel version pinned, through a
// go build -overlay: the same code containerd and Docker run, evaluated for every
// architecture, deterministically and without root.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/profile"
)

// goarches are the architectures written, with the name of their file.
var goarches = []struct{ goarch, file string }{
	{"amd64", "x86_64"},
	{"arm64", "aarch64"},
}

// kernel is the version the profiles are resolved for: syscage's minimum. Both
// defaults allow ptrace from 4.8 on only.
const kernel = "6, 2"

func main() {
	out := flag.String("o", ".", "output `DIR`")
	flag.Parse()
	root, err := goCmd("env", "GOMOD")
	if err != nil {
		log.Fatal(err)
	}
	root = filepath.Dir(root)
	sources := []struct {
		name, pkg string
		files     []string
		main      string
	}{
		{"containerd", "github.com/containerd/containerd/v2/contrib/seccomp", []string{"seccomp_default.go"}, containerdMain},
		{"docker", "github.com/moby/profiles/seccomp", []string{"seccomp.go", "seccomp_linux.go", "default_linux.go", "kernel_linux.go"}, mobyMain},
	}
	for _, src := range sources {
		byArch, err := evaluate(root, src.name, src.pkg, src.files, src.main)
		if err != nil {
			log.Fatalf("%s: %v", src.name, err)
		}
		for _, ga := range goarches {
			p, ok := byArch[ga.goarch]
			if !ok {
				log.Fatalf("%s: no profile for %s", src.name, ga.goarch)
			}
			name := fmt.Sprintf("%s-default-%s.json", src.name, ga.file)
			n, err := profile.Normalize(name, p)
			if err != nil {
				log.Fatal(err)
			}
			data, err := profile.Marshal(n)
			if err != nil {
				log.Fatal(err)
			}
			if err := profile.WriteFile(filepath.Join(*out, name), data); err != nil {
				log.Fatal(err)
			}
		}
	}
}

func goCmd(args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("go", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return strings.TrimSpace(string(out)), nil
}

// evaluate compiles files of pkg, rewritten into package main, with mainSrc, and
// runs them: they print the profile of every architecture in goarches.
func evaluate(root, name, pkg string, files []string, mainSrc string) (map[string]*specs.LinuxSeccomp, error) {
	dir, err := goCmd("list", "-f", "{{.Dir}}", pkg)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "gendefault-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	// The package exists only in the overlay; it sits in this module so that it
	// builds with this module's go.sum.
	evalDir := filepath.Join(root, "profiles", "internal", "gendefault", "eval-"+name)
	overlay := map[string]string{}
	for _, f := range files {
		src, err := rewrite(filepath.Join(dir, f))
		if err != nil {
			return nil, err
		}
		overlay[filepath.Join(evalDir, f)] = filepath.Join(tmp, f)
		if err := os.WriteFile(filepath.Join(tmp, f), src, 0o644); err != nil {
			return nil, err
		}
	}
	var arches []string
	for _, ga := range goarches {
		arches = append(arches, strconv.Quote(ga.goarch))
	}
	mainSrc = strings.NewReplacer("GOARCHES", strings.Join(arches, ", "), "KERNEL", kernel).Replace(mainSrc)
	overlay[filepath.Join(evalDir, "zz_main.go")] = filepath.Join(tmp, "zz_main.go")
	if err := os.WriteFile(filepath.Join(tmp, "zz_main.go"), []byte(mainSrc), 0o644); err != nil {
		return nil, err
	}
	ov, _ := json.Marshal(map[string]any{"Replace": overlay})
	if err := os.WriteFile(filepath.Join(tmp, "overlay.json"), ov, 0o644); err != nil {
		return nil, err
	}
	out, err := goCmd("run", "-overlay", filepath.Join(tmp, "overlay.json"), evalDir)
	if err != nil {
		return nil, err
	}
	var byArch map[string]*specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(out), &byArch); err != nil {
		return nil, fmt.Errorf("reading the evaluated profiles: %w", err)
	}
	return byArch, nil
}

// rewrite returns file as package main, with runtime.GOARCH read from the variable
// goarch and containerd's kernelversion package replaced by local declarations
// (see containerdMain). The selectors are replaced as text: they are identifiers
// that cannot occur otherwise, and a miss fails to compile.
func rewrite(file string) ([]byte, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	src = []byte(strings.NewReplacer(
		"runtime.GOARCH", "goarch",
		"kernelversion.GreaterEqualThan", "greaterEqualThan",
		"kernelversion.KernelVersion", "kernelVersion",
	).Replace(string(src)))
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	f.Name.Name = "main"
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.IMPORT {
			g.Specs = slices.DeleteFunc(g.Specs, func(s ast.Spec) bool {
				path, _ := strconv.Unquote(s.(*ast.ImportSpec).Path.Value)
				return path == "runtime" || strings.HasSuffix(path, "/kernelversion")
			})
		}
	}
	var buf bytes.Buffer
	if err := format.Node(&buf, fset, f); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

const containerdMain = `package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var goarch string

type kernelVersion struct{ Kernel, Major uint64 }

func greaterEqualThan(v kernelVersion) (bool, error) {
	k := kernelVersion{KERNEL}
	return k.Kernel > v.Kernel || k.Kernel == v.Kernel && k.Major >= v.Major, nil
}

func main() {
	out := map[string]*specs.LinuxSeccomp{}
	for _, a := range []string{GOARCHES} {
		goarch = a
		ctx := namespaces.WithNamespace(context.Background(), "default")
		// The spec containerd gives a container by default: its capabilities
		// decide some rules.
		s, err := oci.GenerateSpecWithPlatform(ctx, nil, "linux/"+a, &containers.Container{ID: "gendefault"})
		if err != nil {
			panic(err)
		}
		out[a] = DefaultProfile(s)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		panic(err)
	}
}
`

const mobyMain = `package main

import (
	"encoding/json"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/profile"
)

var goarch string

func main() {
	getKernelVersion = func() (*KernelVersion, error) { return &KernelVersion{KERNEL}, nil }
	out := map[string]*specs.LinuxSeccomp{}
	for _, a := range []string{GOARCHES} {
		goarch = a
		// Docker's default capabilities (moby's daemon has them; this module has not).
		s := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: profile.DefaultCaps}}}
		p, err := GetDefaultProfile(s)
		if err != nil {
			panic(err)
		}
		out[a] = p
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		panic(err)
	}
}
`
