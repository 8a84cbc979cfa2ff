package k8s

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/syscage/syscage/hooks/kubeapi"
)

// nodeBound shows that the API server, not the agents by convention, keeps one
// node's agent from writing another node's results: with a token bound to the
// agent's pod (as its own is), a patch of another node's entry in a recording's
// status is refused, and one of its own node's entry goes through.
func nodeBound(t *testing.T, c *cluster, ns string) {
	pod := strings.Fields(c.kc(t, "-n", kubeapi.Namespace, "get", "pods", "-l", "app.kubernetes.io/name="+kubeapi.AgentName,
		"-o", "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName}{\"\\n\"}{end}"))
	if len(pod) < 2 {
		t.Fatalf("no agent pod: %q", pod)
	}
	name, node := pod[0], pod[1]
	token := strings.TrimSpace(c.kc(t, "-n", kubeapi.Namespace, "create", "token", kubeapi.AgentName,
		"--bound-object-kind", "Pod", "--bound-object-name", name, "--duration", "10m"))
	apply(t, c, fmt.Sprintf(`apiVersion: %s
kind: SyscallRecording
metadata: {name: node-bound, namespace: %s}
spec:
  mode: record
  selector: {matchLabels: {syscage-test: selects-nothing}}
`, kubeapi.APIVersion, ns))
	defer c.try(c.kubectl, "-n", ns, "delete", "syscallrecording", "node-bound", "--wait=true")

	kubeconfig, err := os.ReadFile(c.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`server:\s*(\S+)`).FindSubmatch(kubeconfig)
	if m == nil {
		t.Fatalf("no server in %s", c.kubeconfig)
	}
	asAgent := func(entry string) (string, error) {
		return c.try(c.kubectl, "--kubeconfig", os.DevNull, "--server", string(m[1]),
			"--certificate-authority", filepath.Join(c.dir, "pki", "ca.crt"), "--token", token,
			"-n", ns, "patch", "syscallrecording", "node-bound", "--subresource=status", "--type=merge",
			"-p", fmt.Sprintf(`{"status":{"nodes":{%q:{"phase":"Done"}}}}`, entry))
	}
	out, err := asAgent("some-other-node")
	if err == nil || !strings.Contains(out, "may change only its own entry") {
		t.Errorf("the agent of %s wrote another node's entry: %v\n%s", node, err, out)
	}
	if out, err := asAgent(node); err != nil {
		t.Errorf("the agent of %s could not write its own entry: %v\n%s", node, err, out)
	}
	// The same for the node results each agent publishes its part in.
	uid := strings.TrimSpace(c.kc(t, "-n", ns, "get", "syscallrecording", "node-bound", "-o", "jsonpath={.metadata.uid}"))
	createAs := func(resultNode string) (string, error) {
		f := filepath.Join(t.TempDir(), "result.yaml")
		os.WriteFile(f, []byte(fmt.Sprintf(`apiVersion: %s
kind: SyscallNodeResult
metadata:
  name: %s
  namespace: %s
  labels: {%s: %s}
  ownerReferences: [{apiVersion: %s, kind: SyscallRecording, name: node-bound, uid: %s}]
spec: {recording: node-bound, node: %s}
result: {phase: Done, message: "", updated: "", containers: []}
`, kubeapi.APIVersion, kubeapi.NodeResultName("node-bound", resultNode), ns, kubeapi.RecordingLabel, uid, kubeapi.APIVersion, uid, resultNode)), 0o644)
		return c.try(c.kubectl, "--kubeconfig", os.DevNull, "--server", string(m[1]),
			"--certificate-authority", filepath.Join(c.dir, "pki", "ca.crt"), "--token", token, "create", "-f", f)
	}
	if out, err := createAs("some-other-node"); err == nil || !strings.Contains(out, "may write only its own node result") {
		t.Errorf("the agent of %s created another node's result: %v\n%s", node, err, out)
	}
}

// noStuckDeletion deletes a SyscallProfile the node holds: it goes at once (no
// finalizers), and the agent removes the file.
func noStuckDeletion(t *testing.T, c *cluster, ns string) {
	apply(t, c, fmt.Sprintf(`apiVersion: %s
kind: SyscallProfile
metadata: {name: goes, namespace: %s}
spec:
  profile: {defaultAction: SCMP_ACT_ERRNO, syscalls: [{names: [read], action: SCMP_ACT_ALLOW}]}
`, kubeapi.APIVersion, ns))
	var files []string
	for _, n := range c.nodes {
		files = append(files, filepath.Join(n.seccompDir, kubeapi.LocalhostProfile(ns, "goes")))
	}
	for _, file := range files {
		waitFor(t, "the agent to write "+file, 30*time.Second, func() (bool, string) { _, err := os.Stat(file); return err == nil, fmt.Sprint(err) })
	}
	if fins := c.kc(t, "-n", ns, "get", "syscallprofile", "goes", "-o", "jsonpath={.metadata.finalizers}"); fins != "" {
		t.Errorf("the profile carries finalizers: %s", fins)
	}
	start := time.Now()
	c.kc(t, "-n", ns, "delete", "syscallprofile", "goes", "--wait=true", "--timeout=20s")
	t.Logf("deleting a profile a node holds took %s", time.Since(start).Round(time.Millisecond))
	for _, file := range files {
		waitFor(t, "the agent to remove "+file, 30*time.Second, func() (bool, string) { _, err := os.Stat(file); return os.IsNotExist(err), fmt.Sprint(err) })
	}
}
