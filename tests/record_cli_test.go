package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/syscage/syscage/bpf"
	"github.com/syscage/syscage/bpf/cgroups"
	"github.com/syscage/syscage/profile"
	"github.com/syscage/syscage/tests/testenv"
)

var programsRe = regexp.MustCompile(`programs="?\[([0-9 ]*)\]`)

// assertCleanedUp checks, from syscage's --debug log, that the programs it loaded
// are gone, and that no cgroup of its is left below this process's cgroup.
func assertCleanedUp(t *testing.T, stderr string) {
	t.Helper()
	m := programsRe.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no program ids in syscage's debug log:\n%s", stderr)
	}
	ids := strings.Fields(m[1])
	if len(ids) == 0 {
		t.Fatal("syscage logged no programs")
	}
	var loaded []ebpf.ProgramID
	for _, s := range ids {
		id, _ := strconv.Atoi(s)
		loaded = append(loaded, ebpf.ProgramID(id))
	}
	if left := bpf.LoadedPrograms(loaded, 5*time.Second); len(left) > 0 {
		t.Errorf("programs %v still loaded after syscage exited", left)
	}
	self, err := cgroups.Self()
	if err != nil {
		t.Fatal(err)
	}
	// record's cgroups are syscage-PID-N (the hook's recorder has its own).
	left, _ := filepath.Glob(filepath.Join(self, "syscage-[0-9]*"))
	if len(left) > 0 {
		t.Errorf("cgroups left behind: %v", left)
	}
}

func readProfile(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(path, data)
	if err != nil {
		t.Fatal(err)
	}
	return allowed(p)
}

func TestRecordExitStatusAndCleanup(t *testing.T) {
	testenv.RequireRoot(t)
	out := filepath.Join(t.TempDir(), "app.json")
	res := syscage(t, "--debug", "record", "-o", out, "--", "sh", "-c", "exit 7")
	if res.code != 7 {
		t.Fatalf("exit code %d, want the command's 7\n%s", res.code, res.stderr)
	}
	if names := readProfile(t, out); !slices.Contains(names, "execve") || !slices.Contains(names, "exit_group") {
		t.Errorf("profile of sh: %v", names)
	}
	if !strings.Contains(res.stderr, "exit 7 → "+out) {
		t.Errorf("no summary on stderr:\n%s", res.stderr)
	}
	assertCleanedUp(t, res.stderr)
}

func TestRecordToStdout(t *testing.T) {
	testenv.RequireRoot(t)
	res := syscage(t, "record", "--", "true")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	p, err := profile.Parse("stdout", []byte(res.stdout))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(allowed(p), "execve") {
		t.Errorf("profile: %v", allowed(p))
	}
}

// Ctrl-C: what was recorded is written, syscage exits 130, nothing is left.
func TestRecordInterrupted(t *testing.T) {
	testenv.RequireRoot(t)
	out := filepath.Join(t.TempDir(), "app.json")
	cmd := exec.Command(binary, "--debug", "record", "-o", out, "--", "sleep", "60")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let sleep reach its nanosleep
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("exit %d (%v), want 130\n%s", code, err, stderr.String())
	}
	names := readProfile(t, out)
	if !slices.Contains(names, "clock_nanosleep") && !slices.Contains(names, "nanosleep") {
		t.Errorf("the sleep was not recorded: %v", names)
	}
	assertCleanedUp(t, stderr.String())
}

// What the command leaves running in its cgroup is killed, and said so.
func TestRecordKillsLeftovers(t *testing.T) {
	testenv.RequireRoot(t)
	res := syscage(t, "--debug", "record", "-o", filepath.Join(t.TempDir(), "p.json"), "--", "sh", "-c", "sleep 123 & exit 0")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if !strings.Contains(res.stderr, "killed 1 processes sh left running") {
		t.Errorf("leftover not reported:\n%s", res.stderr)
	}
	if out, _ := exec.Command("pgrep", "-f", "sleep 123").Output(); len(out) > 0 {
		t.Errorf("leftover still running: %s", out)
	}
	assertCleanedUp(t, res.stderr)
}

func TestRecordAppendMerges(t *testing.T) {
	testenv.RequireRoot(t)
	out := filepath.Join(t.TempDir(), "app.json")
	if res := syscage(t, "record", "--append", out, "--", "true"); res.code != 0 {
		t.Fatalf("first run: %s", res.stderr)
	}
	first := readProfile(t, out)
	if res := syscage(t, "record", "--append", out, "--", "sleep", "0.01"); res.code != 0 {
		t.Fatalf("second run: %s", res.stderr)
	}
	merged := readProfile(t, out)
	for _, n := range first {
		if !slices.Contains(merged, n) {
			t.Errorf("%q of the first run lost by --append", n)
		}
	}
	if !slices.Contains(merged, "clock_nanosleep") && !slices.Contains(merged, "nanosleep") {
		t.Errorf("second run not merged in: %v", merged)
	}
}

// A process that may not load BPF gets one line naming the cause and the fix.
func TestRecordWithoutPrivileges(t *testing.T) {
	testenv.RequireRoot(t)
	cmd := exec.Command(binary, "record", "--", "true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("recording as nobody succeeded")
	}
	want := "Error: recording syscalls needs root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN): run syscage with sudo"
	if !strings.HasPrefix(string(out), want) || strings.Count(string(out), "\n") != 1 {
		t.Errorf("got %q, want one line starting %q", out, want)
	}
}

// On a terminal, record shows a live count, then clears it for the summary.
func TestRecordShowsProgressOnATerminal(t *testing.T) {
	testenv.RequireRoot(t)
	script := testenv.RequireCommand(t, "script") // util-linux: runs a command on a pty
	out := filepath.Join(t.TempDir(), "p.json")
	cmd := exec.Command(script, "-qfec", binary+" record -o "+out+" -- sleep 0.7", "/dev/null")
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	if !regexp.MustCompile(`syscage: recording sleep: [1-9][0-9]* distinct syscalls`).Match(got) {
		t.Errorf("no live count on the terminal:\n%q", got)
	}
	if !strings.Contains(string(got), "\r\x1b[Ksyscage: sleep made") {
		t.Errorf("the live count was not cleared before the summary:\n%q", got)
	}
}
