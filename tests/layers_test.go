package tests

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// layers is the flow the tree shows, top to bottom: a package may import its own
// layer and those below, never one above. tests/ may import anything.
var layers = []struct {
	name string
	pkgs []string // import paths below the module, by prefix ("" matches none)
}{
	{"commands", []string{"cmd/"}},
	{"hook, agent and verify", []string{"hooks"}},
	{"recording session", []string{"bpf/record"}},
	{"BPF, OCI and cgroups", []string{"bpf", "oci"}},
	{"profile", []string{"profile", "profiles"}},
}

const module = "github.com/syscage/syscage/"

// layerOf returns the index of the layer pkg belongs to, the most specific
// prefix winning (bpf/record is not bpf), or -1.
func layerOf(pkg string) int {
	rel, ok := strings.CutPrefix(pkg, module)
	if !ok {
		return -1
	}
	best, bestLen := -1, -1
	for i, l := range layers {
		for _, p := range l.pkgs {
			if (rel == p || strings.HasPrefix(rel, strings.TrimSuffix(p, "/")+"/")) && len(p) > bestLen {
				best, bestLen = i, len(p)
			}
		}
	}
	return best
}

// No package imports a layer above its own, and every package outside tests/
// is in a layer.
func TestImportsRunOneWay(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	n := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(p.ImportPath, module+"tests") {
			continue
		}
		n++
		mine := layerOf(p.ImportPath)
		if mine < 0 {
			t.Errorf("%s is in no layer: put it under cmd, hooks, bpf, oci, profile or profiles", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if l := layerOf(imp); strings.HasPrefix(imp, module) && l >= 0 && l < mine {
				t.Errorf("%s (%s) imports %s (%s), a layer above it", p.ImportPath, layers[mine].name, imp, layers[l].name)
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d packages listed", n)
	}
}
