package k8s

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
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
// agent's pod (as its own is), creating another node's SyscallNodeStatus or
// SyscallNodeResult is refused, and its own node's status goes through; so is
// a final answer (a Lease) of another node, or a Lease no recording owns.
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
	asAgent := func(args ...string) (string, error) {
		return c.try(c.kubectl, append([]string{"--kubeconfig", os.DevNull, "--server", string(m[1]),
			"--certificate-authority", filepath.Join(c.dir, "pki", "ca.crt"), "--token", token}, args...)...)
	}
	// A node status, named after the node as the agent writes it, in a namespace
	// of its own where no node holds a profile.
	bound := ns + "-bound"
	c.kc(t, "create", "namespace", bound)
	defer c.try(c.kubectl, "delete", "namespace", bound, "--wait=false")
	statusOf := func(statusNode string) string {
		f := filepath.Join(t.TempDir(), "status.yaml")
		os.WriteFile(f, []byte(fmt.Sprintf(`apiVersion: %s
kind: SyscallNodeStatus
metadata: {name: %s, namespace: %s}
spec: {node: %s}
profiles: {x: {digest: "sha256:x", error: "", updated: ""}}
`, kubeapi.APIVersion, statusNode, bound, statusNode)), 0o644)
		return f
	}
	if out, err := asAgent("create", "-f", statusOf("some-other-node")); err == nil || !strings.Contains(out, "may write only its own node's syscallnodestatuses") {
		t.Errorf("the agent of %s created another node's status: %v\n%s", node, err, out)
	}
	if out, err := asAgent("create", "-f", statusOf(node)); err != nil {
		t.Errorf("the agent of %s could not create its own node's status: %v\n%s", node, err, out)
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
		return asAgent("create", "-f", f)
	}
	if out, err := createAs("some-other-node"); err == nil || !strings.Contains(out, "may write only its own node's syscallnoderesults") {
		t.Errorf("the agent of %s created another node's result: %v\n%s", node, err, out)
	}
	// And for the final answers, Leases: its own node's, owned by a recording,
	// and no other Lease (a controller's leader election among them).
	leaseAs := func(name, holder string, owned bool) (string, error) {
		owner := ""
		if owned {
			owner = fmt.Sprintf("\n  ownerReferences: [{apiVersion: %s, kind: SyscallRecording, name: node-bound, uid: %s}]", kubeapi.APIVersion, uid)
		}
		f := filepath.Join(t.TempDir(), "lease.yaml")
		os.WriteFile(f, []byte(fmt.Sprintf(`apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: %s
  namespace: %s
  labels: {%s: %s}%s
spec: {holderIdentity: %s}
`, name, ns, kubeapi.RecordingLabel, uid, owner, holder)), 0o644)
		return asAgent("create", "-f", f)
	}
	if out, err := leaseAs(kubeapi.NodeResultName("node-bound", "some-other-node"), "some-other-node", true); err == nil || !strings.Contains(out, "may write only its own node's final answers") {
		t.Errorf("the agent of %s created another node's final answer: %v\n%s", node, err, out)
	}
	if out, err := leaseAs("not-an-answer", node, false); err == nil || !strings.Contains(out, "may write only its own node's final answers") {
		t.Errorf("the agent of %s created a Lease no recording owns: %v\n%s", node, err, out)
	}
	// A controller's leader election, which the agent's RBAC (patch on Leases)
	// reaches and the policy refuses.
	election := filepath.Join(t.TempDir(), "election.yaml")
	os.WriteFile(election, []byte(fmt.Sprintf(`apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: some-controller, namespace: %s}
spec: {holderIdentity: some-controller-replica}
`, ns)), 0o644)
	c.kc(t, "create", "-f", election)
	defer c.try(c.kubectl, "-n", ns, "delete", "lease", "some-controller")
	// As the agent patches (kubectl patch would read the Lease first, which the
	// agent may not).
	ca, err := os.ReadFile(filepath.Join(c.dir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	req, err := http.NewRequest(http.MethodPatch, string(m[1])+"/apis/coordination.k8s.io/v1/namespaces/"+ns+"/leases/some-controller",
		strings.NewReader(`{"spec":{"holderIdentity":"`+node+`"}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/merge-patch+json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// An admission policy's denial is 422 Invalid.
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "may write only its own node's final answers") {
		t.Errorf("the agent of %s patching a controller's Lease: %s\n%s", node, resp.Status, body)
	}
	if out, err := leaseAs(kubeapi.NodeResultName("node-bound", node), node, true); err != nil {
		t.Errorf("the agent of %s could not write its own node's final answer: %v\n%s", node, err, out)
	}
}

// noStuckDeletion deletes a SyscallProfile the nodes hold: it goes at once (no
// finalizers), and the agents remove the file and their entries. Each node
// reports its copy in a SyscallNodeStatus of its own, owned by its Node, so the
// profile does not grow with the nodes, and a node deleted from the cluster
// takes its statuses along: one owned by a node that is gone is collected.
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
	for _, n := range c.nodes {
		uid := c.kc(t, "get", "node", n.name, "-o", "jsonpath={.metadata.uid}")
		waitFor(t, "node "+n.name+" to report its copy", 30*time.Second, func() (bool, string) {
			out, err := c.try(c.kubectl, "-n", ns, "get", kubeapi.NodeStatuses, n.name, "-o",
				`jsonpath={.spec.node} {.profiles.goes.digest} {.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].uid}`)
			f := strings.Fields(out)
			return err == nil && len(f) == 3 && f[0] == n.name && strings.HasPrefix(f[1], "sha256:") && f[2] == "Node/"+uid, out
		})
	}
	if st := c.kc(t, "-n", ns, "get", "syscallprofile", "goes", "-o", "jsonpath={.status}"); strings.Contains(st, "nodes") {
		t.Errorf("the profile's status grows with the nodes: %s", st)
	}
	start := time.Now()
	c.kc(t, "-n", ns, "delete", "syscallprofile", "goes", "--wait=true", "--timeout=20s")
	t.Logf("deleting a profile the nodes hold took %s", time.Since(start).Round(time.Millisecond))
	for _, file := range files {
		waitFor(t, "the agent to remove "+file, 30*time.Second, func() (bool, string) { _, err := os.Stat(file); return os.IsNotExist(err), fmt.Sprint(err) })
	}
	for _, n := range c.nodes {
		waitFor(t, "node "+n.name+" to take its entry out", 30*time.Second, func() (bool, string) {
			out, err := c.try(c.kubectl, "-n", ns, "get", kubeapi.NodeStatuses, n.name, "-o", "jsonpath={.profiles}")
			return err == nil && !strings.Contains(out, "goes"), out
		})
	}

	// The status of a node deleted from the cluster (its owner, a Node that no
	// longer exists) is collected by the API server's garbage collector.
	gone := "syscage-e2e-gone-node"
	apply(t, c, fmt.Sprintf(`apiVersion: %s
kind: SyscallNodeStatus
metadata:
  name: %s
  namespace: %s
  ownerReferences: [{apiVersion: v1, kind: Node, name: %s, uid: 0b5e7a3c-0000-4000-8000-000000000001}]
spec: {node: %s}
profiles: {goes: {digest: "sha256:x", error: "", updated: ""}}
`, kubeapi.APIVersion, gone, ns, gone, gone))
	waitFor(t, "the garbage collector to remove the status of a node that is gone", 90*time.Second, func() (bool, string) {
		out, err := c.try(c.kubectl, "-n", ns, "get", kubeapi.NodeStatuses, gone)
		return err != nil && strings.Contains(out, "NotFound"), out
	})
}
