package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad profiles and bad invocations are refused before the workload runs (the
// marker file proves it never did), so these need no root.
func TestVerifyRefusesBeforeRunning(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rule := func(r string) string {
		return write("p.json", `{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[`+r+`]}`)
	}
	tests := []struct {
		name string
		args func() []string
		want string
	}{
		{"unknown syscall", func() []string {
			return []string{"--profile", rule(`{"names":["opn"],"action":"SCMP_ACT_ALLOW"}`)}
		}, `syscalls[0].names[0]: unknown syscall "opn"`},
		{"unknown op", func() []string {
			return []string{"--profile", rule(`{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_SOMETIMES"}]}`)}
		}, `SCMP_CMP_SOMETIMES`},
		{"index 6", func() []string {
			return []string{"--profile", rule(`{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}`)}
		}, `index`},
		{"unknown action", func() []string {
			return []string{"--profile", rule(`{"names":["read"],"action":"SCMP_ACT_MAYBE"}`)}
		}, `SCMP_ACT_MAYBE`},
		{"missing profile", func() []string { return []string{"--profile", filepath.Join(dir, "none.json")} }, "no such file"},
		{"bad mode", func() []string {
			return []string{"--profile", rule(`{"names":["read"],"action":"SCMP_ACT_ALLOW"}`), "--mode", "strict"}
		}, `--mode "strict": use complain or enforce`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{"verify"}, tt.args()...), "--", "touch", marker)
			_, _, err := execute(t, args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the workload ran")
			}
		})
	}
	if _, _, err := execute(t, "verify", "--profile", rule(`{"names":["read"],"action":"SCMP_ACT_ALLOW"}`)); err == nil || !strings.Contains(err.Error(), "name one workload") {
		t.Errorf("no workload: %v", err)
	}
}
