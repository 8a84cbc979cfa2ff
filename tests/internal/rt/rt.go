// Package rt runs real containers with runc, podman and Docker (a dockerd of the
// test's own, see StartDocker) for end-to-end tests. Every helper gates on root
// and the runtime (skip on a laptop, fail under SYSCAGE_TEST_PRIVILEGED=1) and
// registers cleanup for what it creates: bundles live in t.TempDir(), containers
// get unique names and are force-removed, podman images are removed only under
// the unique tag this package imported them as, and a dockerd goes with its roots.
//
// Measured on the CI VM (Debian 12, kernel 6.18, runc 1.1.5, podman 4.3.1) with the
// benchmarks in rt_test.go: one `runc run` of `true` takes about 0.035 s, one
// `podman run` of `true` 0.16-0.25 s; building a rootfs and importing it about 0.1 s.
package rt

import (
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/syscage/syscage/tests/testenv"
)

// Timeout bounds one container run; a hung container is killed and the test fails.
const Timeout = 60 * time.Second

// Result is what a container run produced.
type Result struct {
	ID       string // runc container id or podman container name
	ExitCode int
	Stdout   string
	Stderr   string
}

// Rootfs builds a minimal busybox root filesystem in dir: /bin/busybox with a symlink
// for every applet it has, the usual mount points, and /etc/passwd and /etc/group
// with root. files adds host files: rootfs path -> host path, mode preserved.
func Rootfs(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	busybox := testenv.RequireCommand(t, "busybox")
	requireStatic(t, busybox)

	for _, d := range []string{"bin", "proc", "sys", "dev", "etc", "root", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatalf("rootfs: %v", err)
		}
	}
	// Chmod because MkdirAll's mode is filtered by the umask and drops the sticky bit.
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o777|fs.ModeSticky); err != nil {
		t.Fatalf("rootfs: %v", err)
	}
	copyFile(t, filepath.Join(dir, "bin", "busybox"), busybox)

	// Linking every applet busybox reports, not a fixed list, means a test can use any
	// applet without editing this package, and an applet this busybox lacks fails with
	// "not found" inside the container rather than a dangling symlink.
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		t.Fatalf("rootfs: busybox --list: %v", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil && !errors.Is(err, fs.ErrExist) {
			t.Fatalf("rootfs: %v", err)
		}
	}

	writeFile(t, filepath.Join(dir, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\n")
	writeFile(t, filepath.Join(dir, "etc", "group"), "root:x:0:\n")

	for dst, src := range files {
		rel := filepath.Clean("/" + dst)
		if rel == "/" {
			t.Fatalf("rootfs: destination %q names the root itself", dst)
		}
		copyFile(t, filepath.Join(dir, rel), src)
	}
}

// requireStatic refuses a dynamically linked busybox: the rootfs has no libc, so it
// would fail inside the container with a confusing "no such file or directory".
func requireStatic(t testing.TB, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("rootfs: %s: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			testenv.Unavailable(t, "%s is dynamically linked; install busybox-static", path)
		}
	}
}

