package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// execute drives the real command tree, as a user's shell would.
func execute(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errb.String(), err
}

// Every one of these is refused before anything is loaded or run, so they need no
// root; the marker file proves the command never ran.
func TestRecordRefusesBadInputBeforeRunning(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"defaultAction":"SCMP_ACT_ERRNO","archMap":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	touch := []string{"--", "touch", marker}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", []string{"record"}, "requires at least 1 arg"},
		{"output and append", append([]string{"record", "-o", filepath.Join(dir, "a.json"), "--append", filepath.Join(dir, "b.json")}, touch...), "-o and --append both name an output: use one"},
		{"unknown default action", append([]string{"record", "--default-action", "explode"}, touch...), `--default-action "explode": unknown action: use one of errno, kill, kill-process, kill-thread, log, trap`},
		{"unknown start", append([]string{"record", "--start", "later"}, touch...), `--start "later": use exec or now`},
		{"missing output directory", append([]string{"record", "-o", filepath.Join(dir, "nope", "app.json")}, touch...), "nope does not exist: create it first"},
		{"output is a directory", append([]string{"record", "-o", dir}, touch...), "is a directory: name a file"},
		{"output is a device", append([]string{"record", "-o", "/dev/null"}, touch...), "/dev/null is not a regular file"},
		{"append to a foreign format", append([]string{"record", "--append", bad}, touch...), "not an OCI seccomp profile"},
		{"command not found", []string{"record", "--", "syscage-no-such-command"}, `command "syscage-no-such-command" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := execute(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want it to contain %q", err, tt.want)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the command ran although the input was refused")
			}
			if _, err := os.Stat(filepath.Join(dir, "a.json")); err == nil {
				t.Fatal("an output file was written")
			}
		})
	}
}

func TestVersionAndHelp(t *testing.T) {
	out, _, err := execute(t, "--version")
	if err != nil || !strings.HasPrefix(out, "syscage version ") {
		t.Fatalf("--version: %q, %v", out, err)
	}
	out, _, err = execute(t, "record", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"record [flags] -- CMD [ARGS...]", "--output", "--append", "--default-action", "--strict", "--baseline", "--args"} {
		if !strings.Contains(out, want) {
			t.Errorf("record --help lacks %q:\n%s", want, out)
		}
	}
}

func TestParseDefaultAction(t *testing.T) {
	for in, want := range map[string]string{
		"errno": "SCMP_ACT_ERRNO", "KILL-PROCESS": "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_LOG": "SCMP_ACT_LOG",
	} {
		got, err := parseDefaultAction(in)
		if err != nil || string(got) != want {
			t.Errorf("parseDefaultAction(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
