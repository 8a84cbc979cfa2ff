package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// merge --coverage: run1.json is one run; run2.json merged three already, and
// its coverage file says which of them made what. The counts cover the four.
func TestMergeCoverage(t *testing.T) {
	dir := t.TempDir()
	run1, run2 := filepath.Join(dir, "run1.json"), filepath.Join(dir, "run2.json")
	for from, to := range map[string]string{"testdata/app.input.json": run1, "testdata/new.input.json": run2} {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(run2+".coverage", []byte(`{"runs": 3, "calls": {"io_uring_setup": 2, "personality": 1, "personality(0x8)": 1}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, cov := filepath.Join(dir, "app.json"), filepath.Join(dir, "app.json.coverage")
	_, stderr, err := execute(t, "merge", "--baseline", "none", "-o", out, "--coverage", cov, run1, run2)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	want := `{
  "runs": 4,
  "calls": {
    "close": 1,
    "exit": 1,
    "exit_group": 1,
    "io_uring_enter": 3,
    "io_uring_setup": 2,
    "personality": 1,
    "personality(0x8)": 1,
    "restart_syscall": 1,
    "rt_sigreturn": 1
  }
}
`
	if got, _ := os.ReadFile(cov); string(got) != want {
		t.Errorf("coverage:\n%s\nwant\n%s", got, want)
	}
	for _, line := range []string{"rarely seen, made by few of the 4 runs: check that the workload needs them:\n", "  personality(0x8)  1 of 4\n"} {
		if !strings.Contains(stderr, line) {
			t.Errorf("stderr lacks %q:\n%s", line, stderr)
		}
	}
	if strings.Contains(stderr, "io_uring_setup") {
		t.Errorf("two runs of four is not rare:\n%s", stderr)
	}

	// A coverage file that does not add up is refused, naming it.
	os.WriteFile(run2+".coverage", []byte(`{"runs": 3, "calls": {"read": 5}}`), 0o644)
	if _, _, err := execute(t, "merge", "--baseline", "none", "-o", out, "--coverage", cov, run1, run2); err == nil || !strings.Contains(err.Error(), `run2.json.coverage: calls["read"] is 5`) {
		t.Errorf("error %v", err)
	}
	if _, _, err := execute(t, "merge", "--check", "--coverage", cov, run1, run2); err == nil || !strings.Contains(err.Error(), "--check writes nothing: drop --coverage") {
		t.Errorf("error %v", err)
	}
}