func copyFile(t testing.TB, dst, src string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatalf("rootfs: %v", err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		t.Fatalf("rootfs: %v", err)
	}
	if !fi.Mode().IsRegular() {
		t.Fatalf("rootfs: %s is not a regular file", src)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatalf("rootfs: %v", err)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatalf("rootfs: %v", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatalf("rootfs: copy %s: %v", src, err)
	}
	if err := out.Close(); err != nil {
		t.Fatalf("rootfs: %v", err)
	}
	// Chmod because OpenFile's mode is filtered by the umask.
	mode := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if err := os.Chmod(dst, mode); err != nil {
		t.Fatalf("rootfs: %v", err)
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatalf("rootfs: %v", err)
	}
}

// Bundle creates an OCI bundle in a temporary directory from `runc spec`, with a
// busybox rootfs (plus files) and process.args set to args. The spec is already
// written; a caller that changes it (seccomp, hooks) calls WriteSpec again.
func Bundle(t testing.TB, args []string, files map[string]string) (string, *specs.Spec) {
	t.Helper()
	testenv.RequireRoot(t)
	runc := testenv.RequireCommand(t, "runc")

	dir := t.TempDir()
	Rootfs(t, filepath.Join(dir, "rootfs"), files)
	mustRun(t, "bundle", exec.Command(runc, "spec", "--bundle", dir))
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatalf("bundle: %v", err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatalf("bundle: parse runc spec output: %v", err)
	}

	// The rest of runc's default spec works here as it is: its only rlimit,
	// RLIMIT_NOFILE 1024, is below the hard limit (raising one above it needs
	// CAP_SYS_RESOURCE, which this sandbox lacks), it sets no oom_score_adj, and its
	// fresh network namespace gets a loopback that runc brings up.
	spec.Process.Terminal = false // a terminal needs a console socket we do not provide
	spec.Process.Args = args
	// runc mounts the rootfs read-only by default. A writable one matches podman and
	// keeps EROFS from standing in for the EPERM a seccomp profile should cause.
	spec.Root.Readonly = false

	WriteSpec(t, dir, &spec)
	return dir, &spec
}

// WriteSpec writes spec as dir/config.json.
func WriteSpec(t testing.TB, dir string, spec *specs.Spec) {
	t.Helper()
	data, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		t.Fatalf("write spec: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatalf("write spec: %v", err)
	}
}

// RuncRun runs the bundle in dir as a new container with a unique id (its cgroup2
// path is /<id>) and waits for it. A container that runc could not start (bad spec,
// command not found, ...) fails the test; the command's own exit code is returned.
func RuncRun(t testing.TB, dir string) Result {
	t.Helper()
	res, err := RuncTry(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// RuncTry is RuncRun for a container that is expected not to start: runc's own
// failure is returned as an error instead of failing the test.
func RuncTry(t testing.TB, dir string) (Result, error) {
	t.Helper()
	testenv.RequireRoot(t)
	runc := testenv.RequireCommand(t, "runc")

	id := uniqueName()
	// runc run deletes the container when it exits by itself; this covers a timeout
	// or a runc that died half way.
	t.Cleanup(func() {
		var stderr bytes.Buffer
		cmd := exec.Command(runc, "delete", "--force", id)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil && !strings.Contains(stderr.String(), "does not exist") {
			t.Errorf("cleanup: runc delete %s: %v: %s", id, err, stderr.String())
		}
	})

	// runc's own errors go to a JSON log so that they can be told apart from what the
	// container prints: both would otherwise share stderr and exit code 1.
	logPath := filepath.Join(t.TempDir(), "runc.log")
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, runc, "--log", logPath, "--log-format", "json", "run", "--bundle", dir, id)
	// Killing runc would leave the container running; killing the container makes
	// runc run return. Before the container exists there is only runc to kill.
	cmd.Cancel = func() error {
		if exec.Command(runc, "kill", id, "KILL").Run() != nil {
			return cmd.Process.Kill()
		}
		return nil
	}
	cmd.WaitDelay = 10 * time.Second
	res, err := run(cmd)
	res.ID = id
	if ctx.Err() != nil {
		t.Fatalf("runc run %s: timed out after %v; stdout: %s; stderr: %s", id, Timeout, res.Stdout, res.Stderr)
	}
	if err != nil {
		t.Fatalf("runc run %s: %v", id, err)
	}
	if msgs := runcErrors(t, logPath); msgs != "" {
		return res, fmt.Errorf("runc run %s failed (exit %d): %s; stderr: %s", id, res.ExitCode, msgs, res.Stderr)
	}
	return res, nil
}

// runcErrors returns the error-level messages in runc's JSON log.
func runcErrors(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatalf("runc log: %v", err)
	}
	var msgs []string
	for _, line := range strings.Split(string(data), "\n") {
		var entry struct{ Level, Msg string }
		if json.Unmarshal([]byte(line), &entry) == nil && (entry.Level == "error" || entry.Level == "fatal") {
			msgs = append(msgs, entry.Msg)
		}
	}
	return strings.Join(msgs, "; ")
}

// PodmanImage imports a busybox rootfs (plus files, see Rootfs) into podman under a
// unique local tag, removed in cleanup, and returns the image reference.
func PodmanImage(t testing.TB, files map[string]string) string {
	t.Helper()
	testenv.RequireRoot(t)
	podman := testenv.RequireCommand(t, "podman")
	tar := testenv.RequireCommand(t, "tar")

	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	Rootfs(t, rootfs, files)
	archive := filepath.Join(dir, "rootfs.tar")
	mustRun(t, "podman image", exec.Command(tar, "--numeric-owner", "-C", rootfs, "-cf", archive, "."))

	ref := "localhost/syscage-rt:" + uniqueName()
	mustRun(t, "podman image", exec.Command(podman, "import", "--quiet", archive, ref))
	t.Cleanup(func() {
		if res, err := run(exec.Command(podman, "rmi", "--force", ref)); err != nil || res.ExitCode != 0 {
			t.Errorf("cleanup: podman rmi %s: %v (exit %d): %s", ref, err, res.ExitCode, res.Stderr)
		}
	})
	return ref
}

// PodmanRun runs cmd in image with `podman run`, a unique --name and the flags this
// machine needs, then extra (any podman run flags, including the global ones such
// as --hooks-dir, which podman also accepts after `run`). As with RuncRun, a
// container that podman or runc could not start fails the test.
func PodmanRun(t testing.TB, image string, extra []string, cmd ...string) Result {
	t.Helper()
	res, err := PodmanTry(t, image, extra, cmd...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// PodmanTry is PodmanRun for a container that is expected not to start: podman's
// own failure is returned as an error instead of failing the test.
func PodmanTry(t testing.TB, image string, extra []string, cmd ...string) (Result, error) {
	t.Helper()
	testenv.RequireRoot(t)
	podman := testenv.RequireCommand(t, "podman")

	name := uniqueName()
	t.Cleanup(func() {
		if res, err := run(exec.Command(podman, "rm", "--force", "--ignore", "--time", "0", name)); err != nil || res.ExitCode != 0 {
			t.Errorf("cleanup: podman rm %s: %v (exit %d): %s", name, err, res.ExitCode, res.Stderr)
		}
	})

	// Podman's defaults work as root on the VM without a containers.conf: with no
	// systemd it picks the cgroupfs manager (cgroup2 path /libpod_parent/libpod-<id>)
	// and the file events logger, and overlay storage in /var/lib/containers. Only
	// these flags are needed:
	args := []string{
		// crun, should it be installed, refuses the hybrid cgroup layout.
		"--runtime", "runc",
		"run", "--rm", "--name", name,
		// The image is local; never let a missing tag turn into a registry lookup.
		"--pull", "never",
		// The default bridge also works here, but has netavark create a bridge and
		// firewall rules on the host; tests need only loopback, which "none" keeps up.
		"--network", "none",
	}
	// Podman's default rlimits (nofile 1048576) exceed the hard limits, and raising a
	// hard limit needs CAP_SYS_RESOURCE, which the sandbox lacks; runc init then fails
	// with EPERM.
	args = append(args, Ulimits(t)...)
	args = append(args, extra...)
	args = append(args, image)
	args = append(args, cmd...)

	// Killing the podman client would leave the container running under conmon.
	return runClient(t, "podman", name, func(ctx context.Context) *exec.Cmd { return exec.CommandContext(ctx, podman, args...) },
		func() *exec.Cmd { return exec.Command(podman, "kill", name) }, podmanFailed)
}

// runClient runs a container runtime's client (tool) for container name, within
// Timeout. On timeout it kills the container with kill, then the client: the
// client's death alone would leave the container running. The tool's own
// failures (failed) are returned as an error; the container's are its Result.
func runClient(t testing.TB, tool, name string, client func(context.Context) *exec.Cmd, kill func() *exec.Cmd, failed func(Result) bool) (Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	c := client(ctx)
	c.Cancel = func() error {
		if kill().Run() != nil {
			return c.Process.Kill()
		}
		return nil
	}
	c.WaitDelay = 15 * time.Second
	res, err := run(c)
	res.ID = name
	if ctx.Err() != nil {
		t.Fatalf("%s run %s: timed out after %v; stdout: %s; stderr: %s", tool, name, Timeout, res.Stdout, res.Stderr)
	}
	if err != nil {
		t.Fatalf("%s run %s: %v", tool, name, err)
	}
	if failed(res) {
		return res, fmt.Errorf("%s run %s failed (exit %d): %s", tool, name, res.ExitCode, res.Stderr)
	}
	return res, nil
}

// podmanFailed tells podman's own failures from the container's: podman reserves
// exit 125 (podman failed), 126 (command not executable) and 127 (command not
// found), and its message, the last thing on stderr, begins with "Error: ". A shell
// in the container exiting 127 for an unknown command prints "sh: ..." instead.
func podmanFailed(res Result) bool {
	if res.ExitCode < 125 || res.ExitCode > 127 {
		return false
	}
	lines := strings.Split(strings.TrimSpace(res.Stderr), "\n")
	return strings.HasPrefix(lines[len(lines)-1], "Error: ")
}

// Ulimits returns --ulimit flags pinning nofile and nproc to what podman can set.
func Ulimits(t testing.TB) []string {
	t.Helper()
	var nofile, nproc unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if err := unix.Getrlimit(unix.RLIMIT_NPROC, &nproc); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	// Podman 4.3 lowers its own RLIMIT_NPROC to 32768 at startup (strace shows the
	// setrlimit), so conmon and runc inherit that hard limit whatever ours is. Passing
	// only --ulimit nofile would also drop podman's nproc default and bring back its
	// root default of 4194304.
	nf := min(nofile.Max, 1<<20)
	np := min(nproc.Max, 32768)
	return []string{
		"--ulimit", fmt.Sprintf("nofile=%d:%d", nf, nf),
		"--ulimit", fmt.Sprintf("nproc=%d:%d", np, np),
	}
}

// run runs cmd, capturing its output. The container's exit code is part of the
// Result; only a command that could not run or was killed by a signal is an error.
func run(cmd *exec.Cmd) (Result, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.Exited() {
		res.ExitCode = exit.ExitCode()
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, res.Stderr)
	}
	return res, nil
}

// mustRun runs a setup command (runc spec, tar, podman import); any failure is fatal.
func mustRun(t testing.TB, what string, cmd *exec.Cmd) {
	t.Helper()
	res, err := run(cmd)
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("%s: exit status %d: %s", strings.Join(cmd.Args, " "), res.ExitCode, res.Stderr)
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// uniqueName is a container id, container name and image tag that no other run (or
// engineer's test on the same machine) will pick, so cleanup removes only ours.
func uniqueName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return "syscage-rt-" + hex.EncodeToString(b)
}
