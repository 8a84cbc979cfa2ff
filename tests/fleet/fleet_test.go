package fleet

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/syscage/syscage/hooks/kubeapi"
	"github.com/syscage/syscage/tests/testenv"
)

var (
	nodesFlag       = flag.String("fleet.nodes", "100", "comma-separated `sizes` of the simulated fleets, in nodes")
	containersFlag  = flag.Int("fleet.containers", 10, "containers in each node's pod")
	durationFlag    = flag.Duration("fleet.duration", 30*time.Second, "the recording's --duration")
	stopProfileFlag = flag.String("fleet.stopprofile", "", "write a CPU profile of the agents from 2 s before the recording's end to the plugin's exit to `FILE`-NODES.pprof, and the API server's for 16 s from then to FILE-NODES-apiserver.pprof")
	apiProfileFlag  = flag.String("fleet.apiprofile", "", "write a CPU profile of the API server during the recording to `FILE`-NODES.pprof")
)

// maxObject is the ceiling on any object syscage writes: well under
// etcd's 1.5 MiB, as the security-profiles-operator's users learnt.
const maxObject = 256 << 10

// TestFleet simulates fleets of -fleet.nodes nodes against a real API server
// and etcd, records the workload on every node with `kubectl syscage record`,
// and checks the structural targets: no object over 256 KiB, and no node
// publishing its results more often than the agent's rate limit (once per
// 5 s, plus once for each container that starts or exits). Time figures are
// reported, not asserted: `make bench-k8s` runs it at larger sizes.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an API server and etcd")
	}
	binDir := filepath.Join(cmpOr(os.Getenv("K8SE2E_DIR"), "/var/tmp/k8s-e2e"), "bin")
	if _, err := os.Stat(filepath.Join(binDir, "kube-apiserver")); err != nil {
		testenv.Unavailable(t, "the cluster harness's kube-apiserver is not built (make k8s-build): %v", err)
	}
	testenv.RequireCommand(t, "etcd")
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(t.TempDir(), "kubectl-syscage")
	build := exec.Command("go", "build", "-o", plugin, "./cmd/kubectl-syscage")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the plugin: %v\n%s", err, out)
	}
	var summaries []string
	for _, s := range strings.Split(*nodesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			t.Fatalf("-fleet.nodes %q: give sizes in nodes, e.g. 100,1000", *nodesFlag)
		}
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 170*time.Minute)
			defer cancel()
			dir, err := os.MkdirTemp("", "syscage-fleet-")
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(dir)
			cfg := Config{
				Nodes: n, Containers: *containersFlag, Duration: *durationFlag,
				BinDir: binDir, Plugin: plugin, Root: root, Dir: dir, MemDir: memDir(t), Log: testWriter{t},
			}
			if *apiProfileFlag != "" {
				cfg.APIProfile = fmt.Sprintf("%s-%d.pprof", *apiProfileFlag, n)
			}
			if *stopProfileFlag != "" {
				cfg.StopProfile = fmt.Sprintf("%s-%d.pprof", *stopProfileFlag, n)
			}
			res, err := Run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			summaries = append(summaries, res.Summary())
			t.Log("\n" + res.Summary())
			if res.Admitted != n**containersFlag {
				t.Errorf("%d of %d containers admitted before the recording stopped", res.Admitted, n**containersFlag)
			}
			if res.Largest.Bytes > maxObject {
				t.Errorf("%s %s is %d bytes, over %d", res.Largest.Kind, res.Largest.Name, res.Largest.Bytes, maxObject)
			}
			// In the steady part of the recording each node publishes once per
			// interval, and once more for the container that exits in it.
			limit := float64(n) * (res.Steady.Seconds()/5 + 1 + 1)
			if got := res.Writes["syscallnoderesults"]; got == 0 {
				t.Errorf("no node published its results")
			}
			if res.SteadyWrites > limit {
				t.Errorf("%.0f writes in the last %s of the recording: more than the rate limit allows %d nodes (%.0f)", res.SteadyWrites, res.Steady, n, limit)
			}
			// install's FlowSchema puts the agents' writes of their results at
			// a priority level of their own.
			if got := res.Writes["syscallnoderesults"]; res.AgentLevel < got {
				t.Errorf("the API server served %.0f requests at priority level %s, fewer than the agents' %.0f writes of their results", res.AgentLevel, kubeapi.AgentName, got)
			}
			if res.Profiles != *containersFlag {
				t.Errorf("%d profiles written, want one per container (%d)", res.Profiles, *containersFlag)
			}
		})
	}
	if len(summaries) > 1 {
		t.Log("\n" + strings.Join(summaries, ""))
	}
}

// memDir is a scratch directory on /dev/shm, if that is a tmpfs, removed
// when the test ends; else none.
func memDir(t *testing.T) string {
	var st unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		t.Logf("/dev/shm is no tmpfs: the nodes' run directories and cgroups go on disk")
		return ""
	}
	dir, err := os.MkdirTemp("/dev/shm", "syscage-fleet-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// testWriter logs each write as a line of the test's output.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
