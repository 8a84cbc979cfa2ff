package rt

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/syscage/syscage/tests/testenv"
)

// Docker is a dockerd of a test's own: its own data and exec roots, socket, pid
// file, daemon.json and containerd, so that nothing of a system Docker (or of a
// containerd another test runs at the default socket) is touched. Debian 12's
// engine is 20.10 (API 1.41); it starts in about two seconds.
type Docker struct {
	Host   string // DOCKER_HOST
	Client string // the docker client used
	dir    string
	env    []string
}

// StartDocker starts containerd and dockerd with runtimes (name -> path, written to
// the daemon's own daemon.json as a user would) and stops both, and removes
// everything they made, when the test ends.
func StartDocker(t testing.TB, runtimes map[string]string) *Docker {
	t.Helper()
	testenv.RequireRoot(t)
	dockerd := testenv.RequireCommand(t, "dockerd")
	containerd := testenv.RequireCommand(t, "containerd")
	testenv.RequireCommand(t, "runc")
	client := dockerClient(t)

	// A short path: the sockets below it must fit in sun_path (108 bytes).
	dir, err := os.MkdirTemp("", "sc-dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	d := &Docker{Host: "unix://" + filepath.Join(dir, "docker.sock"), Client: client, dir: dir}
	d.env = append(os.Environ(), "DOCKER_HOST="+d.Host, "DOCKER_CONFIG="+filepath.Join(dir, "client"))
	t.Cleanup(func() { d.remove(t) })

	// dockerd would use a containerd it finds at /run/containerd/containerd.sock,
	// and start one of its own only when there is none: give it its own.
	ctrdSock := filepath.Join(dir, "containerd.sock")
	writeFile(t, filepath.Join(dir, "containerd.toml"), "version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n")
	d.start(t, "containerd", exec.Command(containerd,
		"--config", filepath.Join(dir, "containerd.toml"), "--root", filepath.Join(dir, "containerd"),
		"--state", filepath.Join(dir, "containerd-state"), "--address", ctrdSock), func() bool {
		_, err := os.Stat(ctrdSock)
		return err == nil
	})

	rts := map[string]any{}
	for name, path := range runtimes {
		rts[name] = map[string]string{"path": path}
	}
	cfg, _ := json.MarshalIndent(map[string]any{"runtimes": rts}, "", "  ")
	writeFile(t, filepath.Join(dir, "daemon.json"), string(cfg))
	d.start(t, "dockerd", exec.Command(dockerd,
		"--config-file", filepath.Join(dir, "daemon.json"),
		"--data-root", filepath.Join(dir, "root"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", d.Host, "--pidfile", filepath.Join(dir, "docker.pid"), "--containerd", ctrdSock,
		"--iptables=false", "--ip-masq=false", "--bridge=none"), func() bool {
		return exec.Command(client, "-H", d.Host, "version").Run() == nil
	})
	return d
}

// start runs a daemon with its output in dir and waits until ready says it is.
func (d *Docker) start(t testing.TB, name string, cmd *exec.Cmd, ready func() bool) {
	t.Helper()
	logf, err := os.Create(filepath.Join(d.dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	pid := cmd.Process.Pid
	os.WriteFile(filepath.Join(d.dir, name+".started"), []byte(strconv.Itoa(pid)), 0o644)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for deadline := time.Now().Add(30 * time.Second); !ready(); time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("%s exited at start: %v\n%s", name, err, tail(log))
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("%s not ready after 30s:\n%s", name, tail(log))
		}
	}
}

func tail(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// remove stops dockerd, then containerd, each by the pid this package started,
// and removes their directory with whatever they left mounted in it.
func (d *Docker) remove(t testing.TB) {
	for _, name := range []string{"dockerd", "containerd"} {
		b, err := os.ReadFile(filepath.Join(d.dir, name+".started"))
		if err != nil {
			continue
		}
		pid, _ := strconv.Atoi(string(b))
		if pid <= 0 || syscall.Kill(pid, syscall.SIGTERM) != nil {
			continue
		}
		deadline := time.Now().Add(20 * time.Second)
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Errorf("cleanup: %s (pid %d) still running 20s after SIGTERM", name, pid)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if t.Failed() {
		for _, name := range []string{"dockerd", "containerd"} {
			if log, err := os.ReadFile(filepath.Join(d.dir, name+".log")); err == nil {
				t.Logf("%s log (last lines):\n%s", name, tail(log))
			}
		}
	}
	// Deepest first: overlay and shm mounts, and the netns bind mounts.
	mounts := mountsBelow(d.dir)
	slices.Reverse(mounts)
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			t.Errorf("cleanup: unmounting %s: %v", m, err)
		}
	}
	if err := os.RemoveAll(d.dir); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

func mountsBelow(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			out = append(out, fields[4])
		}
	}
	return out
}

// dockerClient is Debian's client of the engine when present, else the docker
// on PATH (a newer client negotiates down to the engine's API).
func dockerClient(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/docker"); err == nil {
		return "/usr/bin/docker"
	}
	return testenv.RequireCommand(t, "docker")
}

