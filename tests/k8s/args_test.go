package k8s

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syscage/syscage/hooks/kubeapi"
	"github.com/syscage/syscage/tests/workload"
)

// argsJob runs the argument workload (internal/workload/testdata/args.c) as a Job.
const argsJob = `apiVersion: batch/v1
kind: Job
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      securityContext: {seccompProfile: {%[3]s}}
      containers:
      - name: args
        image: localhost/syscage-args:e2e
        imagePullPolicy: Never
        command: [/args, %[4]s]
`

// argsRules records the argument workload's benign mode as a Job under the
// runtime's default filter (so the recorder never sees clone3: the filter answers
// it first), replays it through the kubelet under its profile, and runs every
// attack under the profile, and unconfined to show each refusal is the profile's.
func argsRules(t *testing.T, c *cluster, ns, tmp string) {
	bin := workload.BuildArgs(t, t.TempDir())
	root := filepath.Join(tmp, "args-rootfs")
	os.MkdirAll(root, 0o755)
	copyFile(t, bin, filepath.Join(root, "args"), 0o755)
	tar := filepath.Join(tmp, "args.tar")
	run(t, "python3", filepath.Join(filepath.Dir(c.upSh), "mkimage.py"), root, "localhost/syscage-args:e2e", tar, "/args")
	c.importImage(t, tar)
	defer c.try(c.kubectl, "-n", ns, "delete", "jobs", "--all", "--wait=true", "--timeout=60s")

	manifest := filepath.Join(tmp, "args-job.yaml")
	os.WriteFile(manifest, []byte(fmt.Sprintf(argsJob, ns, "args-build", "type: RuntimeDefault", "benign")), 0o644)
	dir := filepath.Join(tmp, "args") + "/"
	out, code := c.syscage(t, "record", "--create", "-f", manifest, "-o", dir, "--timeout", "3m")
	t.Logf("record --create:\n%s", out)
	if code != 0 {
		t.Fatalf("record: exit %d", code)
	}
	p := load(t, filepath.Join(dir, "args.json"))
	conditional := 0
	for _, sc := range p.Syscalls {
		if len(sc.Args) > 0 {
			conditional++
		}
	}
	if conditional == 0 {
		t.Fatalf("the Job's profile has no argument rules")
	}
	if out, code := c.syscage(t, "apply", "-n", ns, "job/args-build", "--profile", dir, "--timeout", "2m"); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, out)
	}
	lp := kubeapi.LocalhostProfile(ns, "args-build-args")
	profile := "type: Localhost, localhostProfile: " + lp
	logsOf := func(name, sc, mode string, want string) string {
		t.Helper()
		apply(t, c, fmt.Sprintf(argsJob, ns, name, sc, mode))
		if _, err := c.try(c.kubectl, "-n", ns, "wait", "--for=condition="+want, "job/"+name, "--timeout=90s"); err != nil {
			logs, _ := c.try(c.kubectl, "-n", ns, "logs", "job/"+name)
			t.Fatalf("job %s (%s) did not end %s: %v\n%s", name, mode, want, err, logs)
		}
		logs, err := c.try(c.kubectl, "-n", ns, "logs", "job/"+name)
		if err != nil {
			t.Fatalf("logs of %s: %v", name, err)
		}
		return logs
	}
	// The benign mode replays under its profile: threads, sockets, ioctl, all.
	if logs := logsOf("args-replay", profile, "benign", "complete"); !strings.Contains(logs, "ok") {
		t.Errorf("the benign mode under its profile: %q", logs)
	}
	unconfined := logsOf("args-unconfined", "type: Unconfined", "attack, all", "complete")
	confined := logsOf("args-attacks", profile, "attack, all", "complete")
	for _, a := range workload.Attacks {
		u, got := result(unconfined, a.Name), result(confined, a.Name)
		if u == fmt.Sprintf("errno %d", a.Refusal) && a.Name != "af-packet" {
			t.Errorf("unconfined, %s already gets %s: the test cannot tell the profile's refusal", a.Name, u)
		}
		if want := fmt.Sprintf("errno %d", a.Refusal); got != want {
			t.Errorf("under the recorded profile %s got %q (unconfined %q), want %s", a.Name, got, u, want)
		}
	}
	t.Logf("unconfined:\n%s\nunder the profile:\n%s", unconfined, confined)
}

// result is what `args attack` printed for one attack: "ok" or "errno N".
func result(logs, name string) string {
	for _, line := range strings.Split(logs, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), name+": "); ok {
			return rest
		}
	}
	return "(nothing printed)"
}
