// Package k8s holds syscage's Kubernetes end-to-end test: the kubectl plugin and
// the node agents on a real cluster (tests/k8s/cluster/up.sh: kubelet, containerd
// 1.6 with runc, bridge CNI) of two nodes on one machine, the second in mount and
// network namespaces of its own (SYSCAGE_K8S_NODES=1 for one), with containerd
// running runc through syscage-runc so that selected containers are recorded from
// their first instruction.
package k8s

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syscage/syscage/tests/testenv"
)

// cluster is a running cluster whose containerd runs syscage-runc.
type cluster struct {
	dir        string // K8SE2E_DIR
	upSh       string
	kubeconfig string
	kubectl    string
	plugin     string // kubectl-syscage
	image      string
	seccompDir string // the kubelet's, as each node sees it
	nodes      []node
}

// node is one of the cluster's nodes, its paths as seen from the host.
type node struct {
	name       string
	seccompDir string // its kubelet's seccomp directory
	runDir     string // its /run
	sock       string // its containerd's socket
	mntns      string // its mount namespace, "" for the host's
}

// run is where a path below the node's /run is seen from the host.
func (n node) run(p string) string {
	rel, err := filepath.Rel("/run", p)
	if err != nil || strings.HasPrefix(rel, "..") {
		return p
	}
	return filepath.Join(n.runDir, rel)
}

// wantNodes is the number of nodes the test brings up: SYSCAGE_K8S_NODES, 2 unless set.
func wantNodes(t *testing.T) int {
	v := envOr("SYSCAGE_K8S_NODES", "2")
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 2 {
		t.Fatalf("SYSCAGE_K8S_NODES=%q: want 1 or 2", v)
	}
	return n
}

// hostDir holds the syscage binary containerd runs as syscage-runc, and the hook
// it injects, at a path that outlives the test's temporary directories.
const hostDir = "/usr/local/libexec/syscage-e2e"

// findUpSh finds the cluster script: SYSCAGE_K8S_UP, or the repository's own,
// tests/k8s/cluster/up.sh.
func findUpSh() (string, error) {
	if p := os.Getenv("SYSCAGE_K8S_UP"); p != "" {
		return p, nil
	}
	// From the package's directory, where go test runs it: runtime.Caller would
	// give a module path, not a file, under -trimpath (as make runs it in CI).
	p := filepath.Join("cluster", "up.sh")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("the cluster script: %w (set SYSCAGE_K8S_UP to another)", err)
	}
	return filepath.Abs(p)
}

// setup builds syscage and the plugin, brings the cluster up (building its
// binaries the first time, ~15 min) with syscage-runc as containerd's runc, and
// imports the agent's image. A cluster the test brought up is taken down at the end.
func setup(t *testing.T) *cluster {
	testenv.RequireRoot(t)
	for _, c := range []string{"ctr", "runc", "python3", "iptables"} {
		testenv.RequireCommand(t, c)
	}
	upSh, err := findUpSh()
	if err != nil {
		testenv.Unavailable(t, "%v", err)
	}
	c := &cluster{
		upSh:       upSh,
		dir:        envOr("K8SE2E_DIR", "/var/tmp/k8s-e2e"),
		seccompDir: filepath.Join(envOr("KUBELET_ROOT", "/var/lib/kubelet"), "seccomp"),
	}
	c.kubeconfig = filepath.Join(c.dir, "pki", "admin.kubeconfig")
	c.kubectl = filepath.Join(c.dir, "bin", "kubectl")

	tmp := t.TempDir()
	c.plugin = filepath.Join(tmp, "kubectl-syscage")
	goBuild(t, c.plugin, "./cmd/kubectl-syscage")
	built := filepath.Join(tmp, "syscage-agent")
	goBuild(t, built, "./cmd/syscage-agent")
	// containerd's runc: syscage-runc, a link to syscage-hook (as installed),
	// with syscage-recorder beside it, each replaced atomically so a runc call
	// in flight keeps its own.
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"syscage-hook", "syscage-recorder"} {
		built := filepath.Join(tmp, name)
		goBuild(t, built, "./cmd/"+name)
		dst := filepath.Join(hostDir, name)
		copyFile(t, built, dst+".new", 0o755)
		if err := os.Rename(dst+".new", dst); err != nil {
			t.Fatal(err)
		}
	}
	wrapper := filepath.Join(hostDir, "syscage-runc")
	os.Remove(wrapper)
	if err := os.Symlink("syscage-hook", wrapper); err != nil {
		t.Fatal(err)
	}

	if _, err := os.Stat(filepath.Join(c.dir, "bin", "kubelet")); err != nil {
		t.Logf("building the cluster's binaries (first time on this machine: ~15 min)")
		c.up(t, "build")
	}
	want := wantNodes(t)
	if c.isUp() {
		cfg, _ := os.ReadFile(filepath.Join(c.dir, "containerd", "config.toml"))
		if !bytes.Contains(cfg, []byte(wrapper)) {
			t.Fatalf("a cluster is up whose containerd does not run %s: take it down (%s down) and run the test again", wrapper, upSh)
		}
		if c.nodes = readNodes(t, c.dir); len(c.nodes) != want {
			t.Fatalf("a cluster of %d nodes is up, and SYSCAGE_K8S_NODES asks for %d: take it down (%s down) and run the test again", len(c.nodes), want, upSh)
		}
		t.Logf("using the cluster that is up")
	} else {
		// Registered first, so that a cluster that comes up halfway goes down too.
		t.Cleanup(func() {
			if os.Getenv("SYSCAGE_K8S_KEEP") == "1" {
				t.Logf("SYSCAGE_K8S_KEEP=1: leaving the cluster up")
				return
			}
			c.up(t, "down")
			// containerds ran runc through it; with the cluster down, it goes too.
			os.RemoveAll(hostDir)
			// The kubelet's QoS cgroups, which the script leaves, empty.
			dirs, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
			for _, d := range dirs {
				removeCgroupTree(d)
			}
		})
		c.up(t, "up", "NODES="+strconv.Itoa(want))
		if c.nodes = readNodes(t, c.dir); len(c.nodes) != want {
			t.Fatalf("%s up brought up %d nodes, want %d", upSh, len(c.nodes), want)
		}
	}
	for _, n := range c.nodes {
		t.Logf("node %s: seccomp profiles in %s, /run in %s", n.name, n.seccompDir, n.runDir)
	}

	// The agent's image: the static syscage-agent alone, tagged by its digest so
	// that a new build rolls the agent.
	sum := sha256.Sum256(readFile(t, built))
	c.image = "localhost/syscage:e2e-" + hex.EncodeToString(sum[:6])
	root := filepath.Join(tmp, "rootfs")
	os.MkdirAll(root, 0o755)
	copyFile(t, built, filepath.Join(root, "syscage-agent"), 0o755)
	tar := filepath.Join(tmp, "syscage.tar")
	run(t, "python3", filepath.Join(filepath.Dir(upSh), "mkimage.py"), root, c.image, tar, "/syscage-agent")
	c.importImage(t, tar)
	return c
}