// Command is a docker client command against this daemon.
func (d *Docker) Command(ctx context.Context, client string, args ...string) *exec.Cmd {
	if client == "" {
		client = d.Client
	}
	cmd := exec.CommandContext(ctx, client, args...)
	cmd.Env = d.env
	return cmd
}

// APIVersion is the engine's API version, as major and minor.
func (d *Docker) APIVersion(t testing.TB) (int, int) {
	t.Helper()
	out, err := d.Command(context.Background(), "", "version", "--format", "{{.Server.APIVersion}}").Output()
	if err != nil {
		t.Fatalf("docker version: %v", err)
	}
	v := strings.TrimSpace(string(out))
	maj, min, _ := strings.Cut(v, ".")
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if err1 != nil || err2 != nil {
		t.Fatalf("docker version: API version %q", v)
	}
	return a, b
}

// ClientWith returns a docker client on this machine whose `run` has flag, or "".
func (d *Docker) ClientWith(flag string) string {
	for _, c := range []string{"/usr/local/bin/docker", "/usr/bin/docker"} {
		out, err := d.Command(context.Background(), c, "run", "--help").Output()
		if err == nil && strings.Contains(string(out), flag) {
			return c
		}
	}
	return ""
}

// Image imports a busybox rootfs (plus files, see Rootfs) with `docker import` and
// returns its reference; it goes with the daemon's data root.
func (d *Docker) Image(t testing.TB, files map[string]string) string {
	t.Helper()
	tar := testenv.RequireCommand(t, "tar")
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	Rootfs(t, rootfs, files)
	archive := filepath.Join(dir, "rootfs.tar")
	mustRun(t, "docker image", exec.Command(tar, "--numeric-owner", "-C", rootfs, "-cf", archive, "."))
	ref := "localhost/syscage-rt:" + uniqueName()
	mustRun(t, "docker image", d.Command(context.Background(), "", "import", archive, ref))
	return ref
}

// Run is `docker run --rm` of cmd in image with a unique --name, no network and
// extra flags (--runtime, -e, --security-opt…). A container that Docker could not
// start fails the test.
func (d *Docker) Run(t testing.TB, image string, extra []string, cmd ...string) Result {
	t.Helper()
	res, err := d.Try(t, "", image, extra, cmd...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Try is Run with a given client ("" for the default) for a container that is
// expected not to start: Docker's own failure is returned as an error.
func (d *Docker) Try(t testing.TB, client, image string, extra []string, cmd ...string) (Result, error) {
	t.Helper()
	name := uniqueName()
	t.Cleanup(func() {
		res, err := run(d.Command(context.Background(), "", "rm", "--force", name))
		if err != nil || res.ExitCode != 0 && !strings.Contains(res.Stderr, "No such container") {
			t.Errorf("cleanup: docker rm %s: %v (exit %d): %s", name, err, res.ExitCode, res.Stderr)
		}
	})
	args := append([]string{"run", "--rm", "--name", name, "--network", "none"}, extra...)
	args = append(append(args, image), cmd...)
	// Killing the client would leave the container running in the daemon.
	return runClient(t, "docker", name, func(ctx context.Context) *exec.Cmd { return d.Command(ctx, client, args...) },
		func() *exec.Cmd { return d.Command(context.Background(), "", "kill", name) }, dockerFailed)
}

// dockerFailed tells Docker's own failures from the container's: docker run exits
// 125-127 when the daemon or the runtime failed, and says so on stderr.
func dockerFailed(res Result) bool {
	return res.ExitCode >= 125 && res.ExitCode <= 127 &&
		(strings.Contains(res.Stderr, "Error response from daemon") || strings.HasPrefix(res.Stderr, "docker: "))
}
