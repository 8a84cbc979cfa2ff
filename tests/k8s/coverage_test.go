package k8s

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/syscage/syscage/hooks/kubeapi"
	"github.com/syscage/syscage/profile"
)

// coverageOf checks, after record -o DIR/ and apply --profile DIR of a workload
// with at least minRuns runs of each container, that record wrote each
// container's coverage beside its profile (every count below the runs, every
// call one of the profile's), and that apply put the same counts into the
// SyscallProfile NAME-CONTAINER. For perContainer, after its first apply:
// coverageOf(t, c, ns, dir, "shop", []string{"init", "server", "client"}, 2).
func coverageOf(t *testing.T, c *cluster, ns, dir, name string, containers []string, minRuns int) {
	t.Helper()
	for _, ctr := range containers {
		file := filepath.Join(dir, ctr+".json")
		data, err := os.ReadFile(file + ".coverage")
		if err != nil {
			t.Errorf("container %s: record wrote no coverage beside its profile: %v", ctr, err)
			continue
		}
		cov, err := profile.ParseCoverage(file+".coverage", data)
		if err != nil {
			t.Errorf("container %s: %v", ctr, err)
			continue
		}
		if cov.Runs < minRuns {
			t.Errorf("container %s: coverage over %d runs, want at least %d", ctr, cov.Runs, minRuns)
		}
		calls := map[string]bool{}
		for _, call := range profile.CoverageCalls(load(t, file)) {
			calls[call] = true
		}
		for call := range cov.Calls {
			if !calls[call] {
				t.Errorf("container %s: coverage counts %q, which its profile does not have", ctr, call)
			}
		}
		t.Logf("figure: container %s: %d runs, %d of %d calls made by fewer than all", ctr, cov.Runs, len(cov.Calls), len(calls))

		var sp kubeapi.SyscallProfile
		out := c.kc(t, "-n", ns, "get", kubeapi.Profiles, name+"-"+ctr, "-o", "json")
		if err := json.Unmarshal([]byte(out), &sp); err != nil {
			t.Fatalf("SyscallProfile %s-%s: %v\n%s", name, ctr, err, out)
		}
		if diff := cmp.Diff(cov, sp.Spec.Coverage); diff != "" {
			t.Errorf("SyscallProfile %s-%s: spec.coverage is not the file's (-file +object):\n%s", name, ctr, diff)
		}
	}
}
