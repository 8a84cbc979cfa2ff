package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeProfile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A profile exec cannot enforce as written is refused before anything runs, with
// every problem's JSON path and fix. (A test that passed every check would replace
// the test binary with the command: there is none here.)
func TestExecRefusesBeforeRunning(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	touch := []string{"--", "touch", marker}
	tests := []struct {
		name, profile string
		want          []string
	}{
		{"unknown syscall", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid","opn"],"action":"SCMP_ACT_ERRNO"}]}`,
			[]string{`syscalls[0].names[1]: unknown syscall "opn" for any architecture: did you mean "open"?`}},
		{"unknown op and index 6", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_LIKE"}]}]}`,
			[]string{`syscalls[0].args[0].index: index 6: syscalls have 6 arguments, numbered 0 to 5`, `syscalls[0].args[0].op: unknown operator "SCMP_CMP_LIKE"`}},
		{"unknown action", `{"defaultAction":"SCMP_ACT_DENY"}`, []string{`defaultAction: unknown action "SCMP_ACT_DENY"`}},
		{"notify", `{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock","syscalls":[{"names":["mount"],"action":"SCMP_ACT_NOTIFY"}]}`,
			[]string{`syscalls[0].action: SCMP_ACT_NOTIFY needs a seccomp agent, which syscage exec does not run`}},
		{"execve denied", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["execve"],"action":"SCMP_ACT_KILL_PROCESS"}]}`,
			[]string{`execve gets kill-process, so CMD cannot start under the profile`, `allow execve`}},
		{"execve by default", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}`,
			[]string{`execve gets errno 38 (ENOSYS)`}}, // above read, the highest name: runc's ENOSYS,
		{"not a profile", `{"defaultAction":"SCMP_ACT_ERRNO","archMap":[]}`, []string{"not an OCI seccomp profile"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeProfile(t, dir, strings.ReplaceAll(tt.name, " ", "-")+".json", tt.profile)
			_, _, err := execute(t, append([]string{"exec", "--profile", p}, touch...)...)
			for _, want := range tt.want {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("got error %v, want it to contain %q", err, want)
				}
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the command ran although the profile was refused")
			}
		})
	}
	ok := writeProfile(t, dir, "ok.json", `{"defaultAction":"SCMP_ACT_ALLOW"}`)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"exec", "--", "true"}, `required flag(s) "profile" not set`},
		{[]string{"exec", "--profile", ok}, "requires at least 1 arg"},
		{[]string{"exec", "--profile", filepath.Join(dir, "missing.json"), "--", "true"}, "reading the profile"},
		{[]string{"exec", "--profile", ok, "--", "syscage-no-such-command"}, `command "syscage-no-such-command" not found`},
	} {
		if _, _, err := execute(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got error %v, want it to contain %q", tc.args, err, tc.want)
		}
	}
}

func TestExecHelp(t *testing.T) {
	out, _, err := execute(t, "exec", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"exec --profile FILE [flags] -- CMD [ARGS...]", "--profile", "--no-new-privs", "--runc-enosys", "must allow execve"} {
		if !strings.Contains(out, want) {
			t.Errorf("exec --help lacks %q:\n%s", want, out)
		}
	}
}