// readNodes reads the nodes the cluster script brought up, from DIR/nodes.
func readNodes(t *testing.T, dir string) []node {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "nodes"))
	if err != nil {
		t.Fatalf("the cluster's list of nodes: %v (a cluster brought up by an older script: take it down and run the test again)", err)
	}
	var nodes []node
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(l)
		if len(f) != 5 {
			t.Fatalf("%s: line %q: want NAME KUBELET_ROOT RUN SOCKET MOUNT_NAMESPACE", filepath.Join(dir, "nodes"), l)
		}
		n := node{name: f[0], seccompDir: filepath.Join(f[1], "seccomp"), runDir: f[2], sock: f[3], mntns: f[4]}
		if n.mntns == "-" {
			n.mntns = ""
		}
		nodes = append(nodes, n)
	}
	return nodes
}

// importImage imports an image archive into every node's containerd.
func (c *cluster) importImage(t *testing.T, tar string) {
	t.Helper()
	for _, n := range c.nodes {
		run(t, "ctr", "-a", n.sock, "-n", "k8s.io", "images", "import", tar)
	}
}

// bpffs lists what the node's /sys/fs/bpf holds.
func (c *cluster) bpffs(t *testing.T, n node) string {
	t.Helper()
	out, err := c.inNode(n, "find", "/sys/fs/bpf", "-mindepth", "1").CombinedOutput()
	if err != nil {
		t.Fatalf("listing node %s's /sys/fs/bpf: %v\n%s", n.name, err, out)
	}
	return strings.TrimSpace(string(out))
}

// inNode runs a command in a node's mount namespace.
func (c *cluster) inNode(n node, name string, args ...string) *exec.Cmd {
	if n.mntns == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("nsenter", append([]string{"--mount=" + n.mntns, "--", name}, args...)...)
}

// removeCgroupTree removes a cgroup and its descendants, deepest first; a
// cgroup that still has processes stays.
func removeCgroupTree(root string) {
	var dirs []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Remove(dirs[i])
	}
}

func (c *cluster) isUp() bool {
	cmd := exec.Command(c.kubectl, "--kubeconfig", c.kubeconfig, "--request-timeout=3s", "get", "--raw", "/readyz")
	return cmd.Run() == nil
}

// up runs the cluster script.
func (c *cluster) up(t *testing.T, verb string, env ...string) {
	t.Helper()
	cmd := exec.Command("bash", c.upSh, verb)
	cmd.Env = append(append(os.Environ(), "K8SE2E_DIR="+c.dir, "RUNC_BIN="+filepath.Join(hostDir, "syscage-runc")), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", c.upSh, verb, err, tail(out.String(), 60))
	}
	t.Logf("%s %s: %s", filepath.Base(c.upSh), verb, time.Since(start).Round(100*time.Millisecond))
}

// kc runs kubectl and fails the test on error.
func (c *cluster) kc(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.try(c.kubectl, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// syscage runs the plugin, returning its output and exit code.
func (c *cluster) syscage(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := c.try(c.plugin, args...)
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out, ee.ExitCode()
	case err != nil:
		t.Fatalf("kubectl-syscage %s: %v", strings.Join(args, " "), err)
	}
	return out, 0
}

func (c *cluster) try(bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	// kubectl finds the plugin on PATH, as `kubectl syscage`.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig, "PATH="+filepath.Dir(c.kubectl)+":"+filepath.Dir(c.plugin)+":"+os.Getenv("PATH"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func goBuild(t *testing.T, out, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, b)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	b, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
	}
	return string(b)
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(to, readFile(t, from), mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
}
