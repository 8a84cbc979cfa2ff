package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// denyMkdir allows everything but mkdir, which fails with EACCES.
const denyMkdir = `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`

// syscage exec needs no privileges: the filter goes in with no_new_privs.
func TestExecEnforces(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "p.json", denyMkdir)
	target := filepath.Join(dir, "made")

	// In CMD, and in every process it starts.
	res := syscage(t, "exec", "--profile", p, "--", "sh", "-c", "mkdir "+target+" || echo denied; sh -c 'mkdir "+target+"' || echo denied in child; exit 7")
	if res.code != 7 {
		t.Errorf("exit %d, want CMD's 7; stderr %q", res.code, res.stderr)
	}
	if res.stdout != "denied\ndenied in child\n" || !strings.Contains(res.stderr, "Permission denied") {
		t.Errorf("stdout %q, stderr %q: want mkdir refused with EACCES in CMD and its child", res.stdout, res.stderr)
	}
	if _, err := os.Stat(target); err == nil {
		t.Error("mkdir ran under the profile")
	}

	// Without the profile the same command works: the denial was the filter's.
	if err := exec.Command("sh", "-c", "mkdir "+target).Run(); err != nil {
		t.Fatalf("mkdir without the profile: %v", err)
	}
}

func TestExecKilledBySignal(t *testing.T) {
	p := writeFile(t, t.TempDir(), "p.json", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_KILL_PROCESS"}]}`)
	cmd := exec.Command(binary, "exec", "--profile", p, "--", "mkdir", filepath.Join(t.TempDir(), "x"))
	err := cmd.Run()
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ws.Signaled() || ws.Signal() != syscall.SIGSYS {
		t.Errorf("mkdir under SCMP_ACT_KILL_PROCESS: %v, want killed by SIGSYS", err)
	}
}

// CMD replaces syscage: same pid, stdin and environment, and the RLIMIT_NOFILE soft
// limit syscage was started with, not the one Go raises for itself.
func TestExecReplacesItself(t *testing.T) {
	p := writeFile(t, t.TempDir(), "p.json", denyMkdir)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max < 600 {
		t.Skipf("hard RLIMIT_NOFILE %d is too low to tell a lowered soft limit", lim.Max)
	}
	cmd := exec.Command("sh", "-c", `ulimit -Sn 512; echo $$; exec "$0" exec --profile "$1" -- sh -c 'echo $$; echo "$SYSCAGE_T"; ulimit -Sn; cat'`, binary, p)
	cmd.Env = append(os.Environ(), "SYSCAGE_T=kept")
	cmd.Stdin = strings.NewReader("from stdin\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 5 || lines[0] != lines[1] || lines[2] != "kept" || lines[3] != "512" || lines[4] != "from stdin" {
		t.Errorf("output %q: want the same pid twice, the environment, soft limit 512 and stdin", lines)
	}
}

func TestExecBadProfile(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	p := writeFile(t, dir, "p.json", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
		{"names":["getpid","opn"],"action":"SCMP_ACT_ERRNO"},
		{"names":["read"],"action":"SCMP_ACT_NOTIFY"},
		{"names":["write"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":1,"op":"SCMP_CMP_SIMILAR"}]}]}`)
	res := syscage(t, "exec", "--profile", p, "--", "touch", marker)
	if res.code != 1 {
		t.Errorf("exit %d, want 1", res.code)
	}
	for _, want := range []string{
		`syscalls[0].names[1]: unknown syscall "opn" for any architecture: did you mean "open"?`,
		`syscalls[2].args[0].index: index 6: syscalls have 6 arguments, numbered 0 to 5`,
		`syscalls[2].args[1].op: unknown operator "SCMP_CMP_SIMILAR"`,
		`listenerPath: SCMP_ACT_NOTIFY needs a seccomp agent`,
	} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran under a refused profile")
	}
	// NOTIFY with an agent is a valid profile that syscage cannot run.
	p = writeFile(t, dir, "notify.json", `{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOTIFY"}]}`)
	res = syscage(t, "exec", "--profile", p, "--", "touch", marker)
	if res.code != 1 || !strings.Contains(res.stderr, "syscalls[0].action: SCMP_ACT_NOTIFY needs a seccomp agent, which syscage exec does not run") {
		t.Errorf("NOTIFY: exit %d, stderr %q", res.code, res.stderr)
	}
}
